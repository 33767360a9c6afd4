# Two commands on a fresh machine: `make demo` (set up + run the main job), `make test` (the test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch: this pin picks the local CPU wheel; GPU users install CUDA torch (see README).
TORCH_PIN ?= torch==2.13.0

.PHONY: setup demo test test-fast lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[test,detectors,serve,batch,train]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/changeagent demo --out out/demo

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
