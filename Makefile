# One-command entry points. `make test` is what CI runs; `make demo` runs the fleet locally.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CLI_CONFIG_FILE := $(CURDIR)/.build/terraformrc
export TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE := 1

.PHONY: setup lock lint fmt docs test unit tf-test demo local-up local-down job bench clean

# Every library and tool from the hashed lock, then this project itself (no dependencies).
$(PY): pyproject.toml requirements/dev.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(PY)

setup: $(PY) .build/terraformrc ## create the virtualenv and the Terraform CLI config

.build/terraformrc: scripts/terraformrc.sh
	@bash scripts/terraformrc.sh $@

lock: setup ## re-resolve requirements/dev.lock on purpose (newest versions pyproject allows)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --upgrade \
	  --python-version $$($(PY) -c 'import platform; print(platform.python_version())') \
	  --no-header -o requirements/dev.lock

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	terraform fmt -check -recursive

fmt: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	terraform fmt -recursive

docs: setup ## regenerate the Terraform inputs/outputs tables of the READMEs
	$(PY) scripts/tf_docs.py

test: setup lint ## the whole suite: unit, terraform on the emulator, CLI, end to end, security scan
	$(PY) -m pytest

demo: setup
	$(PY) -m local_mode demo

local-up: setup
	$(PY) -m local_mode up

local-down: setup
	$(PY) -m local_mode down

job: setup
	$(PY) -m local_mode job --labels "$(or $(LABELS),self-hosted,class:medium)" $(if $(BAD_SIGNATURE),--bad-signature,)

bench: setup
	$(PY) -m local_mode bench $(if $(ONLY),--only $(ONLY),)

clean:
	rm -rf .build .local $(VENV)
