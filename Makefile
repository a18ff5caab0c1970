# Set-up and checks. `make demo` and `make test` work on a fresh machine: they create
# .venv, install the pinned versions (requirements/lock-pyX.Y.txt) and run.
# Python 3.12 (the pinned one; tools/find-python looks on PATH and in pyenv's versions).
PYTHON ?= $(shell tools/find-python)
ifeq ($(strip $(PYTHON)),)
$(error no Python >= 3.12 found; install one or pass PYTHON=/path/to/python3.12)
endif
VENV ?= .venv
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ifeq ($(filter 3.12 3.13,$(PYVER)),)
$(error PYTHON=$(PYTHON) is Python $(or $(PYVER),unknown); allowed: 3.12 (pinned) or 3.13)
endif
LOCK := requirements/lock-py$(PYVER).txt
STAMP := $(VENV)/.installed-py$(PYVER)
BIN := $(VENV)/bin
# PyTorch (.pt weights, ddp-experiment): torch 2.14.1, pinned in the lock, runs on the CPU.
EXTRAS := dev,torch,distributed
# Small matrices: one BLAS thread is much faster on these 2-core machines (docs/architecture.md).
export OPENBLAS_NUM_THREADS ?= 1
DEMO_OUT ?= build/demo

.PHONY: demo test test-fast bench lint lock clean

$(STAMP): pyproject.toml $(wildcard $(LOCK))
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		echo "$(VENV) has another Python; recreating it for $(PYVER)"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(wildcard $(LOCK)),--constraint $(LOCK),) -e '.[$(EXTRAS)]'
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
