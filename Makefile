# Two commands do everything on a fresh machine:
#   make run    set up, then predict the example clip with the bundled model
#   make test   set up, then run the tests
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORPORA ?= ../shared/corpora

.PHONY: setup run test test-all bench clean

$(BIN)/emovox: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.*"
	$(BIN)/pip install -q -e ".[all,test]"
	@touch $@

setup: $(BIN)/emovox

run: setup
	$(BIN)/emovox predict src/emovox/examples/hello.flac

test: setup
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
