# The two commands of the README: `make report` and `make test`. Both create .venv when missing,
# with TensorFlow's GPU build on a machine whose nvidia-smi lists a GPU and its CPU build elsewhere.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# GPU=1 installs TensorFlow's GPU build (the .[gpu] extra: tensorflow[and-cuda], NVIDIA on Linux x86-64),
# GPU=0 its CPU build (.[cpu]: tensorflow-cpu). Left out, it is 1 where nvidia-smi lists a GPU, else 0.
GPU ?= $(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && echo 1 || echo 0)
ifeq ($(GPU),1)
BUILD := gpu
OTHER_TENSORFLOW := tensorflow-cpu
else ifeq ($(GPU),0)
BUILD := cpu
OTHER_TENSORFLOW := tensorflow
else
$(error GPU must be 1 (TensorFlow's GPU build) or 0 (its CPU build), got '$(GPU)')
endif
STAMP := $(VENV)/.installed-$(BUILD)
PROFILE ?= full
DATA_DIR ?=
OUT ?= reports

BENCH_ARGS ?=
REPORT_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help install report test format bench lab clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# TensorFlow's two builds install the same files: the other one leaves before this one comes
	@if [ "$$(uname -sm)" = "Linux x86_64" ] && $(BIN)/python -m pip show --quiet $(OTHER_TENSORFLOW) >/dev/null 2>&1; then \
		echo "removing $(OTHER_TENSORFLOW): TensorFlow's $(BUILD) build replaces it (GPU=$(GPU))"; \
		$(BIN)/python -m pip uninstall --quiet --yes $(OTHER_TENSORFLOW); fi
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(BUILD)]'
	$(BIN)/python -c 'from labutils.report import notebooks as n; n.ensure_kernel(); n.ensure_lab_settings(); n.ensure_paired_notebooks()'
	@rm -f $(VENV)/.installed $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project, TensorFlow's GPU build where nvidia-smi lists a GPU (GPU=0|1)

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
	$(BIN)/python -c 'from labutils.report.notebooks import ensure_paired_notebooks; ensure_paired_notebooks()'
	$(BIN)/jupyter lab notebooks

clean:  ## remove generated reports (keeps .venv and data/)
	rm -rf $(OUT)
