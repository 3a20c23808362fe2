"""A pytest plugin for fault-injection runs that observes, and never changes, what each test of the
suite depended on, more precisely than the `reads` kubeproof records itself:

- what the test read (snapshot kinds, live questions) while it ran, without the kinds kubeproof adds
  for an object parameter (the object's own kind is known from the result);
- reads made while a module- or session-scoped fixture was set up (kubeproof attributes them to the
  first test that used the fixture; later tests get the cached value, so they depend on them too);
- API requests a test or fixture sent through the backend directly (`cluster.request`), named
  "request:METHOD PATH";
- what the audit read at start-up and a fixture hands on (`server_minor` is /version's answer).

Load it with `-p fault_observer` (tests_e2e on PYTHONPATH); it writes {nodeid: [names]} to the file
named by $KUBEPROOF_FAULT_DEPENDENCIES when the session ends."""

from __future__ import annotations

import json
import os

import pytest

OUTPUT = "KUBEPROOF_FAULT_DEPENDENCIES"
# Fixtures that hand on an answer the audit read before any test ran.
STARTUP_READS = {"server_minor": {"request:GET /version"}}

_requests: set[str] = set()
_fixture_reads: dict[tuple[str, str], set[str]] = {}
_dependencies: dict[str, set[str]] = {}


def _live(config):
    # Imported here: importing it before the suite's conftest loads it would stop its assertion rewriting.
    from kubeproof import plugin as kubeproof_plugin

    audit = config.stash.get(kubeproof_plugin.AUDIT, None)
    return (audit, config.stash[kubeproof_plugin.PROBES]) if audit is not None else (None, None)


def _watch_requests(backend) -> None:
    if getattr(backend, "_fault_observer", False):
        return
    original = backend.request

    def request(method, path, **kwargs):
        _requests.add(f"request:{method} {path}")
        return original(method, path, **kwargs)

    backend.request = request
    backend._fault_observer = True


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    audit, probes = _live(request.config)
    if audit is None:
        return (yield)
    _watch_requests(audit.backend)
    # Set the test's reads aside, collect the fixture's own, then put back the union: kubeproof's
    # record of the test is exactly what it would have been without this observer.
    saved = (set(audit.snapshot.touched), set(probes.touched), set(_requests))
    for held in (audit.snapshot.touched, probes.touched, _requests):
        held.clear()
    try:
        return (yield)
    finally:
        own = set(audit.snapshot.touched) | {f"probe:{p}" for p in probes.touched} | set(_requests)
        _fixture_reads.setdefault((fixturedef.baseid, fixturedef.argname), set()).update(own)
        audit.snapshot.touched.update(saved[0])
        probes.touched.update(saved[1])
        _requests.update(saved[2])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _requests.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    audit, probes = _live(item.config)
    if audit is None:
        return report
    found = _dependencies.setdefault(item.nodeid, set())
    # What the test itself read, apart from the kinds kubeproof adds for its object parameter (all the
    # kinds the parameter is filled from, though the test judges one object of one kind).
    found |= set(audit.snapshot.touched) | {f"probe:{p}" for p in probes.touched} | _requests
    for name in item.fixturenames:
        found |= STARTUP_READS.get(name, set())
        for definition in (item._fixtureinfo.name2fixturedefs.get(name) or ())[-1:]:
            # A function-scoped fixture runs for each test, so its reads are already the test's own.
            if definition.scope != "function":
                found |= _fixture_reads.get((definition.baseid, definition.argname), set())
    return report


def pytest_sessionfinish(session):
    target = os.environ.get(OUTPUT)
    if target:
        with open(target, "w") as out:
            json.dump({nodeid: sorted(names) for nodeid, names in _dependencies.items()}, out, indent=0)
