# One-command entry points. `make test` is what CI runs; `make demo` runs the fleet locally.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CLI_CONFIG_FILE := $(CURDIR)/.build/terraformrc
export TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE := 1

.PHONY: setup lock lambda-zip lint fmt docs test unit tf-test demo local-up local-down job bench clean

# uv from its hashed pin (requirements/uv.txt, exported from uv.lock), with python3's own pip.
UV := .build/uv/bin/uv
export UV_PYTHON_DOWNLOADS := never

# The PIP_* settings keep a user's pip configuration (user installs, virtualenv-only) out of it.
$(UV): requirements/uv.txt
	@python3 -m pip --version >/dev/null 2>&1 || { echo "make setup: python3 has no pip" \
	  "(install it, e.g. Debian's python3-pip)" >&2; exit 1; }
	rm -rf .build/uv
	PIP_USER=0 PIP_REQUIRE_VIRTUALENV=0 PIP_ROOT_USER_ACTION=ignore python3 -m pip install \
	  --quiet --disable-pip-version-check --no-deps --require-hashes --target .build/uv \
	  -r requirements/uv.txt

# Every library and tool exactly as uv.lock has them (hashes checked), and this project
# (editable). --locked fails when pyproject.toml and uv.lock disagree.
$(PY): pyproject.toml uv.lock $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --quiet --python python3
	@touch $(PY)

setup: $(PY) .build/terraformrc ## create the virtualenv and the Terraform CLI config

.build/terraformrc: scripts/terraformrc.sh
	@bash scripts/terraformrc.sh $@

# The exports that pip reads where uv is not at hand: uv's own pin, the Lambda's dependencies.
EXPORT := $(UV) export --frozen --no-emit-project --quiet
lock: $(UV) ## update uv.lock to pyproject.toml (UPGRADE=1: the newest versions it allows), then its exports
	$(UV) lock $(if $(UPGRADE),--upgrade,)
	$(EXPORT) --only-group uv -o requirements/uv.txt
	$(EXPORT) --only-group lambda -o lambda/requirements.txt

lambda-zip: ## prebuild the Lambda zip for the module's lambda_zip_path (.build/lambda.zip)
	python3 scripts/build_lambda.py --output .build/lambda.zip

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

local-up: setup ## JOB_SECONDS=90: each simulated job runs that long (default 1); FAIL_BUILDS=glob,...
	$(PY) -m local_mode up $(if $(JOB_SECONDS),--job-seconds $(JOB_SECONDS),) \
	  $(if $(FAIL_BUILDS),--fail-builds '$(FAIL_BUILDS)',)

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
