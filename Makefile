# Two commands for a newcomer: `make run` (the whole stack) and `make test` (lint + suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: install run test test-fast lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	$(BIN)/herald dev

lint: install
	$(BIN)/ruff check app worker tests alembic
	$(BIN)/ruff format --check app worker tests alembic
	$(BIN)/mypy --strict app worker tests

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests/unit tests/integration

format: install
	$(BIN)/ruff check --fix app worker tests alembic
	$(BIN)/ruff format app worker tests alembic

clean:
	rm -rf $(VENV) .herald .mypy_cache .ruff_cache .pytest_cache
