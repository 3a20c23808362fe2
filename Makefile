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

.PHONY: install install-test controlplane browser audit audit-insecure test lint unit e2e clean kind-image kind-up kind-down

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

test: install-test controlplane browser lint kind-image
	$(PY) -m pytest tests_unit tests_e2e

lint: install-test
	$(VENV)/bin/ruff check .

unit: install-test
	$(PY) -m pytest tests_unit

e2e: install-test controlplane browser kind-image
	$(PY) -m pytest tests_e2e

# The kind lane (tests_e2e/test_kind_lane.py): a node image assembled here from Debian and the Go module
# proxy, and a Docker engine (Debian's dockerd, started when none answers and stopped again after).
# On a host that cannot run an engine, this prints that the lane is not verified and goes on.
kind-image: controlplane
	$(PY) -m kubeproof.kind image

# kind-hardened (examples/kind/create.sh) and kind-insecure, left running for
# `.venv/bin/pytest --cluster=kind-kind-hardened`; `make kind-down` deletes them and stops the engine
# if kubeproof started it.
kind-up: controlplane
	$(PY) -m kubeproof.kind up

kind-down: install
	$(PY) -m kubeproof.kind down

clean:
	rm -rf $(VENV) reports/*/ reports/.*.partial
