# The interface for humans and CI. Every target creates .venv and installs on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

CHROMIUM := /usr/bin/chromium
APT_LOG := $(or $(TMPDIR),/tmp)/inferloop-apt-chromium.log

.PHONY: install browser demo test test-fast up down status deploy lint format bench clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(INSTALLED)

# Debian's chromium and its matching chromedriver for tests/e2e/test_ui.py (Playwright launches the
# system browser; nothing is downloaded by Playwright). Never fails the build: without root or
# passwordless sudo, apt or the network it says so in one line and the UI tests skip.
browser:  ## Debian's chromium + chromium-driver, when missing and apt-get can install them
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser: no apt-get here; UI tests will skip (install chromium and chromium-driver)"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else \
		echo "browser: not root and no sudo, chromium not installed; UI tests will skip"; exit 0; fi; \
	apt="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=120"; \
	if { $$apt install --no-install-recommends chromium chromium-driver || \
		{ $$apt update && $$apt install --no-install-recommends chromium chromium-driver; }; \
	} >$(APT_LOG) 2>&1 < /dev/null; then \
		echo "browser: installed Debian's chromium and chromium-driver with apt-get"; else \
		echo "browser: apt-get could not install chromium (see $(APT_LOG)); UI tests will skip"; fi

demo: install  ## the whole loop on embedded defaults (no servers needed)
	$(BIN)/inferloop demo

test: install browser  ## the full suite, slow end-to-end tests included
	$(BIN)/pytest

test-fast: install  ## skip tests marked slow
	$(BIN)/pytest -m "not slow"

up: install  ## Prefect :4200, MLflow :5000, S3 API :9000, deployments and a worker
	$(BIN)/inferloop up

down:  ## stop what `make up` started
	$(BIN)/inferloop down

status: install
	$(BIN)/inferloop status

deploy: install
	$(BIN)/inferloop deploy

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks

clean: down
	rm -rf .inferloop
