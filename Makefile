# The one entry point for people and CI alike. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install test test-long lint format demo vendor bench bench-env bench-short bench-app clean

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

vendor: ## refresh the app's vendored SQLite WebAssembly (server/static/app/vendor) from package-lock.json; needs npm
	npm ci --no-audit --no-fund
	$(PYTHON) tools/vendor_app.py

KINTO_VENV := bench/.kinto-venv

$(KINTO_VENV)/bin/kinto:
	$(PYTHON) -m venv $(KINTO_VENV)
	$(KINTO_VENV)/bin/pip install --quiet 'kinto[postgresql]' kinto-http

bench-env: $(KINTO_VENV)/bin/kinto ## the peers' own environment for make bench (Kinto, in bench/.kinto-venv)

bench: $(STAMP) bench-env ## full benchmarks (about an hour; PostgreSQL at 127.0.0.1:5432); tables appended to docs/benchmarks.md
	$(BIN)/python bench/bench_rules.py
	$(BIN)/python bench/bench_push.py --chart
	$(BIN)/python bench/bench_wire.py
	$(BIN)/python bench/bench_pull.py --chart
	$(BIN)/python bench/bench_kinto.py
	$(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/bench_counter.py

bench-app: $(STAMP) ## the doctor's app over a 50 kbit/s, 300 ms link: first load, offline open, a week's sync; appended to docs/benchmarks.md
	$(BIN)/python bench/bench_app.py

bench-short: $(STAMP) ## benchmark smoke run (a few minutes, no peers; fails on errors, never on speed)
	$(BIN)/python bench/bench_rules.py --short
	$(BIN)/python bench/bench_push.py --short
	$(BIN)/python bench/bench_wire.py --short
	$(BIN)/python bench/bench_pull.py --short
	$(BIN)/python bench/bench_memory.py --short
	$(BIN)/python bench/bench_counter.py --short

clean: ## remove the environment and build leftovers
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
