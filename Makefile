# dislab — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# The exact versions the test suite last passed with (make lock writes them); pip takes them as constraints.
CONSTRAINTS ?= constraints.txt
# torch first, at the pinned version: the CPU build where the machine provides it, PyPI's CUDA build on a GPU machine.
TORCH ?= $(shell grep -m1 '^torch==' $(CONSTRAINTS))
export WANDB_MODE ?= offline
# this checkout's code, whichever checkout's $(VENV) is used (its editable install points at the one it was made in)
export PYTHONPATH := $(CURDIR)/src$(if $(PYTHONPATH),:$(PYTHONPATH))
# glibc's allocator: stop returning memory to the system every step (measured by `make bench`)
export GLIBC_TUNABLES ?= glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824

.PHONY: help install run test lint bench report lock wheels FORCE
help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create $(VENV) and install dislab with its dev tools

# What decides the install is the content of pyproject.toml and $(CONSTRAINTS) and the torch requirement, not
# their file times: $(VENV)/.installed holds their sha256, and the install runs only when it differs. So a fresh
# clone of an installed checkout with its .venv linked or copied in (or VENV=<that .venv>) installs nothing,
# though git gave the files new times; editing either file (or TORCH=...) installs again.
SHA256 := $(if $(shell command -v sha256sum),sha256sum,shasum -a 256)
INSTALL_KEY := $(shell { cat pyproject.toml $(CONSTRAINTS); echo '$(TORCH)'; } 2>/dev/null | $(SHA256) | cut -c1-64)
ifneq ($(INSTALL_KEY),$(shell cat $(VENV)/.installed 2>/dev/null))
$(VENV)/.installed: FORCE
endif
$(VENV)/.installed:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c $(CONSTRAINTS) $(or $(TORCH),torch)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	$(PY) -c "from dislab.metrics._gbt import warm_up; warm_up()"  # compile DCI's trees once (numba caches them)
	echo $(INSTALL_KEY) > $@
FORCE:

run: install ## train the default model (beta-TCVAE on dSprites) on CPU and write its results
	$(PY) train.py trainer=cpu metrics=mig

test: install ## run the test suite (offline, CPU; as root it installs SLURM for tests/test_slurm.py and chromium for the report)
	scripts/install_slurm
	scripts/install_chromium
	$(PY) -m pytest -q

lint: install ## ruff
	$(PY) -m ruff check src tests scripts train.py

bench: install ## measure speed as ratios (training vs bare loop, data, encoding, metrics, memory) -> bench.json
	$(PY) scripts/bench.py

lock: test ## after the suite passed: pin the installed versions in constraints.txt (make install uses them)
	$(PY) scripts/lock.py > $(CONSTRAINTS).new && mv $(CONSTRAINTS).new $(CONSTRAINTS)

report: install ## HTML report of sweeps/runs: make report [DIRS="outputs/multirun/a outputs/runs/b"] [REF=lin2020] [BASELINE=vae] (default: newest sweep)
	$(PY) -m dislab.report $(or $(DIRS),$(shell ls -td outputs/multirun/*/ 2>/dev/null | head -1)) $(if $(REF),--reference $(REF)) $(if $(BASELINE),--baseline $(BASELINE))

wheels: install ## fill .whl/ with the wheels a GPU machine without PyPI lacks, for scripts/device_check.py (docs/development.md)
	PY=$(PY) scripts/prepare_device.sh
