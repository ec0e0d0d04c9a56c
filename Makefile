# Two commands for a newcomer: `make run` (the whole stack) and `make test` (lint + suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: install run test test-fast lint format clean bench bench-quick

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	$(BIN)/herald dev

lint: install
	$(BIN)/ruff check app worker tests alembic bench
	$(BIN)/ruff format --check app worker tests alembic bench
	$(BIN)/mypy --strict app worker tests bench

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests/unit tests/integration

format: install
	$(BIN)/ruff check --fix app worker tests alembic bench
	$(BIN)/ruff format app worker tests alembic bench

# The PRODUCT.md §9 scenarios beside a bare-aiohttp ceiling measured in the same run.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Backlog throughput and latency at 200/s in under a minute; ends with the ratio lines.
bench-quick: install
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .herald .mypy_cache .ruff_cache .pytest_cache
