# Quick start: `make demo` and `make test` work on a fresh machine (they create .venv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned to the CPU wheel that lies on these machines' disk: a bare `torch` would pull
# a multi-GB CUDA build. setup.cfg itself only asks for torch>=2.2.
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv demo test lint bench docs docs-build notebook clean

# The first install says what it is doing, one line a step (pip's own output and setuptools'
# warnings go to $(VENV)/install.log, which a failure prints).
PIP_LOGGED = $(BIN)/python -m pip install --progress-bar off
$(BIN)/embedlab: setup.cfg pyproject.toml
	@echo "embedlab: creating the virtual environment $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "embedlab: [1/3] upgrading pip"
	@$(PIP_LOGGED) --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@echo "embedlab: [2/3] installing PyTorch ($(TORCH_SPEC), the CPU build; about a minute the first time)"
	@$(PIP_LOGGED) "$(TORCH_SPEC)" >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@echo "embedlab: [3/3] installing embedlab and its test tools (numpy, pandas, bokeh, umap-learn, pytest, ...)"
	@$(PIP_LOGGED) -e ".[test]" >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $(BIN)/embedlab
	@echo "embedlab: installed; the log is $(VENV)/install.log"

venv: $(BIN)/embedlab

# MovieLens 100K from EMBEDLAB_DATA_DIR (or ml-100k/ inside it), else the checksummed download,
# else synthetic ratings with readable planted names; it says which, and where the report is.
demo: venv
	$(BIN)/python tools/demo.py --out runs/demo --report reports/demo.html

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# ruff's lint rules (pyproject.toml [tool.ruff]); why the tree is not `ruff format`ted:
# docs/architecture.md, "Rules that keep it so"
lint: venv
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

# The documentation site (mkdocs-material): `make docs` executes docs/lesson5.ipynb (on ml-100k
# when EMBEDLAB_DATA_DIR holds it), builds the site with --strict and serves it on :8000.
DOCS_DEPS = 'mkdocs-material>=9.5' 'mkdocstrings-python>=1.10' 'mkdocs-click>=0.8'

$(VENV)/.docs-deps: $(BIN)/embedlab
	$(BIN)/python -m pip install -q $(DOCS_DEPS)
	touch $@

docs-build: $(VENV)/.docs-deps
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

notebook: venv
	$(BIN)/python tools/execute_notebook.py docs/lesson5.ipynb

docs: notebook docs-build
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: venv
	$(BIN)/python benchmarks/collab.py

clean:
	rm -rf runs reports build dist site *.egg-info
