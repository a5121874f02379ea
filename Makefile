# The interface for humans and CI. Every target creates .venv and installs on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test test-fast up down status deploy lint format bench clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(INSTALLED)

demo: install  ## the whole loop on embedded defaults (no servers needed)
	$(BIN)/inferloop demo

test: install  ## the full suite, slow end-to-end tests included
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
