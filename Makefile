# One entry point for a fresh machine: every target creates the environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0

.PHONY: install demo test test-all lint bench docs docs-check clean browser

# Two levels in one .venv: the main job needs the package with its file readers and
# figures (.[all]); the tests, docs and linters add the dev tools (.[dev], which
# includes .[all]). `make demo` on a fresh clone installs the first only.
$(VENV)/.torch:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch pinned first: on this project's machines the index serves the CPU wheel,
	# and installing it before the package keeps pip from resolving another build
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	touch $@

$(VENV)/.installed-all: pyproject.toml | $(VENV)/.torch
	$(PY) -m pip install --quiet -e ".[all]"
	touch $@

$(VENV)/.installed: pyproject.toml | $(VENV)/.torch
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed-all

install: $(VENV)/.installed

# writes the report, the model (model.skmed) and sample images to reports/demo
demo: $(VENV)/.installed-all
	$(PY) examples/train_pneumoniamnist.py --output reports/demo

# The served page is tested in a real browser: Debian's chromium and its driver,
# installed here when missing (as root, with apt-get); elsewhere that test skips.
browser:
	@command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver for the browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver >/dev/null) || \
	      echo "could not install chromium: the browser test will be skipped"; \
	  else echo "no chromedriver and not root: the browser test will be skipped"; fi; }

# the type check first (about a second with mypy's cache in .mypy_cache), so a type
# error fails CI (.ci/run) as a test does
MYPY := $(VENV)/bin/mypy sk_medcnn

test: $(VENV)/.installed browser
	$(MYPY)
	$(PY) -m pytest -q -n 2

test-all: $(VENV)/.installed browser
	$(MYPY)
	$(PY) -m pytest -q -n 2 -m "slow or not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(MYPY)

# the performance suite (~30 min, alone on the machine); BENCH_ARGS=--smoke for a check
bench: $(VENV)/.installed
	$(PY) -m benchmarks $(BENCH_ARGS)

# The HTML site in docs/_build/html, warnings as errors. GALLERY=full (default) runs
# every examples/plot_*.py at full size (a few minutes the first time; unchanged
# examples are not run again), GALLERY=quick in their quick mode, GALLERY=off not at
# all. tests/test_docs.py builds it with GALLERY=off in CI.
GALLERY ?= full
docs: $(VENV)/.installed
	SK_MEDCNN_DOCS_GALLERY=$(GALLERY) $(PY) -m sphinx -W --keep-going -b html \
		-d docs/_build/doctrees docs docs/_build/html
	@echo "open docs/_build/html/index.html"

# The built site in headless Chromium at 1280 px: no page wider than the window, no
# code block, table or picture cut off (Debian: apt-get install chromium). Not in CI:
# the CI machine has no browser. GALLERY=off by default: layout, not the examples.
docs-check: GALLERY = off
docs-check: docs
	$(PY) tools/check_docs_layout.py docs/_build/html --width 1280

clean:
	rm -rf $(VENV) reports build dist *.egg-info
	rm -rf docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst
