# One target per job. Every target creates .venv and installs the kit first if needed.
# Variables: SCALE (smoke|medium|quick|paper), SEEDS (e.g. 0,1,2), DEVICE (auto|cpu|cuda), RUNS, JOBS, RESULTS, DATA.
PY        ?= python3
VENV      ?= .venv
PYTHON    ?= $(VENV)/bin/python
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
# a wheel index for torch, e.g. https://download.pytorch.org/whl/cpu: the CPU-only build, without the
# 3 GB of CUDA libraries the default index's wheel pulls in (docs/install.md)
TORCH_INDEX ?=
# the kit's extras: dev (pytest, hypothesis, ruff, actionlint: what make test and make lint run), ray, tb
# (TensorBoard for --tensorboard); EXTRAS= installs the commands alone
EXTRAS    ?= dev,ray,tb
SCALE     ?= quick
SEEDS     ?=
DEVICE    ?= auto
RESULTS   ?= results# the shipped tree: reference records (results/reference/<scale>) and bench figures
RUNS      ?= runs# where experiment targets write and read: RUNS/<scale>/ (git-ignored); never the shipped records
JOBS      ?= 1# trials at once on this machine, each its own process (experiments run --jobs)
DATA      ?= $(if $(NASIB_DATA),$(NASIB_DATA),data)
JPEG_PACK ?=# a CIFAR-10 JPEG pack (.npz) to build DATA from without internet (docs/data.md)
INSTALL   ?= install# set INSTALL= to use an existing environment (with PYTHON=...)
# torch threads: auto = the cores not already busy, the rule every command uses by hand too
# (contract/threads.py default_threads); THREADS=N fixes it. Recorded in each trial's config.json.
THREADS   ?= auto
SEEDS_ARG := $(if $(SEEDS),--seeds $(SEEDS),)
RUN       := $(PYTHON) -m experiments run
OUT       = $(RUNS)/$(SCALE)
CLAIMS    = $(PYTHON) -m analysis.claims $(OUT)  # figures/claims.md: every paper claim's verdict
RUN_ARGS  = --scale $(SCALE) $(SEEDS_ARG) --device $(DEVICE) --results $(OUT) --data-dir $(DATA) --threads $(THREADS) \
            --jobs $(JOBS)

.PHONY: install test test-fast demo data fig2 fig3 fig4 fig5 table1 budget-sweep all bench planted ci-gpu ci-gpu-cuda lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(TORCH_PIN) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	$(VENV)/bin/pip install -q -e '.$(if $(EXTRAS),[$(EXTRAS)],)'
	touch $@

test: $(INSTALL)  ## the whole CPU suite (slow real-data tests run when NASIB_DATA is set)
	$(PYTHON) -m pytest -q -ra

test-fast: $(INSTALL)  ## the suite without slow tests
	$(PYTHON) -m pytest -q -m "not slow"

# CIFAR-10 in the standard layout: kept when present (a synthetic stand-in does not count: it is moved
# to DATA/synthetic-cifar10), else decoded from JPEG_PACK, else torchvision's download (one line if offline).
data: $(INSTALL)
	@$(PYTHON) -m nascore.fetch get $(DATA) $(if $(JPEG_PACK),--jpeg-pack $(JPEG_PACK),)

# Without CIFAR-10 (no internet, no JPEG_PACK) the demo trains on the synthetic stand-in in
# DATA/synthetic-cifar10, and says so; a later make data JPEG_PACK=... brings the real images.
demo: $(INSTALL)  ## a small real search of each method, its records and a plot, in a few CPU minutes
	@$(PYTHON) -m nascore.fetch get $(DATA) $(if $(JPEG_PACK),--jpeg-pack $(JPEG_PACK),) || true
	@d=$$($(PYTHON) -m nascore.fetch demo-root $(DATA)) && set -x && \
	$(PYTHON) -m enas_ext search --space extended --scale smoke --device $(DEVICE) --data-dir $$d --threads $(THREADS) \
	  --out $(RUNS)/demo/enas-extended-s0 && \
	$(PYTHON) -m nasib search --space superkernel --scale smoke --budget 90s --device $(DEVICE) --threads $(THREADS) \
	  --data-dir $$d --out $(RUNS)/demo/nasib-superkernel-b90s-s0 && \
	$(PYTHON) -m analysis.curves $(RUNS)/demo --figure fig3 --out $(RUNS)/demo

fig2: $(INSTALL)
	$(RUN) fig2 $(RUN_ARGS)
	$(PYTHON) -m analysis.curves $(OUT) --figure fig2
	$(CLAIMS)

fig3: $(INSTALL)
	$(RUN) fig3 $(RUN_ARGS)
	$(PYTHON) -m analysis.curves $(OUT) --figure fig3
	$(CLAIMS)

fig4: $(INSTALL)
	$(RUN) fig4 $(RUN_ARGS)
	$(PYTHON) -m analysis.kernel_freq $(OUT)
	$(CLAIMS)

fig5 budget-sweep: $(INSTALL)
	$(RUN) fig5 $(RUN_ARGS)
	$(PYTHON) -m analysis.curves $(OUT) --figure fig5
	$(CLAIMS)

table1: $(INSTALL)
	$(RUN) table1 $(RUN_ARGS)
	$(PYTHON) -m analysis.table1 $(OUT)
	$(CLAIMS)

all: fig2 fig3 fig4 fig5 table1

bench: $(INSTALL)  ## speed figures on this machine -> results/bench/
	$(PYTHON) -m benchmarks --device $(DEVICE) --out $(RESULTS)/bench --threads $(THREADS)

# Planted-op check: every search must find the one useful op of a space whose other ops are made
# useless or harmful (synthetic data); ENAS gets the most time (4,000 controller updates per seed).
# SEED: comma-separated seeds (each draws its planted ops); PLANTED: one op for every space that has it.
SEED      ?= 0,1,2
PLANTED   ?=
planted: $(INSTALL)  ## planted-op check of every search -> $(RESULTS)/bench/planted.json (~8 min a seed on one core)
	$(PYTHON) -m benchmarks.planted --seed $(SEED) $(if $(PLANTED),--planted $(PLANTED),) \
	  --device $(DEVICE) --threads $(THREADS) --out $(RESULTS)/bench/planted.json

# The GPU check (~10 min on one H100-class GPU): gpu tests, paper-scale speed goals, a ci-scale fig2 + fig5
# and their analysis, all under $(RESULTS)/ci-gpu. Stops at once without CUDA (CI_GPU_FAKE=1: a CPU dry run).
# Settable: TORCH_PIN (the runner's CUDA build), NASIB_DATA, ENAS_EPOCH_S, NASIB_EPOCH_S, CHECKPOINT_SHARE.
# A bare GPU machine without pip access: make ci-gpu INSTALL= PYTHON=python3 PYTHONPATH=. (see scripts/ci_gpu.sh)
ci-gpu: ci-gpu-cuda $(INSTALL)
	PYTHON=$(PYTHON) CI_GPU_OUT=$(RESULTS)/ci-gpu NASIB_DATA=$(DATA) JPEG_PACK=$(JPEG_PACK) bash scripts/ci_gpu.sh

NEED_CUDA = make ci-gpu needs CUDA: no NVIDIA GPU is visible here (nvidia-smi); run it on a GPU machine (CI_GPU_FAKE=1: a CPU dry run)
ci-gpu-cuda:  # one line and a stop, before anything is installed
	$(if $(CI_GPU_FAKE)$(shell nvidia-smi -L 2>/dev/null | grep GPU),@true,$(error $(NEED_CUDA)))

lint: $(INSTALL)
	$(PYTHON) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
