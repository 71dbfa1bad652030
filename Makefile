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

# The suite on every CPU (pytest-xdist; the tests that must run alone share one worker,
# see tests/conftest.py), under branch coverage; the total is the report's last line.
# Each run keeps its coverage data in a directory of its own, so that two runs in one
# tree do not mix. Bytecode is cached (the assertion rewriting of every test module,
# in every worker, would otherwise be redone on each run).
TEST_WORKERS ?= auto
test: lint typecheck
	@data=$$(mktemp -d) && trap 'rm -rf "$$data"' EXIT && \
	set -x && env -u PYTHONDONTWRITEBYTECODE COVERAGE_FILE="$$data/coverage" \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup \
		--cov --cov-report=term:skip-covered $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
