# prefstyle: the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv if missing and install what they need, idempotently.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml scripts/system-packages.txt 2>/dev/null | cksum | cut -d' ' -f1)
SYSTEM_STAMP := $(VENV)/.system-installed-$(shell cat scripts/system-packages.txt 2>/dev/null | cksum | cut -d' ' -f1)
PYTEST_WORKERS ?= 2

.PHONY: all setup system demo lint test test-slow test-all bench clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

# System packages (real photographs for the content pool, browser for UI tests).
# Installed with apt-get where we are root; skipped with a message elsewhere.
$(SYSTEM_STAMP): scripts/system-packages.txt scripts/install-system.sh | $(BIN)/python
	bash scripts/install-system.sh scripts/system-packages.txt
	rm -f $(VENV)/.system-installed-*
	touch $@

setup: $(STAMP) $(SYSTEM_STAMP)
	@$(BIN)/python scripts/fetch_lpips.py --soft

system: $(SYSTEM_STAMP)

demo: setup
	$(BIN)/prefstyle demo

# ruff's linter and mypy over src/, ruff's formatter check over all Python (settings in pyproject.toml)
lint: setup
	$(BIN)/ruff check src
	$(BIN)/ruff format --check --quiet src tests benchmarks scripts
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

test-all: setup
	$(BIN)/python -m pytest -q -m "slow or not slow" -n $(PYTEST_WORKERS)

bench: setup  # the benchmarks that need no trained run or dataset (the others: docs/BENCHMARKS.md)
	$(BIN)/python benchmarks/run_all.py --out runs/bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
