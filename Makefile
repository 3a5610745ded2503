# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TRACKING_URI ?= sqlite:///mlflow.db
UI_PORT ?= 5000
# pytest-xdist workers for `make test`. The suite is half waiting (Ray actors starting,
# servers coming up, trials held at events), so two workers on 2 cores take 16 min
# where one took 23. Each worker runs its own Ray and its own event folder
# (tests/conftest.py); --dist loadfile keeps a file's module fixtures on one worker.
TEST_WORKERS ?= 2

.PHONY: install demo quick test test-fast lint-imports ui mlflow-server bench bench-scale clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip setuptools wheel
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## a real tuning job on 200k synthetic transactions, logged to ./mlflow.db
	$(BIN)/tuning run examples/fraud_xgb.yaml --tracking-uri $(TRACKING_URI)

quick: $(STAMP)  ## a one-minute job
	$(BIN)/tuning run examples/quick.yaml --tracking-uri $(TRACKING_URI)

test: $(STAMP)  ## the import contract, then the whole suite, slow tests included
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: $(STAMP)  ## the import contract and the unit tests only
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

lint-imports: $(STAMP)  ## the layers contract of tuning/ (pyproject.toml [tool.importlinter])
	$(BIN)/lint-imports

ui: $(STAMP)  ## browse the runs of `make demo` on http://127.0.0.1:$(UI_PORT)
	$(BIN)/mlflow ui --backend-store-uri $(TRACKING_URI) --host 127.0.0.1 --port $(UI_PORT)

mlflow-server: $(STAMP)  ## a tracking server on http://127.0.0.1:$(UI_PORT) for jobs to log to
	$(BIN)/tuning server --host 127.0.0.1 --port $(UI_PORT) --backend-store-uri $(TRACKING_URI)

bench: $(STAMP)  ## side-by-side comparison with plain Ray Tune and Optuna
	$(BIN)/python -m benchmarks.compare

bench-scale: $(STAMP)  ## 1M / 5M / 10M rows, single-worker and 2 data-parallel workers (docs/performance.md)
	$(BIN)/python -m benchmarks.scale

clean:
	rm -rf tuning_runs mlflow.db mlartifacts .pytest_cache
