# The one place the commands live: the README and CI call these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck unit bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/federation init
	$(BIN)/federation serve

lint: install
	$(BIN)/ruff check federation tests examples benchmarks
	$(BIN)/ruff format --check federation tests examples benchmarks

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

# Throughput and latency against baselines; writes benchmarks/results/latest.*
bench: install
	$(BIN)/python -m benchmarks

# The console's pages as the browser tests see them, for the README (docs/console/*.png)
screenshots: install
	CONSOLE_SCREENSHOTS=docs/console $(BIN)/pytest tests/console/test_browser.py

test: lint typecheck
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
