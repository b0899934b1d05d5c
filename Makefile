# mlpipeline: the one entry point. `make` (or `make help`) lists the targets.
# Root targets delegate to the same-named targets of each package and stop at the first failure.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT := $(abspath .)
PACKAGES := libs/artifact-contract services/trainer services/inference
TOOLS := $(ROOT)/.tools
PYTHON ?= python3.11
# uv from PATH when there is one, else a repo-local copy installed from PyPI into .tools/.
UV ?= $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
export UV UV_PYTHON_DOWNLOADS := never
export MLFLOW_DISABLE_TELEMETRY := true

TRAIN_ARGS ?=

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: uv
uv: ## Install uv into .tools/ when it is not on PATH (needs only python3.11)
	@if [ ! -x "$(UV)" ]; then \
	  echo "uv not found: installing it into .tools/ from infra/tools/requirements-uv.lock" >&2; \
	  $(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/python -m pip install --quiet --require-hashes \
	    -r $(ROOT)/infra/tools/requirements-uv.lock; \
	fi

.PHONY: setup
setup: uv ## Create or sync every package's virtualenv from its lockfile
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg setup; done

.PHONY: lock
lock: uv ## Re-resolve every lockfile (hashed, universal, no URLs)
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg lock; done

.PHONY: lint
lint: uv lint-monitoring lint-infra ## Every linter: ruff + ruff format --check + mypy --strict per package and tests/, lint-infra, lint-monitoring
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg lint; done
	@$(MAKE) lint-repo-tests

.PHONY: lint-infra
lint-infra: uv ## hadolint every Dockerfile; workflow + compose schemas; zizmor --offline (no medium+ findings); infra/k8s vs the Kubernetes schemas
	@$(MAKE) -C infra/tools lint

MONITORING := infra/monitoring
# promtool from PATH, else a repo-local copy that `make promtool` takes out of Debian's package.
PROMTOOL ?= $(shell command -v promtool 2>/dev/null || echo $(TOOLS)/bin/promtool)

.PHONY: promtool
promtool: ## Get promtool when it is missing: from Debian's prometheus package into .tools/ (apt)
	@if [ ! -x "$(PROMTOOL)" ]; then \
	  command -v apt-get >/dev/null || { echo "promtool not found: install Prometheus's promtool (brew install prometheus, or its release tarball) and retry" >&2; exit 1; }; \
	  echo "promtool not found: taking it from Debian's prometheus package into .tools/bin (apt-get download)" >&2; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq; fi; \
	  scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	  (cd "$$scratch" && apt-get download -qq -o APT::Sandbox::User=root prometheus >/dev/null) || { \
	    echo "promtool not found and apt-get download prometheus failed: as root, apt-get install -y prometheus" >&2; exit 1; }; \
	  dpkg-deb --fsys-tarfile "$$scratch"/prometheus_*.deb | tar -x -C "$$scratch" ./usr/bin/promtool; \
	  mkdir -p $(TOOLS)/bin && mv "$$scratch/usr/bin/promtool" $(TOOLS)/bin/promtool; \
	fi

.PHONY: lint-monitoring
lint-monitoring: promtool ## promtool: check the alert/recording rules and scrape config, run the alert unit tests
	$(PROMTOOL) check rules $(MONITORING)/rules/*.yml
	$(PROMTOOL) check config $(MONITORING)/prometheus.yml
	$(PROMTOOL) test rules $(MONITORING)/tests/alerts_test.yml
	$(PYTHON) -m json.tool $(MONITORING)/grafana/inference-dashboard.json >/dev/null

.PHONY: format
format: uv ## Apply ruff format and safe fixes in every package
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg format; done

# tests/ (lockfiles, make targets: the repository as a whole) runs in the trainer's venv, which
# has what those tests start and import; tests/README.md says why no fourth venv.
REPO_TESTS_BIN := $(ROOT)/services/trainer/.venv/bin
PYTEST_ARGS ?=

.PHONY: test
test: lint ## Lint, then every test: each package's, then tests/ (random order; slow ones too)
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg test; done
	@$(MAKE) test-repo

.PHONY: test-fast
test-fast: uv ## The tests not marked slow, in every package and tests/ (no lint; under a minute)
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg test-fast; done
	@$(MAKE) test-repo PYTEST_ARGS='-m "not slow" $(PYTEST_ARGS)'

.PHONY: test-repo
test-repo: uv ## Only the repository-wide tests in tests/ (trainer venv)
	@$(MAKE) -C services/trainer setup
	cd tests && $(REPO_TESTS_BIN)/pytest $(PYTEST_ARGS)

.PHONY: lint-repo-tests
lint-repo-tests: uv ## ruff, ruff format --check and mypy --strict on tests/ (the packages' rule set)
	@$(MAKE) -C services/trainer setup
	$(REPO_TESTS_BIN)/ruff check --config libs/artifact-contract/pyproject.toml tests
	$(REPO_TESTS_BIN)/ruff format --check --config libs/artifact-contract/pyproject.toml tests
	MYPYPATH=services/trainer/src $(REPO_TESTS_BIN)/mypy --strict --python-version 3.11 --cache-dir tests/.mypy_cache tests

.PHONY: train
train: uv ## Train one model: runs/artifacts/runs/vNNN (TRAIN_ARGS="--seed 7 ...")
	@$(MAKE) -C services/trainer train TRAIN_ARGS='$(TRAIN_ARGS)'

.PHONY: mlflow-ui
mlflow-ui: uv ## Open the MLflow UI on the embedded store (http://127.0.0.1:5000; MLFLOW_UI_PORT or PORT moves it)
	@$(MAKE) -C services/trainer mlflow-ui

.PHONY: serve
serve: uv ## Serve a model with gunicorn (HOST, PORT, WORKERS, MODEL_*; TARGET=production: its deployment reference)
	@$(MAKE) -C services/inference serve

.PHONY: demo
demo: uv ## Fresh clone to a served model: setup, train if there is no latest, serve on :8080
	@$(MAKE) -C services/inference demo

.PHONY: bench
bench: uv ## Benchmark our server against a bare Flask app and `mlflow models serve` on one run (RUN_DIR=..., needs wrk)
	@$(MAKE) -C services/inference bench

.PHONY: bench-models
bench-models: uv ## make bench on the trainer's three model kinds: linear, hist_gb, categorical (needs wrk)
	@$(MAKE) -C services/inference bench-models

.PHONY: bench-sampling
bench-sampling: uv ## What prediction sampling costs a served request: off vs 0.01 vs 1.0 (needs wrk)
	@$(MAKE) -C services/inference bench-sampling

.PHONY: drift
drift: uv ## Drift check of a sampled prediction log vs the training profile (LOG=path [VERSION=vNNN])
	@$(MAKE) -C services/trainer drift LOG='$(LOG)' VERSION='$(VERSION)'

.PHONY: traffic
traffic: uv ## Send rows like the training data to the server on PORT (default 8080) (TRAFFIC_ARGS="--rows 300 --shift income_k=25")
	@$(MAKE) -C services/trainer traffic TRAFFIC_ARGS='$(TRAFFIC_ARGS)'

# Promotion: VERSION, TARGET, APPROVED_BY, DATA_URI, RECORD, VERIFY_URL reach services/trainer through the
# environment (never pasted into a recipe). `make serve TARGET=production` serves the reference.
.PHONY: promote
promote: uv ## Gate + promote a run (VERSION=vNNN TARGET=staging|production [APPROVED_BY=name] [VERIFY_URL=url])
	@$(MAKE) -C services/trainer promote

.PHONY: rollback
rollback: uv ## Restore the previous deployment reference and registry alias (TARGET=production)
	@$(MAKE) -C services/trainer rollback

.PHONY: retrain
retrain: uv ## Train on new data, promote to staging if it passes the gates (DATA_URI=...)
	@$(MAKE) -C services/trainer retrain

.PHONY: k8s-manifests
k8s-manifests: uv ## Kubernetes manifests for a target's deployment reference (TARGET=production IMAGE=registry/name:tag [OUT=build/k8s/TARGET])
	@$(MAKE) -C services/trainer k8s-manifests

# Images: built from the repo root with Docker when its engine answers, else podman (installed
# through apt when missing and running as root), each followed by build/<service>_build_metadata.json.
# Override the repository name with IMAGE=... (e.g. an ECR registry path), the tag with TAG=...,
# the engine with DOCKER=docker|podman and the base with PYTHON_IMAGE=... (default
# python:3.11-slim, else a stand-in built once from Debian's mirror: infra/docker/python-base.sh).
TAG ?= dev
DOCKER ?=
PYTHON_IMAGE ?=
INFERENCE_IMAGE ?= mlpipeline-inference
TRAINER_IMAGE ?= mlpipeline-trainer
LOCAL_IMAGE ?= mlpipeline-local
RUN_DIR ?= runs/artifacts/latest
BUILD_IMAGE = $(PYTHON) infra/docker/build_support.py build --tag '$(TAG)' --docker '$(DOCKER)' \
  --python-image '$(PYTHON_IMAGE)'

.PHONY: image-inference
image-inference: IMAGE = $(INFERENCE_IMAGE)
image-inference: ## Build the model-agnostic inference image (IMAGE, TAG) + build/inference_build_metadata.json
	@$(BUILD_IMAGE) inference --image '$(IMAGE)'

.PHONY: image-trainer
image-trainer: IMAGE = $(TRAINER_IMAGE)
image-trainer: ## Build the SageMaker-compatible trainer image (IMAGE, TAG) + build/trainer_build_metadata.json
	@$(BUILD_IMAGE) trainer --image '$(IMAGE)'

.PHONY: image-local
image-local: IMAGE = $(LOCAL_IMAGE)
image-local: image-inference ## Inference image + the verified run RUN_DIR (default runs/artifacts/latest) baked in
	@$(BUILD_IMAGE) local --image '$(IMAGE)' --inference-image '$(INFERENCE_IMAGE)' --run-dir '$(RUN_DIR)'

.PHONY: images-smoke
images-smoke: ## Build the three images (tag smoke) and check them as running containers; prints wall time
	@$(PYTHON) infra/docker/smoke.py --docker '$(DOCKER)' --python-image '$(PYTHON_IMAGE)'

.PHONY: clean
clean: ## Remove virtualenvs, caches and build output (keeps runs/)
	@for pkg in $(PACKAGES); do $(MAKE) -C $$pkg clean; done
	@$(MAKE) -C infra/tools clean
	rm -rf build .tools
