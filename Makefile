# The two commands: `make run` (set up and start everything) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test test-fast lint fixtures lock clean
EFFICIENTNET := var/cache/models/efficientnet_lite0.onnx

INSTALL_LOG := var/log/install.log

# pip's own output (resolver notes, index warnings, build logs) goes to $(INSTALL_LOG): one line says what
# is happening, and a failure shows pip's errors.
$(STAMP): pyproject.toml requirements/lock.txt
	@mkdir -p $(dir $(INSTALL_LOG))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing evalsvc and its pinned dependencies into $(VENV) (log: $(INSTALL_LOG)) ..."
	@{ $(BIN)/python -m pip install --quiet --progress-bar off --upgrade pip \
	  && $(BIN)/python -m pip install --quiet --progress-bar off -c requirements/lock.txt -e ".[dev,bench]"; \
	} >$(INSTALL_LOG) 2>&1 \
	  || { echo "pip failed (its warnings are in $(INSTALL_LOG)):"; grep -v '^WARNING' $(INSTALL_LOG) | tail -n 30; exit 1; }
	@# onnx2torch declares torchvision; PyPI's torchvision wheel is built against CUDA torch and cannot
	@# load its operators beside the CPU build, and a torchvision that half-imports breaks transformers
	@# (and with it shap's text explainers and alibi-detect). Keep it only where it works.
	@$(BIN)/python -c "import torchvision.ops" >/dev/null 2>&1 || $(BIN)/python -m pip uninstall --quiet -y torchvision >>$(INSTALL_LOG) 2>&1
	@touch $(STAMP)
	@echo "Installed."

install: $(STAMP)

## Set up a virtualenv, migrate SQLite, load demo data, start web + worker + beat.
run: install
	HOST=$(HOST) PORT=$(PORT) bash scripts/run_local.sh

## The static gates, then the whole suite against PostgreSQL and Redis on 127.0.0.1
## (override DATABASE_URL / CELERY_BROKER_URL).
test: lint $(EFFICIENTNET)
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not e2e and not browser"

## Lint (with complexity and unused-noqa rules), formatting, import contracts, types, no missing migration.
## .pre-commit-config.yaml runs the same from this virtualenv (`$(BIN)/pre-commit install`).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run

## Rebuild the demo models and data sets in fixtures/ (deterministic).
fixtures: install
	$(BIN)/python scripts/build_fixtures.py

## EfficientNet-Lite0 with its packaged ImageNet weights, exported to ONNX (large: cached, never committed).
$(EFFICIENTNET): $(STAMP) scripts/build_models.py
	$(BIN)/python scripts/build_models.py --only-efficientnet

## Re-resolve and pin every dependency (review the diff before committing).
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > requirements/lock.txt

clean:
	rm -rf var/ .pytest_cache
