# sqlharbor — every target does its own set-up (virtual environment with the product and,
# from devtools/, the dev tools; Azurite from npm; kube-apiserver/etcd built from the Go
# module proxy and cached).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup venv node binaries test lint typecheck unit demo crds bench image agent-bundle clean

$(VENV)/.installed: pyproject.toml devtools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]"
	$(VENV)/bin/pip install -q -e ./devtools
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(VENV)/.installed
node: node_modules/.installed

binaries: venv
	$(VENV)/bin/sqlharbor-dev build

setup: venv node binaries

crds: venv
	$(PY) -m sqlharbor.api.crdgen config/crd/bases

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest tests/unit -q

test: setup lint typecheck
	$(VENV)/bin/pytest -q

demo: setup
	$(VENV)/bin/sqlharbor-dev demo --once

bench: setup
	$(VENV)/bin/python -m benchmarks.run

# the operator's OCI image archive, dist/sqlharbor-operator-<version>.oci.tar (Debian + PyPI
# packages; installs mmdebstrap and umoci with apt-get when missing, as root)
image: venv
	$(VENV)/bin/sqlharbor-dev image build --out dist

# the agent's product wheel, its Linux bundle (a pex: CPython 3.11-3.14, x86_64, glibc >= 2.28)
# and a Windows wheelhouse zip, in dist/ (PyPI packages only; cached in ~/.cache/sqlharbor)
agent-bundle: venv
	$(VENV)/bin/sqlharbor-dev bundle build --out dist

clean:
	-$(VENV)/bin/sqlharbor-dev down
	rm -rf $(VENV) node_modules .sqlharbor-dev
