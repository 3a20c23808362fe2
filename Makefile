# kubeproof: two commands a new machine needs.
#   make audit   set up, build the embedded control plane if needed, audit it, write reports/
#   make test    set up and run every test (unit, end-to-end against the embedded cluster)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Reinstall when the dependencies change, not on every run.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install controlplane audit audit-insecure test unit e2e clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

controlplane: install
	$(PY) -m kubeproof.controlplane build

audit: controlplane
	$(PY) -m pytest tests_cluster --cluster=local

audit-insecure: controlplane
	$(PY) -m pytest tests_cluster --cluster=local --local-profile=insecure

test: controlplane
	$(PY) -m pytest tests_unit tests_e2e

unit: install
	$(PY) -m pytest tests_unit

e2e: controlplane
	$(PY) -m pytest tests_e2e

clean:
	rm -rf $(VENV) reports/*.html reports/*.json
