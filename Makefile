# lifsg: the two commands of the README, and helpers. Each target sets up its own virtual
# environment in .venv (Python 3.11) from the pinned requirements files.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: figures test data lab lint format benchmark docs clean-venv

$(BIN)/activate: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(BIN)/activate

## Reproduce every figure and table into figures/ and results/ (paper mode).
figures: $(BIN)/activate
	$(BIN)/python -m lifsg.data fetch mnist
	-$(BIN)/python -m lifsg.data fetch fashion_mnist
	-$(BIN)/python -m lifsg.data fetch flowers
	$(BIN)/python tools/run_notebooks.py

## Run the tests (unit tests, every notebook in QUICK mode, browser tests if chromium exists).
## The fused LIF kernel is compiled first (once, cached); without a compiler lifsg falls back
## to the keras.ops loop.
test: $(BIN)/activate
	-$(BIN)/python -m lifsg.fused
	$(BIN)/python -m pytest

## Speed and memory against snnTorch and Norse (own venv) -> benchmarks/results.*
benchmark: $(BIN)/activate
	$(BIN)/python benchmarks/run.py

## Fetch the real MNIST files into data/mnist (checked against the official digests) and,
## where apt-get works, Fashion-MNIST into data/fashion_mnist (from its Debian package).
data: $(BIN)/activate
	$(BIN)/python -m lifsg.data fetch mnist
	-$(BIN)/python -m lifsg.data fetch fashion_mnist

## Open the notebooks in JupyterLab.
lab: $(BIN)/activate
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

## Build the documentation site into site/ (strict: a warning fails the build). The notebook
## pages show the outputs of the tests' QUICK runs kept in build/executed
## (LIFSG_EXECUTED_NOTEBOOKS=build/executed make test); without them, no outputs (it says so).
docs: $(BIN)/activate $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

$(VENV)/.docs-installed: requirements-docs.txt $(BIN)/activate
	$(BIN)/python -m pip install --quiet -r requirements-docs.txt
	touch $@

## Lint (CI runs this; so do the pre-commit hooks, per commit): ruff over the code, tests,
## tools, benchmarks and notebooks, and notebooks committed without outputs.
LINT_PATHS := lifsg tests tools benchmarks notebooks docs/hooks
lint: $(BIN)/activate
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/nbstripout --keep-id --verify notebooks/*.ipynb

## Apply ruff's automatic fixes and formatting to the paths that `make lint` checks.
format: $(BIN)/activate
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

clean-venv:
	rm -rf $(VENV)
