# The README's two commands: `make demo` and `make test`. Both need only python3.
PYTHON ?= python3
# `make demo PORT=8001` when 8000 is taken.
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck docs pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[server,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reapi-server demo --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy --strict src
	$(BIN)/lint-imports .importlinter
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site
	@test -x /usr/bin/chromium || echo "NOTE: the browser tests will be SKIPPED (no /usr/bin/chromium). Enable them with: apt-get install chromium"
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/lint-imports .importlinter
	$(BIN)/ruff format --check src tests bench examples

bench: $(STAMP)
	$(BIN)/python bench/failover.py

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
