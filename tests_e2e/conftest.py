"""End-to-end fixtures: the embedded clusters the e2e modules audit (tests_e2e/suite_runs.py runs the
suite against them)."""

from __future__ import annotations

import pytest

from kubeproof.controlplane import EmbeddedCluster


@pytest.fixture(scope="session")
def hardened_cluster(embedded_cluster):
    return embedded_cluster


@pytest.fixture(scope="session")
def insecure_cluster():
    with EmbeddedCluster(profile="insecure") as cluster:
        yield cluster
