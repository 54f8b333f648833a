# vlzoo: one Makefile for the monorepo. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip
CONSTRAINTS := constraints.txt
# Locally built wheels (mmcv with compiled ops) live here, keyed by the torch version inside.
WHEEL_CACHE ?= $(HOME)/.cache/vlzoo/wheels
PACKAGES    := shared tokenpacker osprey ovml_query textonly_adapter apro_affinity
STAMP       := $(VENV)/.install-stamp
NGPU        ?= 1
CONFIG      ?=
ARGS        ?=
PYTEST_ARGS ?=

# Nothing is fetched from a model hub, ever.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export DS_ACCELERATOR ?= $(if $(shell command -v nvidia-smi 2>/dev/null),cuda,cpu)
export CUDA_HOME ?= $(if $(wildcard /usr/local/cuda),/usr/local/cuda,)

# Short names for the pattern targets: `make bench-apro` == `make bench-apro_affinity`.
ALIAS_apro := apro_affinity
ALIAS_qks  := ovml_query
ALIAS_tai  := textonly_adapter
pkg = $(or $(ALIAS_$*),$*)
config_arg = $(if $(CONFIG),--config $(pkg)/configs/$(CONFIG).yaml,)
launch = $(if $(filter 1,$(NGPU)),$(PY) -m,$(VENV)/bin/torchrun --nproc_per_node=$(NGPU) -m)

.PHONY: help install test test-slow test-gpu test-all lint demo toyclip build-ext clean-venv

help: ## list the targets
	@echo "vlzoo targets:"
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-18s %s\n", $$1, $$2}'
	@echo "  (paper names: tokenpacker osprey ovml_query|qks textonly_adapter|tai apro_affinity|apro)"
	@echo "  variables: CONFIG=<name in <paper>/configs, no .yaml> ARGS='key=value ...' NGPU=<n>"

install: $(STAMP) ## create .venv (Python 3.11) and install every package with exact pins

$(STAMP): $(CONSTRAINTS) $(foreach p,$(PACKAGES),$(p)/pyproject.toml) scripts/install.sh scripts/build_mmcv_wheel.sh
	VENV=$(VENV) CONSTRAINTS=$(CONSTRAINTS) WHEEL_CACHE=$(WHEEL_CACHE) scripts/install.sh $(PACKAGES)
	@touch $@

test: install ## the default test run (CPU, no slow or GPU tests); this is what CI runs
	$(PY) -m pytest tests -m "not slow and not gpu" $(PYTEST_ARGS)

test-slow: install ## the slow tests (full toy pretraining, CUDA compilation, multi-process DeepSpeed)
	$(PY) -m pytest tests -m "slow and not gpu" $(PYTEST_ARGS)

test-gpu: install ## the CUDA tests (run on the GPU machine)
	$(PY) -m pytest tests -m "gpu" $(PYTEST_ARGS)

test-%: install ## tests of one package: make test-tokenpacker (shared = vlzoo)
	$(PY) -m pytest tests/$(pkg) -m "not slow and not gpu" $(PYTEST_ARGS)

lint: install ## ruff over the whole repo
	$(VENV)/bin/ruff check .

build-ext: install ## compile every C++ extension (and the CUDA sources when nvcc is present)
	$(PY) -m vlzoo.ops.build

# Each paper's toy pipeline, in order; the shared part (toy world + toy CLIPs, cached) comes first.
DEMOS := vlzoo tokenpacker apro_affinity

demo: install ## run the main job on the embedded default (toy world, toy CLIPs, each paper's toy run)
	@set -e; for m in $(DEMOS); do echo "=== $$m demo ==="; start=$$(date +%s); \
	  $(PY) -m $$m.demo $(ARGS); echo "=== $$m demo: $$(( $$(date +%s) - start )) s ==="; done

toyclip: install ## generate the toy world and pretrain the toy CLIPs (cached in .cache/vlzoo)
	$(PY) -m vlzoo.toyworld pretrain-clip $(ARGS)

train-%: install ## train a paper: make train-tokenpacker [CONFIG=...] [ARGS=...] [NGPU=8]
	$(launch) $(pkg).train $(config_arg) $(ARGS)

eval-%: install ## evaluate a paper: make eval-tokenpacker [CONFIG=...] [ARGS=...]
	$(launch) $(pkg).evaluate $(config_arg) $(ARGS)

bench-%: install ## benchmark a paper's hot paths: make bench-apro
	$(PY) -m $(pkg).bench $(ARGS)

reproduce-%: install ## rerun a paper's miniature reproduction from scratch: make reproduce-tokenpacker
	$(PY) -m $(pkg).reproduce $(ARGS)

clean-venv: ## remove .venv (the wheel cache in $(WHEEL_CACHE) is kept)
	rm -rf $(VENV)
