# Shared recipe for one Python package's Makefile (included by libs/* and services/*).
# The including Makefile sets EDITABLE (what to install in editable mode on top of the lock)
# and, for a service, RUNTIME_LOCK := requirements.lock.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# stdout belongs to the command a target runs (JSON for train, promote, rollback, retrain: `| jq`
# works): setup's own output goes to stderr, and nested makes print no directory lines (run
# targets from the repo root: `make -C dir` prints its own before it reads this file).
MAKEFLAGS += --no-print-directory
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)
TOOLS := $(ROOT)/.tools
PYTHON ?= python3.11
UV ?= $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export MLFLOW_DISABLE_TELEMETRY := true
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.synced
DEV_LOCK := requirements-dev.lock
RUNTIME_LOCK ?=
COMPILE := $(UV) pip compile --quiet --universal --generate-hashes --python-version 3.11 \
	--no-header --annotation-style line

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(TOOLS)/bin/uv:
	@$(MAKE) -C $(ROOT) uv

# The venv is (re)synced whenever a lockfile or pyproject.toml is newer than the last sync.
# --compile-bytecode: imports stay fast even where PYTHONDONTWRITEBYTECODE=1 (mlflow alone
# costs ~5 s per process to compile from source otherwise).
$(STAMP): $(DEV_LOCK) pyproject.toml | $(UV)
	@echo "$(notdir $(CURDIR)): syncing $(VENV) from $(DEV_LOCK)" >&2
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV) >&2
	@$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python $(DEV_LOCK) >&2
	@$(UV) pip install --quiet --python $(BIN)/python --no-deps $(EDITABLE) >&2
	@touch $@

.PHONY: setup
setup: $(STAMP) ## Create or sync .venv from the lockfile

.PHONY: lock
lock: | $(UV) ## Re-resolve the lockfile(s) from pyproject.toml
ifneq ($(RUNTIME_LOCK),)
	$(COMPILE) pyproject.toml $(LOCK_CONSTRAINTS) -o $(RUNTIME_LOCK)
	@# The dev lock keeps every runtime pin (the local path line cannot be a constraint).
	$(COMPILE) pyproject.toml --extra dev -c <(grep -v '^\.' $(RUNTIME_LOCK)) -o $(DEV_LOCK)
else
	$(COMPILE) pyproject.toml --extra dev -o $(DEV_LOCK)
endif

.PHONY: lint
lint: setup ## ruff check, ruff format --check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: format
format: setup ## ruff format and ruff check --fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest-randomly is in every dev lock: each run takes a new random order (its seed is printed
# in the header; rerun one with PYTEST_ARGS=--randomly-seed=N, or keep the file
# order with PYTEST_ARGS="-p no:randomly").
.PHONY: test
test: setup ## Run every test of this package (slow ones too), in random order
	$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: setup ## The tests not marked slow (no real servers, images, notebook), in random order
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

.PHONY: clean
clean: ## Remove .venv and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
