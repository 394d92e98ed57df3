# One target per job. Every target creates .venv and installs the kit first if needed.
# Variables: SCALE (smoke|quick|paper), SEEDS (e.g. 0,1,2), DEVICE (auto|cpu|cuda), RUNS, JOBS, RESULTS, DATA.
PY        ?= python3
VENV      ?= .venv
PYTHON    ?= $(VENV)/bin/python
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
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
# (nascore/runtime.py default_threads); THREADS=N fixes it. Recorded in each trial's config.json.
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
	$(VENV)/bin/pip install -q $(TORCH_PIN)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

test: $(INSTALL)  ## the whole CPU suite (slow real-data tests run when NASIB_DATA is set)
	$(PYTHON) -m pytest -q -ra

test-fast: $(INSTALL)  ## the suite without slow tests
	$(PYTHON) -m pytest -q -m "not slow"

# CIFAR-10 in the standard layout: decoded from JPEG_PACK when given, else torchvision's download.
data: $(INSTALL)
	@if [ -f $(DATA)/cifar-10-batches-py/test_batch ]; then echo "data present in $(DATA)"; \
	elif [ -n "$(JPEG_PACK)" ]; then $(PYTHON) -m nascore.jpeg_pack $(JPEG_PACK) $(DATA); \
	else $(PYTHON) -c "import torchvision; torchvision.datasets.CIFAR10('$(DATA)', download=True)"; fi

demo: $(INSTALL)  ## a small real search of each method, its records and a plot, in a few CPU minutes
	$(MAKE) --no-print-directory data || ( echo "no CIFAR-10 here: using the synthetic stand-in"; \
	  $(PYTHON) -m nascore.synthetic $(DATA) --train 3000 --test 500 )
	$(PYTHON) -m enas_ext search --space extended --preset smoke --device $(DEVICE) --data-dir $(DATA) --threads $(THREADS) \
	  --out $(RESULTS)/demo/enas-extended-s0
	$(PYTHON) -m nasib search --space superkernel --preset smoke --budget 90s --device $(DEVICE) --threads $(THREADS) \
	  --data-dir $(DATA) --out $(RESULTS)/demo/nasib-superkernel-b90s-s0
	$(PYTHON) -m analysis.curves $(RESULTS)/demo --figure fig3 --out $(RESULTS)/demo

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

# The GPU check (~10 min on one H100-class GPU): gpu tests, paper-preset speed goals, a ci-scale fig2 + fig5
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
