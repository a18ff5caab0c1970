# Set-up and checks. `make demo` and `make test` work on a fresh machine: they create
# .venv, install the pinned versions (requirements/lock-py3.12.txt) and run.
ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
# Python 3.12, the version the lock pins: tools/find-python looks on PATH and in pyenv's
# versions (where the python3.12 shim on PATH fails); PYTHON=/path/to/python3.12 overrides.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell $(ROOT)tools/find-python 2>/dev/null)
endif
VENV ?= .venv
ifneq ($(MAKECMDGOALS),clean)
ifeq ($(strip $(PYTHON)),)
$(error no Python 3.12 found (tried python3.12, pyenv's 3.12 versions, python3); install it or pass PYTHON=/path/to/python3.12)
endif
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ifneq ($(PYVER),3.12)
$(error PYTHON=$(PYTHON) is Python $(or $(PYVER),unknown); allowed: 3.12, the version requirements/lock-py3.12.txt pins)
endif
endif
LOCK := requirements/lock-py$(PYVER).txt
STAMP := $(VENV)/.installed-py$(PYVER)
BIN := $(VENV)/bin
# PyTorch (.pt weights, ddp-experiment): torch 2.14.1, pinned in the lock, runs on the CPU.
# foundry: the CORNERSTONE flow's model tables; cspdk itself from requirements/foundry.txt.
EXTRAS := dev,torch,distributed,foundry
# Small matrices: one BLAS thread is much faster on these 2-core machines (docs/architecture.md).
export OPENBLAS_NUM_THREADS ?= 1
DEMO_OUT ?= build/demo

.PHONY: demo test test-fast bench lint lock clean

$(STAMP): pyproject.toml $(wildcard $(LOCK)) requirements/foundry.txt
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		echo "$(VENV) has another Python; recreating it for $(PYVER)"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(wildcard $(LOCK)),--constraint $(LOCK),) -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/foundry.txt
	@rm -f $(VENV)/.installed-py*
	touch $@

# One command for the whole flow; it prints where the GDS, the phase program and the report are.
demo: $(STAMP)
	$(BIN)/optinc build designs/aggregator_n4_b4/design.yaml --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The edit-test loop: everything but the tests marked slow (full builds, concurrent builds).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The reference decompositions of the `bench` extra (interferometer) run in the same table.
$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet $(if $(wildcard $(LOCK)),--constraint $(LOCK),) -e '.[$(EXTRAS),bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/bench_decompose.py
	$(BIN)/python benchmarks/bench_layout.py
	$(BIN)/python benchmarks/bench_verify.py
	$(BIN)/python benchmarks/bench_calibration.py
	$(BIN)/python benchmarks/bench_aggregator.py
	$(BIN)/python benchmarks/bench_chip_errors.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Refresh the pinned versions of this Python from the current .venv.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > $(LOCK)

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
