# Set-up and checks. `make demo` and `make test` work on a fresh machine: they create
# .venv, install the pinned versions (requirements/lock-pyX.Y.txt) and run.
PYTHON ?= python3
VENV ?= .venv
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
LOCK := requirements/lock-py$(PYVER).txt
STAMP := $(VENV)/.installed-py$(PYVER)
BIN := $(VENV)/bin
# PyTorch (for .pt weights) only where its CPU build is pinned: the 3.11 lock has
# torch==2.13.0 from local disk; elsewhere pip would download a CUDA build of several GB.
comma := ,
EXTRAS := dev$(if $(filter 3.11,$(PYVER)),$(comma)torch$(comma)distributed,)
# Small matrices: one BLAS thread is much faster on these 2-core machines (ECOSYSTEM.md).
export OPENBLAS_NUM_THREADS ?= 1
DEMO_OUT ?= build/demo

.PHONY: demo test bench lint lock clean

$(STAMP): pyproject.toml $(wildcard $(LOCK))
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		echo "$(VENV) has another Python; recreating it for $(PYVER)"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(wildcard $(LOCK)),--constraint $(LOCK),) -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-py*
	touch $@

demo: $(STAMP)
	@mkdir -p $(DEMO_OUT)
	$(BIN)/optinc compile designs/mlp_demo/weights.npz -o $(DEMO_OUT)/program.json
	$(BIN)/optinc check $(DEMO_OUT)/program.json --against designs/mlp_demo/weights.npz
	$(BIN)/optinc layout $(DEMO_OUT)/program.json -o $(DEMO_OUT)/chip.gds --png $(DEMO_OUT)/chip.png
	$(BIN)/optinc drc $(DEMO_OUT)/chip.gds --report $(DEMO_OUT)/drc.lyrdb
	$(BIN)/optinc lvs $(DEMO_OUT)/chip.gds $(DEMO_OUT)/program.json
	$(BIN)/optinc verify $(DEMO_OUT)/chip.gds --program $(DEMO_OUT)/program.json --against designs/mlp_demo/weights.npz \
		--sweep 1.50:1.60:101 --monte-carlo 200 --coupler-sigma 0.01 --phase-sigma-rad 0.005 --seed 1 \
		--report $(DEMO_OUT)/verify
	@echo "phase program: $(DEMO_OUT)/program.json"
	@echo "layout:        $(DEMO_OUT)/chip.gds ($(DEMO_OUT)/chip.png), DRC markers $(DEMO_OUT)/drc.lyrdb"
	@echo "verification:  $(DEMO_OUT)/verify/verify.md ($(DEMO_OUT)/verify/verify.json)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The reference decompositions of the `bench` extra (interferometer) run in the same table.
$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet $(if $(wildcard $(LOCK)),--constraint $(LOCK),) -e '.[$(EXTRAS),bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/bench_decompose.py
	$(BIN)/python benchmarks/bench_layout.py
	$(BIN)/python benchmarks/bench_verify.py
	$(BIN)/python benchmarks/bench_calibration.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Refresh the pinned versions of this Python from the current .venv.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > $(LOCK)

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
