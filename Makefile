# mesoslite developer commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test demo protos lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Install everything the tests need (ZooKeeper, Chromium and its driver from Debian, each when
# missing), then run them.
test: $(BIN)/python
	./scripts/install_test_deps.sh
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,plot]'
	$(BIN)/python -m pytest

# Install mesoslite, start a local cluster (1 master, 2 agents), run a job on it, stop it.
demo: $(BIN)/python
	$(BIN)/pip install -q -e .
	PATH=$(abspath $(BIN)):$$PATH ./scripts/demo.sh

protos:
	$(BIN)/python scripts/gen_protos.py

lint: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy src

bench:
	$(BIN)/python bench/bench_launch.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
