# dislab — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU torch first where the machine provides it, so pip never pulls a CUDA build on a CPU machine.
TORCH ?= torch==2.13.0
export WANDB_MODE ?= offline
# glibc's allocator: stop returning memory to the system every step (measured by `make bench`)
export GLIBC_TUNABLES ?= glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824

.PHONY: help install run test lint bench report wheels
help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create $(VENV) and install dislab with its dev tools

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH) || echo "note: $(TORCH) not available here; pip will choose torch"
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -c "from dislab.metrics._gbt import warm_up; warm_up()"  # compile DCI's trees once (numba caches them)
	touch $@

run: install ## train the default model (beta-TCVAE on dSprites) on CPU and write its results
	$(PY) train.py trainer=cpu metrics=mig

test: install ## run the test suite (fast, offline, CPU)
	$(PY) -m pytest -q

lint: install ## ruff
	$(PY) -m ruff check src tests scripts train.py

bench: install ## measure speed as ratios (training vs bare loop, data, encoding, metrics, memory) -> bench.json
	$(PY) scripts/bench.py

report: install ## HTML report of sweeps/runs: make report [DIRS="outputs/multirun/a outputs/runs/b"] (default: newest sweep)
	$(PY) -m dislab.report $(or $(DIRS),$(shell ls -td outputs/multirun/*/ 2>/dev/null | head -1))

wheels: install ## fill .whl/ with the wheels a lent GPU image lacks, for scripts/device_check.py (README: GPU)
	PY=$(PY) scripts/prepare_device.sh
