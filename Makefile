# kubeproof: two commands a new machine needs.
#   make audit   set up, build the embedded control plane if needed, audit it, write reports/
#   make test    set up and run every test (unit, end-to-end against the embedded cluster)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Reinstall when the dependencies change, not on every run.
HASH   := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
STAMP  := $(VENV)/.installed-$(HASH)
TESTSTAMP := $(VENV)/.installed-test-$(HASH)

.PHONY: install install-test controlplane browser audit audit-insecure test lint unit e2e clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@rm -f $(VENV)/.installed-[0-9a-f]* && touch $@

# The suite plus what kubeproof's own tests need (the `test` extra: hypothesis, ruff, compliance-trestle).
$(TESTSTAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-test-* && touch $@

install: $(STAMP)

install-test: $(TESTSTAMP)

controlplane: install
	$(PY) -m kubeproof.controlplane build

# Debian's Chromium: the report-injection test opens the evidence in a real browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

audit: controlplane
	$(PY) -m pytest tests_cluster --cluster=local

audit-insecure: controlplane
	$(PY) -m pytest tests_cluster --cluster=local --local-profile=insecure

test: install-test controlplane browser lint
	$(PY) -m pytest tests_unit tests_e2e

lint: install-test
	$(VENV)/bin/ruff check .

unit: install-test
	$(PY) -m pytest tests_unit

e2e: install-test controlplane browser
	$(PY) -m pytest tests_e2e

clean:
	rm -rf $(VENV) reports/*/ reports/.*.partial
