# The one entry point for people and CI alike. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install test test-long lint format demo bench bench-short clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install Zhuxun with its dev tools

test: $(STAMP) ## run the test suite (SQLite and the PostgreSQL at 127.0.0.1:5432)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-long: $(STAMP) ## the test suite with the long property and load runs
	ZHUXUN_LONG_TESTS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint and format check, mypy on the pure packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP) ## seed a demo county into SQLite, start the server, sync two simulated tablets; Ctrl-C stops it
	$(BIN)/zhuxun demo --run

bench: $(STAMP) ## full benchmarks (minutes); tables appended to docs/benchmarks.md
	$(BIN)/python bench/record.py "Rules engine" full -- $(BIN)/python bench/bench_rules.py
	$(BIN)/python bench/bench_push.py --chart
	$(BIN)/python bench/bench_wire.py
	$(BIN)/python bench/bench_pull.py
	$(BIN)/python bench/bench_kinto.py

bench-short: $(STAMP) ## benchmark smoke run (about 2 minutes; fails on errors, never on speed)
	$(BIN)/python bench/record.py "Rules engine" short -- $(BIN)/python bench/bench_rules.py --short
	$(BIN)/python bench/bench_push.py --short
	$(BIN)/python bench/bench_wire.py --short
	$(BIN)/python bench/bench_pull.py --short

clean: ## remove the environment and build leftovers
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
