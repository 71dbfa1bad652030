# The one place the commands live: the README and CI call these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs, each recorded by a stamp file: what serving needs (`run`), and that plus
# the test, lint and benchmark tools (`test` and the rest).
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install install-test services run test lint typecheck unit bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP) $(RUNTIME_STAMP)

install: $(RUNTIME_STAMP)

install-test: $(TEST_STAMP)

run: install
	$(BIN)/federation init
	$(BIN)/federation serve

# What the whole suite needs beside .venv, each named with whether it answers here
# (.ci/run installs and starts them). Nothing is refused: `-m "not postgres"` and
# the like run without some of them.
services: | $(BIN)/python
	@$(BIN)/python tests/services.py

CHECKED := federation tests examples benchmarks
LINT := $(BIN)/ruff check $(CHECKED) && $(BIN)/ruff format --check $(CHECKED)
TYPECHECK := $(BIN)/mypy

lint: install-test
	$(LINT)

typecheck: install-test
	$(TYPECHECK)

unit: install-test
	$(BIN)/pytest tests/unit

# Throughput and latency against baselines; writes benchmarks/results/latest.*
bench: install-test
	$(BIN)/python -m benchmarks

# The console's pages as the browser tests see them, for the docs (docs/console/*.png)
screenshots: install-test
	CONSOLE_SCREENSHOTS=docs/console $(BIN)/pytest tests/console/test_browser.py

# The suite on every CPU (pytest-xdist; the tests that must run alone share one worker,
# see tests/conftest.py), under branch coverage; the total is the report's last line.
# Lint and type checks run beside it (the suite waits on servers and disks for much of
# its time) and print after it; either failing fails the target.
# Each run keeps its coverage data in a directory of its own, so that two runs in one
# tree do not mix. Bytecode is cached (the assertion rewriting of every test module,
# in every worker, would otherwise be redone on each run).
TEST_WORKERS ?= auto
test: install-test services
	@data=$$(mktemp -d) && trap 'rm -rf "$$data"' EXIT; \
	{ $(LINT) && $(TYPECHECK); } > "$$data/checks" 2>&1 & checks=$$!; \
	set -x; env -u PYTHONDONTWRITEBYTECODE COVERAGE_FILE="$$data/coverage" \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup \
		--cov --cov-report=term:skip-covered $(PYTEST_ARGS); \
	suite=$$?; set +x; wait $$checks; lint=$$?; cat "$$data/checks"; \
	if [ $$lint -ne 0 ]; then echo "make test: lint or type checks failed (above)" >&2; fi; \
	[ $$suite -eq 0 ] && [ $$lint -eq 0 ]

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
