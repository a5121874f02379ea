# The interface for humans and CI. Every target creates .venv and installs on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

APT_LOG := $(or $(TMPDIR),/tmp)/inferloop-apt.log
PROFILE ?= local

.PHONY: install browser postgres demo test test-fast test-real-data up down status deploy imports lint format bench clean

# pyproject.toml declares compatible ranges; constraints.txt holds the verified set installed here.
$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(INSTALLED)

# Debian packages the tests use, installed when missing: $(call apt_install,<check command>,<packages>,<why>).
# Never fails the build: without root or passwordless sudo, apt or the network it says so in one
# line and the tests that need the package skip with a message.
define apt_install
	@if $(1) >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "$(2): no apt-get here; $(3) will skip"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else \
		echo "$(2): not root and no sudo, not installed; $(3) will skip"; exit 0; fi; \
	apt="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=120"; \
	if { $$apt install --no-install-recommends $(2) || { $$apt update && $$apt install --no-install-recommends $(2); }; \
	} >>$(APT_LOG) 2>&1 < /dev/null; then echo "installed Debian's $(2) with apt-get"; else \
		echo "apt-get could not install $(2) (see $(APT_LOG)); $(3) will skip"; fi
endef

# Playwright drives Debian's chromium (tests/e2e/test_ui.py); it never downloads a browser.
browser:  ## Debian's chromium + chromium-driver, when missing
	$(call apt_install,test -x /usr/bin/chromium,chromium chromium-driver,the UI tests)

# The production profile's database (tests/e2e/test_production.py, make up PROFILE=prod).
postgres:  ## Debian's PostgreSQL server, when missing
	$(call apt_install,ls /usr/lib/postgresql/*/bin/postgres,postgresql,the production-profile tests)

demo: install  ## the whole loop on embedded defaults (no servers needed)
	$(BIN)/inferloop demo

# Test files run on TEST_WORKERS processes: most of an end-to-end test waits on servers and
# subprocesses, so two cores serve three workers.
TEST_WORKERS ?= 3
test: install browser postgres imports  ## the layer contract, then the full suite, slow end-to-end tests included
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: install  ## skip tests marked slow
	$(BIN)/pytest -m "not slow"

ELEC2_CSV ?= ../shared/data/elec2/electricity.csv
test-real-data: install  ## the tests on the real Elec2 file (ELEC2_CSV=path; about 20 minutes)
	INFERLOOP_TEST_ELEC2_CSV=$(abspath $(ELEC2_CSV)) $(BIN)/pytest tests/e2e/test_bring_your_own_data.py tests/tasks/data/test_importing.py

up: install $(if $(filter prod,$(PROFILE)),postgres)  ## Prefect :4200, MLflow :5000, S3 API :9000, deployments, a worker (PROFILE=prod: + PostgreSQL, Dask, auth)
	$(BIN)/inferloop up --profile $(PROFILE)

down:  ## stop what `make up` started
	$(BIN)/inferloop down

status: install
	$(BIN)/inferloop status

deploy: install
	$(BIN)/inferloop deploy

# lint-imports reads the layer contract in pyproject.toml. inferloop/flows and inferloop/tasks are
# links to the top-level folders, so it sees the package as installed.
imports: install  ## the layer contract: cli -> flows | stack -> tasks -> runtime -> core
	$(BIN)/lint-imports --no-cache

lint: imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks

clean: down
	rm -rf .inferloop
