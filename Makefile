# gpwave: `make book` builds the book from the mini benchmark on CPU; `make test` runs
# lint, the test suite, a quick book build and the browser check. Both set themselves up.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

# Where data lives, and the local mirror of the mini benchmark when there is one.
export GPWAVE_DATA ?= $(CURDIR)/data
export GPWAVE_DATA_MIRROR ?= $(wildcard $(abspath $(CURDIR)/../shared/wavefake-mini))
# ... and of the paper's released checkpoints (gpwave data fetch models).
export GPWAVE_MODELS_MIRROR ?= $(wildcard $(abspath $(CURDIR)/../shared/reference-models))
# ... and of the test-only set of unseen speakers and end-to-end TTS (gpwave data fetch speakers).
export GPWAVE_SPEAKERS_MIRROR ?= $(wildcard $(abspath $(CURDIR)/../shared/speakers-tts-mini))
# ... and of speakers-train, many speakers and vocoders for training (gpwave data fetch speakers-train).
export GPWAVE_SPEAKERS_TRAIN_MIRROR ?= $(wildcard $(abspath $(CURDIR)/../shared/speakers-train))
export MPLBACKEND ?= Agg
export PYTHONHASHSEED ?= 0

.PHONY: help venv data lint format test test-all rehearsal book book-paper book-quick browser-deps web-deps bench gpu-check explore clean

help:
	@echo "make book       build the book (executes notebooks on the mini benchmark) -> book/_build/html"
	@echo "make book-paper the paper-scale book on a GPU node (full WaveFake, the paper's grid; resumes)"
	@echo "make test       lint + tests + quick book build + browser check"
	@echo "make test-all   also the slow tests"
	@echo "make rehearsal  the README's paper-scale commands on CPU, on synthetic data (~5 min)"
	@echo "make bench      print the benchmark numbers"
	@echo "make gpu-check  every CUDA branch on the mini benchmark, asserted (skips without CUDA)"
	@echo "make explore    the live fingerprint explorer (Voila) at http://127.0.0.1:\$$EXPLORE_PORT/"
	@echo "make data       fetch the mini benchmark into \$$GPWAVE_DATA (mirror: \$$GPWAVE_DATA_MIRROR)"
	@echo "                the paper's checkpoints (mirror: \$$GPWAVE_MODELS_MIRROR)"
	@echo "                and the test-only speakers-tts-mini (mirror: \$$GPWAVE_SPEAKERS_MIRROR)"
	@echo "                and the training set speakers-train (mirror: \$$GPWAVE_SPEAKERS_TRAIN_MIRROR)"

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[book,dev,explore,onnx]'
	touch $@

venv: $(VENV)/.installed

data: venv
	$(PY) -m gpwave data fetch mini
	$(PY) -m gpwave data fetch models
	$(PY) -m gpwave data fetch speakers
	$(PY) -m gpwave data fetch speakers-train

lint: venv
	$(PY) -m ruff check gpwave tests benchmarks notebooks
	$(PY) -m ruff format --check gpwave tests benchmarks notebooks

format: venv
	$(PY) -m ruff check --fix gpwave tests benchmarks notebooks
	$(PY) -m ruff format gpwave tests benchmarks notebooks

browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing Debian's chromium and chromium-driver for the browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }

# onnxruntime-web (pinned in package.json / package-lock.json) for the book's "Try it" page:
# gpwave book copies its WebAssembly files from node_modules into the build (no CDN).
web-deps: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { \
	  echo "installing Debian's npm for the book's onnxruntime-web"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

test: lint data browser-deps web-deps
	$(PY) -m pytest -m "not slow and not browser"
	$(PY) -m gpwave book --quick
	GPWAVE_REQUIRE_BOOK=1 $(PY) -m pytest -m browser

test-all: lint data web-deps
	$(PY) -m pytest

rehearsal: venv
	$(PY) -m pytest tests/test_rehearsal.py -m slow

book-quick: data web-deps
	$(PY) -m gpwave book --quick

# The paper-scale book on a GPU node (after the README's data steps): the paper's grid on
# full WaveFake; rerun it after an interruption and it resumes.
book-paper: data web-deps
	$(PY) -m gpwave book --matrix configs/book-wavefake.yaml --device $(or $(DEVICE),cuda)
	@echo "open book/_build/html/index.html"

book: data web-deps
	$(PY) -m gpwave book
	@echo "open book/_build/html/index.html"

# Run first on a GPU node: AMP steps, channels-last, torchrun+NCCL+SyncBatchNorm, evaluate
# and detect on CUDA, CUDA packets = CPU packets (a few minutes; exits 0 without CUDA).
gpu-check: data
	$(PY) benchmarks/gpu_check.py

bench: data
	$(PY) benchmarks/bench_transforms.py
	$(PY) benchmarks/bench_store.py
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_onnx.py
	$(PY) benchmarks/bench_bootstrap.py

# The live explorer: Voila on 127.0.0.1 only, offline (notebooks/jupyter holds its config
# and a template without CDN stylesheets); EXPLORE_DATA: any letter-prefixed tree.
EXPLORE_PORT ?= 8866
EXPLORE_DATA ?= $(GPWAVE_DATA)/wavefake-mini
EXPLORE_FRAMES ?= 64
explore: data
	@echo "the explorer: http://127.0.0.1:$(EXPLORE_PORT)/ (Ctrl-C stops it)"
	JUPYTER_PATH=$(CURDIR)/notebooks/jupyter JUPYTER_CONFIG_PATH=$(CURDIR)/notebooks/jupyter \
	  GPWAVE_EXPLORER_DATA=$(EXPLORE_DATA) GPWAVE_EXPLORER_FRAMES=$(EXPLORE_FRAMES) \
	  $(PY) -m voila notebooks/explorer.ipynb --port=$(EXPLORE_PORT)

clean:
	rm -rf book/_build book/executed book/extra/models book/extra/vendor/onnxruntime-web results .pytest_cache .ruff_cache
