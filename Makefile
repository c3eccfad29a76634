# The two commands a new machine needs: `make run` starts backrub, `make test` runs everything.
# `make run ARGS="plan --minutes 30"` runs any other backrub command.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?= serve

.PHONY: run test lint types js unit bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,voice]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/backrub $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/bandit -q -r src -ll

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	./scripts/ensure-postgres
	./scripts/ensure-chromium
	$(BIN)/python -m pytest -n auto --dist worksteal

# The front end: TypeScript over its JSDoc, and node --test over its pure modules. npm ci runs
# when node_modules is missing or older than the lockfile.
NODE_STAMP := node_modules/.installed

$(NODE_STAMP): package.json package-lock.json
	./scripts/ensure-node
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

js: $(NODE_STAMP)
	./scripts/ensure-node
	npx tsc --noEmit -p .
	npx tsc --noEmit -p tsconfig.sw.json
	node --test tests/js/*.test.mjs

test: lint types js unit

bench: $(STAMP)
	$(BIN)/python bench/plan_speed.py
	$(BIN)/python bench/cli_start.py
	$(BIN)/python bench/cue_timing.py
	$(BIN)/python bench/stats_scale.py
	$(BIN)/python bench/page_weight.py
	$(BIN)/python bench/audio_render.py
	$(BIN)/python bench/crash_safety.py
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis node_modules

docs: $(STAMP)
	$(BIN)/cog -r docs/cli.md
