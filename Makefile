# One entry point for a fresh machine: every target creates the environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0

.PHONY: install demo test test-all lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch pinned first: on this project's machines the index serves the CPU wheel,
	# and installing it before the package keeps pip from resolving another build
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) examples/train_pneumoniamnist.py --output reports/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2

test-all: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 -m "slow or not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_fit.py

clean:
	rm -rf $(VENV) reports build dist *.egg-info
