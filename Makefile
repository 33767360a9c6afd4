# Quick start on a fresh machine: `make demo` (set up + run the main job), `make page` (the chat page),
# `make test` (the test suite, with every extra).
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch for the extras that need it (DeltaVLM, serving, training); GPU users install CUDA torch.
TORCH_PIN ?= torch==2.13.0

.PHONY: setup setup-dev demo page test test-fast lint

# The main job only: verify, ask, chat, batch (local), scenes and the page. No torch, Ray, ONNX or browser.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

# Everything the tests exercise: DeltaVLM (torch), serving, Ray, ONNX detectors, training metrics, browser tests.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

demo: setup
	$(VENV)/bin/changeagent demo --out out/demo

page: setup
	$(PY) app.py

test: setup-dev
	$(PY) -m pytest -q

test-fast: setup-dev
	$(PY) -m pytest -q -m "not slow"

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
