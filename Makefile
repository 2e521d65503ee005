# The README's commands. Each builds what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Lambda runs python3.13; the code must also run on 3.11 (the dev default).
PY313_VENV := .venv-py313
PY313_STAMP := $(PY313_VENV)/.installed
HYPOTHESIS_EXAMPLES ?= 10000

.PHONY: demo test bench lint typecheck unit test-py313 clean

$(STAMP): requirements-dev.txt transform/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(PY313_STAMP): requirements-dev.txt transform/requirements.txt
	PYENV_VERSION=3.13.0 python3.13 -m venv $(PY313_VENV)
	$(PY313_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PY313_VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	touch $(PY313_STAMP)

demo: $(STAMP)
	$(PY) -m tools.demo

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)
	HYPOTHESIS_EXAMPLES=$(HYPOTHESIS_EXAMPLES) $(PY) -m pytest -n 2 -q

test-py313: $(PY313_STAMP)
	HYPOTHESIS_EXAMPLES=500 $(PY313_VENV)/bin/python -m pytest -q -p no:cacheprovider

test: lint typecheck unit test-py313

bench: $(STAMP)
	$(PY) -m bench.transform_bench

clean:
	rm -rf $(VENV) $(PY313_VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
