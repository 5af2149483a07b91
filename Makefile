# Two commands on a fresh machine with Python 3.11: `make sweep` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SWEEP_DIR ?= sweeps/default

.PHONY: install sweep test test-all clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

sweep: install
	$(BIN)/scaling sweep --config=configs/sweeps/default.py --sweep_dir=$(SWEEP_DIR)
	$(BIN)/scaling fit $(SWEEP_DIR)
	$(BIN)/scaling plot $(SWEEP_DIR)
	$(BIN)/scaling predict $(SWEEP_DIR) --family=gpt --holdout=1

# `slow` = the experiment smoke tests (minutes each, every experiment script end to end), three long
# end-to-end resume tests whose guarantees make test also checks more cheaply, and the downstream
# fine-tuning ladder (pretrained beats scratch); `make test-all` runs them.
# TEST_WORKERS processes (pytest-xdist; CI has 2 cores): most tests are a tiny compile or a subprocess that
# leaves a core idle. --dist loadgroup: tests/test_slurm_real.py's tests share one SLURM cluster (one worker).
# --durations lists the slowest, so a test that grows shows in every CI log.
TEST_WORKERS ?= 2
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15 -m "not slow" tests

test-all: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15 tests

clean:
	rm -rf $(VENV) sweeps
