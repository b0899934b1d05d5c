# mlpipeline: the one entry point. `make` (or `make help`) lists the targets.
# Root targets delegate to the same-named targets of each package and stop at the first failure.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT := $(abspath .)
PACKAGES := libs/artifact-contract services/trainer services/inference
UV_VERSION := 0.13.8
TOOLS := $(ROOT)/.tools
PYTHON ?= python3.11
# uv from PATH when there is one, else a repo-local copy installed from PyPI into .tools/.
UV ?= $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
export UV UV_PYTHON_DOWNLOADS := never
export MLFLOW_DISABLE_TELEMETRY := true

TRAIN_ARGS ?=

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: uv
uv: ## Install uv into .tools/ when it is not on PATH (needs only python3.11)
	@if [ ! -x "$(UV)" ]; then \
	  echo "uv not found: installing uv==$(UV_VERSION) into .tools/" >&2; \
	  $(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION); \
	fi

.PHONY: setup
setup: uv ## Create or sync every package's virtualenv from its lockfile
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg setup; done

.PHONY: lock
lock: uv ## Re-resolve every lockfile (hashed, universal, no URLs)
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg lock; done

.PHONY: lint
lint: uv lint-monitoring ## ruff check, ruff format --check and mypy --strict in every package
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg lint; done

MONITORING := infra/monitoring
.PHONY: lint-monitoring
lint-monitoring: ## promtool: check the alert/recording rules and scrape config, run the alert unit tests
	@command -v promtool >/dev/null || { echo "promtool not found: apt-get install -y prometheus (Debian/Ubuntu), or brew install prometheus" >&2; exit 1; }
	promtool check rules $(MONITORING)/rules/*.yml
	promtool check config $(MONITORING)/prometheus.yml
	promtool test rules $(MONITORING)/tests/alerts_test.yml
	$(PYTHON) -m json.tool $(MONITORING)/grafana/inference-dashboard.json >/dev/null

.PHONY: format
format: uv ## Apply ruff format and safe fixes in every package
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg format; done

.PHONY: test
test: lint ## Lint, then every package's tests
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg test; done

.PHONY: train
train: uv ## Train one model: runs/artifacts/runs/vNNN (TRAIN_ARGS="--seed 7 ...")
	@$(MAKE) -C services/trainer train TRAIN_ARGS='$(TRAIN_ARGS)'

.PHONY: mlflow-ui
mlflow-ui: uv ## Open the MLflow UI on the embedded store (http://127.0.0.1:5000)
	@$(MAKE) -C services/trainer mlflow-ui

.PHONY: serve
serve: uv ## Serve a model with gunicorn (HOST, PORT, WORKERS, MODEL_ARTIFACT_URI, MODEL_DIR, MODEL_SHA256)
	@$(MAKE) -C services/inference serve

.PHONY: demo
demo: uv ## Fresh clone to a served model: setup, train if there is no latest, serve on :8080
	@$(MAKE) -C services/inference demo

.PHONY: bench
bench: uv ## Benchmark our server against `mlflow models serve` on the same run (needs wrk)
	@$(MAKE) -C services/inference bench

.PHONY: clean
clean: ## Remove virtualenvs, caches and build output (keeps runs/)
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg clean; done
	rm -rf build .tools
