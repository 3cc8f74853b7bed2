# Two commands do all the set-up: `make test` and `make book`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.beafx-installed

.PHONY: venv test test-colab test-live book book-regenerate book-clean bench clean debian-music demo-model demo-chain-model

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,book]"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# Part of `make test`, alone: a chapter run as on Colab (a venv over .venv's packages, beafx
# pip-installed from this clone), and the chapters' sliders dragged in JupyterLab + chromium.
test-colab: $(STAMP)
	$(PY) -m pytest tests/test_colab.py

test-live: $(STAMP)
	$(PY) -m pytest tests/test_book_live.py

# With CI=true every Sphinx warning fails the book (a chapter that writes to stderr, a broken
# {src} link, ...); --keep-going lists them all first. Same book either way.
BOOK_FLAGS ?= $(if $(filter true 1 yes,$(CI)),-W --keep-going,)

# BEAFX_PROFILE (default cpu) picks the results the chapters show: `cpu` reads the committed
# results/cpu/, `smoke` computes its own in minutes (what CI builds). The execution cache is
# cleared where the profile or the results changed since the last build (book/_tools/results_cache.py).
book: $(STAMP)
	$(PY) book/_tools/results_cache.py
	$(VENV)/bin/jupyter-book build book/ $(BOOK_FLAGS)

# Run what the profile's experiments lack (hours for cpu on a 2-core CPU; see
# `beafx experiments --profile cpu --dry-run`), then build the book from the results.
book-regenerate: $(STAMP)
	$(VENV)/bin/beafx experiments --profile $${BEAFX_PROFILE:-cpu}
	$(MAKE) book

book-clean:
	rm -rf book/_build

bench: $(STAMP)
	$(VENV)/bin/beafx bench

clean:
	rm -rf $(VENV) book/_build .pytest_cache

# Freely licensed real music for the `debian-music` data source (licenses: beafx/data/debian.py).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

debian-music:
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y warzone2100-music

# The demo model of the book and of `beafx estimate` (the `cpu` PEQ/TFE/Mel run): train (or
# resume), evaluate, export. About 15-30 min on a 2-core CPU; run the same on a GPU to go faster.
DEMO_RUN := results/cpu/runs/peq-peq-tfe-mel-cpu-s0
DEMO_DIR := beafx/models/peq_tfe_mel

demo-model: $(STAMP)
	$(VENV)/bin/beafx train --chain peq --encoder tfe --loss mel --profile cpu --out $(DEMO_RUN) --resume
	$(VENV)/bin/beafx evaluate $(DEMO_RUN) > $(DEMO_RUN)/evaluation.json
	mkdir -p $(DEMO_DIR)
	$(VENV)/bin/beafx export $(DEMO_RUN) --out $(DEMO_DIR)/model.pt --metrics $(DEMO_RUN)/evaluation.json
	cp $(DEMO_RUN)/evaluation.json $(DEMO_RUN)/result.json $(DEMO_RUN)/config.json $(DEMO_DIR)/

# The second demo model (the mastering-transfer chapter, `demo:chain`): Table 5's whole-chain
# run (synthesis peq+compressor+clipper, analysis with the hybrid compressor, TFE, Mel loss,
# seed 1) from the experiment grid: train (or resume) it, evaluate, export. About 40-60 min on
# a 2-core CPU (the hybrid's proxy dominates).
DEMO_CHAIN_NAME := peq_compressor_clipper-peq_hybrid_compressor_clipper-tfe-mel-cpu-s1
DEMO_CHAIN_RUN := results/cpu/runs/synthetic/$(DEMO_CHAIN_NAME)
DEMO_CHAIN_DIR := beafx/models/chain_tfe_mel

demo-chain-model: $(STAMP)
	$(VENV)/bin/beafx experiments --profile cpu --source synthetic --only $(DEMO_CHAIN_NAME)
	$(VENV)/bin/beafx evaluate $(DEMO_CHAIN_RUN) > $(DEMO_CHAIN_RUN)/evaluation.json
	mkdir -p $(DEMO_CHAIN_DIR)
	$(VENV)/bin/beafx export $(DEMO_CHAIN_RUN) --out $(DEMO_CHAIN_DIR)/model.pt --metrics $(DEMO_CHAIN_RUN)/evaluation.json
	cp $(DEMO_CHAIN_RUN)/evaluation.json $(DEMO_CHAIN_RUN)/result.json $(DEMO_CHAIN_RUN)/config.json $(DEMO_CHAIN_DIR)/
