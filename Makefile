# The two commands of the README: `make report` and `make test`. Both create .venv when missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= full
DATA_DIR ?=
OUT ?= reports

BENCH_ARGS ?=
REPORT_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help install report test format bench lab clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	$(BIN)/python -c 'from labutils.report import ensure_kernel; ensure_kernel()'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (done by the other targets)

report: $(STAMP)  ## run every notebook and write reports/index.html (PROFILE=quick|full, DATA_DIR=...)
	$(BIN)/python -m labutils report --profile $(PROFILE) --out $(OUT) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(REPORT_ARGS)

test: $(STAMP)  ## check the style (ruff), then run the test suite
	$(BIN)/ruff format --check
	$(BIN)/ruff check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

format: $(STAMP)  ## reformat the code and apply ruff's safe fixes
	$(BIN)/ruff format
	$(BIN)/ruff check --fix

bench: $(STAMP)  ## benchmark the reference recipe against ours -> bench/results.{json,md} (DATA_DIR=..., BENCH_ARGS=...)
	$(BIN)/python -m labutils bench $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(BENCH_ARGS)

lab: $(STAMP)  ## open the notebooks in JupyterLab (the .py files open as notebooks through jupytext)
	$(BIN)/jupyter lab notebooks

clean:  ## remove generated reports (keeps .venv and data/)
	rm -rf $(OUT)
