"""What a configuration repository would do to a cluster: every object it holds must be accepted
by the real API server and its admission chain."""

from __future__ import annotations

from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Configuration repository accepted by the API server"

# An object the API server refuses breaks no CIS control by itself: the test of
# tests_cluster/test_manifests.py carries no CIS id (tests_unit/test_markers.py holds it to that).
CIS_BY_TEST: dict[str, tuple[str, ...]] = {"test_manifest_is_accepted_by_the_api_server": ()}

_REMEDIATE = (
    "Fix the object so the API server accepts it (the message says why); a repository that applies "
    "it to a real cluster fails at the same point."
)


def rejection_findings(source: str, kind, namespace, name, outcome: str, answer: dict) -> list[Finding]:
    if outcome == "applied":
        return []
    if outcome != "rejected":
        raise NotVerified(f"{source}: the object was never applied")
    return [Finding((), ObjectRef(str(kind or "?"), str(name or "?"), namespace), source,
                    f"rejected (HTTP {answer.get('status')}): {answer.get('message', '')}",
                    "accepted by the API server", _REMEDIATE)]
