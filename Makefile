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

local-up: setup ## JOB_SECONDS=90: each simulated job runs that long (default 1)
	$(PY) -m local_mode up $(if $(JOB_SECONDS),--job-seconds $(JOB_SECONDS),)

local-down: setup
	$(PY) -m local_mode down

# A comma inside $(or ...) would split its arguments: the default labels are a variable.
LABELS ?= self-hosted,class:medium

job: setup ## LABELS=a,b BAD_SIGNATURE=1 NOWAIT=1 TIMEOUT=seconds
	$(PY) -m local_mode job --labels "$(LABELS)" $(if $(BAD_SIGNATURE),--bad-signature,) \
	  $(if $(NOWAIT),--no-wait,) $(if $(TIMEOUT),--timeout $(TIMEOUT),)

bench: setup
	$(PY) -m local_mode bench $(if $(ONLY),--only $(ONLY),)

clean:
	rm -rf .build .local $(VENV)
