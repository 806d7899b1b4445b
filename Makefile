# The two commands of the README: `make up` (the whole thing, locally) and `make test`.
# Everything else here is what those two need: a virtual environment and the control-plane binaries.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: up down env test lint unit integration binaries bench clean generate

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --upgrade pip
	@$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

binaries: $(STAMP)
	@$(VENV)/bin/python -m mcpreg.devenv.binaries >/dev/null

up: $(STAMP)
	@$(VENV)/bin/mcpreg dev up

down: $(STAMP)
	@$(VENV)/bin/mcpreg dev down

env: $(STAMP)
	@$(VENV)/bin/mcpreg dev env

# Regenerate what is derived from the pydantic spec: the CRD, the chart's copy of it, docs/configuration.md.
generate: $(STAMP)
	$(VENV)/bin/python -m mcpreg_operator.crd
	$(VENV)/bin/python -m mcpreg.crddocs

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: $(STAMP)
	scripts/run-pytest tests/unit

integration: binaries
	scripts/run-pytest tests/integration

test: binaries lint
	scripts/run-pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
