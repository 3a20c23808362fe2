"""End-to-end fixtures: the embedded clusters the e2e modules audit (tests_e2e/suite_runs.py runs the
suite against them)."""

from __future__ import annotations

import os

import pytest

from kubeproof.controlplane import EmbeddedCluster, spares

# A spares supervisor the developer runs is left alone: each run here starts its own cluster, unless a
# test (test_warm_spares.py) names a supervisor of its own.
os.environ.setdefault(spares.SPARES_ENV, "off")


@pytest.fixture(scope="session")
def hardened_cluster(embedded_cluster):
    return embedded_cluster


@pytest.fixture(scope="session")
def insecure_cluster():
    with EmbeddedCluster(profile="insecure") as cluster:
        yield cluster


def pytest_terminal_summary(terminalreporter):
    """A kind lane that could not run is said once, in the summary, whatever -r asks to show."""
    reasons = {report.longrepr[2] for report in terminalreporter.stats.get("skipped", [])
               if isinstance(report.longrepr, tuple) and "kind lane not verified" in str(report.longrepr[2])}
    for reason in sorted(reasons):
        terminalreporter.write_line(reason.removeprefix("Skipped: "), yellow=True, bold=True)
