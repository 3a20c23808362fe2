"""The fixtures the suite's tests take, and `Verdict`, which carries a check's findings and facts to
the evidence. The plugin module imports them into its own namespace, which is how pytest finds them
(as pytest-django's plugin does with its fixtures module)."""

from __future__ import annotations

import pytest

from kubeproof.governance import Governance
from kubeproof.results import Finding, NotVerified
from kubeproof.session import Audit
from kubeproof.suite import AUDIT, GOVERNANCE, PROBES, SUITE_FOLDER, VERDICT

KUBELET_TIMEOUT = 5.0  # seconds for one kubelet request; a dead node costs one of these


def _audit(request) -> Audit:
    audit = request.config.stash.get(AUDIT, None)
    if audit is None:
        pytest.fail(f"this test audits a cluster; run it from {SUITE_FOLDER}/", pytrace=False)
    return audit


@pytest.fixture(scope="session")
def cluster(request):
    """The backend of the audited cluster: API requests, anonymous probes, dry-runs."""
    return _audit(request).backend


@pytest.fixture(scope="session")
def snapshot(request):
    return _audit(request).snapshot


@pytest.fixture(scope="session")
def baseline(request):
    return _audit(request).baseline


@pytest.fixture(scope="session")
def governance(request) -> Governance:
    _audit(request)
    return request.config.stash[GOVERNANCE]


@pytest.fixture(scope="session")
def probes(request):
    """Read-only live questions (anonymous GETs, server-side dry-runs, access reviews), each asked once."""
    return request.config.stash[PROBES]


@pytest.fixture(scope="session")
def kubelets(request):
    """Every node's kubelet, asked once and all at once: configuration, command line, probes."""
    from kubeproof.kubelets import Kubelets

    audit = _audit(request)
    asked = Kubelets(audit.backend, timeout=min(KUBELET_TIMEOUT, request.config.getoption("request_timeout")))
    asked.ask_all(audit.snapshot.items("nodes"))
    return asked


@pytest.fixture(scope="session")
def server_version(request) -> dict:
    """The API server's /version answer, read once when the audit opened."""
    version = _audit(request).server_version
    if not version.get("gitVersion"):
        raise NotVerified("the API server did not answer GET /version with its version")
    return version


@pytest.fixture(scope="session")
def server_minor(request) -> str:
    version = _audit(request).server_version
    major, minor = str(version.get("major", "")), str(version.get("minor", "")).rstrip("+")
    if not (major.isdigit() and minor.isdigit()):
        raise NotVerified(f"the API server did not report its version ({version!r})")
    return f"v{major}.{minor}"


@pytest.fixture(scope="session")
def embedded_cluster():
    """A hardened embedded control plane of the session's own, stopped when the session ends. The
    tests own it: they may write to it (seed objects) and audit it with --local-attach."""
    from kubeproof.controlplane import EmbeddedCluster

    with EmbeddedCluster(profile="hardened") as started:
        yield started


class Verdict:
    """Takes a check's findings and facts for the evidence, and fails the test on any finding."""

    def __init__(self):
        self.findings: list[Finding] = []
        self.facts: dict = {}

    def observe(self, **facts) -> None:
        self.facts.update(facts)

    def exempt(self, reason: str) -> None:
        pytest.skip(f"exempt: {reason}")

    def __call__(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)
        if findings:
            pytest.fail("\n".join(f.describe() for f in findings), pytrace=False)


@pytest.fixture
def verdict(request) -> Verdict:
    found = Verdict()
    request.node.stash[VERDICT] = found
    return found
