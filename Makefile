# The two commands of the README: `make up` (the whole thing, locally) and `make test`.
# Everything else here is what those two need: a virtual environment and the control-plane binaries.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: up down env test lint unit integration binaries host-deps bench clean generate image

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --upgrade pip
	@$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# Debian packages of the real node and the image build (containerd, runc, CNI plugins, iptables,
# mmdebstrap, umoci, skopeo); installed only when missing, and only as root.
host-deps:
	@scripts/install-host-deps

binaries: $(STAMP) host-deps
	@$(VENV)/bin/python -m mcpreg_dev.binaries >/dev/null

# The product's OCI image, built from Debian packages without Docker and cached by content.
image: $(STAMP)
	@$(VENV)/bin/python -m mcpreg_dev.image

up: binaries
	@$(VENV)/bin/python -m mcpreg_dev up $(if $(WITH_S3),--with-s3)

down: $(STAMP)
	@$(VENV)/bin/python -m mcpreg_dev down

env: $(STAMP)
	@$(VENV)/bin/python -m mcpreg_dev env

# Regenerate what is derived from the pydantic spec: the CRD, the chart's copy of it, docs/configuration.md.
generate: $(STAMP)
	$(VENV)/bin/python -m mcpreg_dev.crd
	$(VENV)/bin/python -m mcpreg_dev.crddocs

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
