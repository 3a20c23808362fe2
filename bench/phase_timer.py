"""A pytest plugin for bench/benchmark.py: wall-clock timestamps of an audit's phases, written to
$KUBEPROOF_PHASES_FILE as JSON. Loaded with `-p phase_timer` (bench/ on PYTHONPATH); it only
watches hooks, so the suite and its plugin run unchanged.

connect   start of collection -> the session's first collector (kubeproof's Audit.open runs here)
collect   -> end of collection (parametrisation, which lists every kind into the snapshot)
run       first test's setup -> last test's teardown (checks, probes, evidence records)
report    pytest_sessionfinish (results.json, SARIF, the HTML report, JUnit XML, terminal summary)
close     pytest_unconfigure (the run folder's SHA256SUMS and rename, closing the backend)"""

from __future__ import annotations

import json
import os
import time

import pytest

_stamps: dict[str, float] = {"imported": time.time()}
_items = {"count": 0}


def _stamp(name: str) -> None:
    _stamps.setdefault(name, time.time())


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    _stamp("configure")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session):
    _stamp("collection_start")
    try:
        return (yield)
    finally:
        _stamp("collection_end")


def pytest_collectstart(collector):
    _stamp("first_collector")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    _items["count"] = len(session.items)


def pytest_runtest_logstart(nodeid, location):
    _stamp("run_start")


def pytest_runtest_logfinish(nodeid, location):
    _stamps["run_end"] = time.time()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    _stamp("sessionfinish_start")
    try:
        return (yield)
    finally:
        _stamp("sessionfinish_end")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_unconfigure(config):
    _stamp("unconfigure_start")
    try:
        return (yield)
    finally:
        _stamp("unconfigure_end")
        path = os.environ.get("KUBEPROOF_PHASES_FILE")
        if path:
            with open(path, "w") as out:
                json.dump({"stamps": _stamps, "items": _items["count"]}, out)
