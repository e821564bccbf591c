# Two commands do everything on a fresh machine:
#   make run    set up, then predict the example clip with the bundled model
#   make test   set up, then run the tests
# Code health (CONTRIBUTING.md): make lint | format | typecheck | docs | check
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORPORA ?= ../shared/corpora

.PHONY: setup run test test-all lint format typecheck docs check bench clean

$(BIN)/emovox: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.*"
	$(BIN)/pip install -q -e ".[all,test,dev,docs]"
	@touch $@

setup: $(BIN)/emovox

run: setup
	$(BIN)/emovox predict src/emovox/examples/hello.flac

test: setup
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

# ruff: lint rules and formatting, configured in pyproject.toml ([tool.ruff]).
lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# mypy over src/emovox, configured in pyproject.toml ([tool.mypy]).
typecheck: setup
	$(BIN)/mypy

# The documentation site (mkdocs.yml) into site/, every warning an error.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

check: lint typecheck docs

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache site
