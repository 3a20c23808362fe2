# kubeproof: two commands a new machine needs.
#   make audit   set up, build the embedded control plane if needed, audit it, write reports/
#   make test    set up and run every test (unit, end-to-end against the embedded cluster)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Reinstall when the dependencies change, not on every run.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install controlplane browser audit audit-insecure test unit e2e clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

controlplane: install
	$(PY) -m kubeproof.controlplane build

# Debian's Chromium: the report-injection test opens the evidence in a real browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

audit: controlplane
	$(PY) -m pytest tests_cluster --cluster=local

audit-insecure: controlplane
	$(PY) -m pytest tests_cluster --cluster=local --local-profile=insecure

test: controlplane browser
	$(PY) -m pytest tests_unit tests_e2e

unit: install
	$(PY) -m pytest tests_unit

e2e: controlplane browser
	$(PY) -m pytest tests_e2e

clean:
	rm -rf $(VENV) reports/*/ reports/.*.partial
