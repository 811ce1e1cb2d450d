# Whetstone: `make demo` runs the main job, `make test` passes the tests.
# Both create or refresh the virtualenv first, so they work on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= api,trainer,workflow,cli,infra,dev

.PHONY: venv console chromium screenshots lint test demo serve lock clean synth

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $@

venv: $(VENV)/.installed console

# The web console (console/, TypeScript built by Vite) into the package, so `pip install`
# ships it; rebuilt only when its sources change.
CONSOLE_BUILT := whetstone/console_assets/index.html
CONSOLE_SOURCES := $(shell find console/src -type f) console/index.html console/package.json \
	console/package-lock.json console/tsconfig.json console/vite.config.ts

console/node_modules/.installed: console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund --silent
	@touch $@

$(CONSOLE_BUILT): console/node_modules/.installed $(CONSOLE_SOURCES)
	cd console && npm run --silent build

console: $(CONSOLE_BUILT)

# Debian's Chromium for the browser test (tests/browser/); a browser download fails here.
chromium:
	@test -x /usr/bin/chromium || { apt-get install -y -q chromium \
		|| { apt-get update -q && apt-get install -y -q chromium; }; }

# The console's screenshots in docs/images/ (the README shows one), taken by its browser test.
screenshots: venv chromium
	WHETSTONE_UPDATE_SCREENSHOTS=1 HF_HUB_OFFLINE=1 $(BIN)/pytest -q tests/browser/test_console_journey.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint chromium
	HF_HUB_OFFLINE=1 $(BIN)/pytest

# A real LoRA job through the local platform. Your own model folder and dataset:
#   make demo MODEL=/path/to/model DATASET=/path/to/data.jsonl
demo: venv
	$(BIN)/python -m whetstone.cli.demo $(if $(MODEL),--model $(MODEL)) $(if $(DATASET),--dataset $(DATASET))

serve: venv
	$(BIN)/whet serve

# The CloudFormation templates of the aws runtime, offline (no AWS account), into cdk.out/,
# checked by cdk-nag during synth and by cfn-lint after. Needs EXTRAS with infra, and node.
CDK := infra/node_modules/.bin/cdk
CDK_ENV := CDK_DISABLE_CLI_TELEMETRY=true JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

$(CDK): infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund --silent
	@touch $@

synth: venv $(CDK)
	$(CDK_ENV) $(CDK) synth --quiet --no-notices
	$(BIN)/cfn-lint --non-zero-exit-code error -- cdk.out/*.template.json

# Re-pin every dependency to what the virtualenv holds now.
lock: venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^whetstone' \
		| sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > constraints.txt

# The trainer image's hashed locks (trainer_container/Dockerfile installs them with
# --require-hashes), resolved from PyPI alone for the image's platform: Linux x86_64,
# Python 3.12. requirements-build.lock holds setuptools, which builds the one sdist.
TRAINER_LOCK_FLAGS := --generate-hashes --python-version 3.12 \
	--python-platform x86_64-manylinux_2_28 --index-url https://pypi.org/simple \
	--custom-compile-command "make trainer-lock" --quiet
.PHONY: trainer-lock
trainer-lock: venv
	$(BIN)/uv pip compile $(TRAINER_LOCK_FLAGS) trainer_container/requirements.txt \
		-o trainer_container/requirements.lock
	grep -o '^setuptools==[^ ]*' trainer_container/requirements.lock \
		| $(BIN)/uv pip compile $(TRAINER_LOCK_FLAGS) - -o trainer_container/requirements-build.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache console/node_modules whetstone/console_assets
