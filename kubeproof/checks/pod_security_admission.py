"""Pod Security Standards on namespaces: the enforce label, and what the admission chain really does."""

from __future__ import annotations

import re

from kubeproof.checks._shape import listing, mapping, metadata
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Pod Security Standards"
MARKER = "pod_security"

LABEL_CONTROLS = ("5.2.1",)
ADMISSION_CONTROLS = ("5.2.1", "5.2.2")
# The CIS ids each test of tests_cluster/test_pod_security_admission.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_namespace_enforces_required_level": LABEL_CONTROLS,
    "test_admission_rejects_a_privileged_pod": ADMISSION_CONTROLS,
    "test_existing_pods_meet_the_required_level": ADMISSION_CONTROLS,
}
ENFORCE = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
RANK = {"privileged": 0, "baseline": 1, "restricted": 2}
PROBE_POD_NAME = "kubeproof-privileged-probe"

_REMEDIATE_LABEL = (
    "Label the namespace `pod-security.kubernetes.io/enforce=<level>` with at least the level the "
    "baseline requires, after fixing the pods the server-side dry-run warns about."
)
_REMEDIATE_ADMISSION = (
    "Make sure the PodSecurity admission plugin is enabled on kube-apiserver and that its "
    "AdmissionConfiguration does not exempt this namespace, user or runtime class."
)
_REMEDIATE_EXISTING = (
    "Change the listed pods (their controllers' pod templates) to meet the level, e.g. drop privileged, "
    "host namespaces and added capabilities, set runAsNonRoot and a RuntimeDefault seccomp profile."
)


def namespace_name(namespace: dict) -> str:
    return metadata(namespace, "namespace")["name"]


def enforced_level(namespace: dict) -> str | None:
    """The enforce label's value; None when absent (the namespace then admits privileged pods)."""
    labels = mapping(metadata(namespace, "namespace").get("labels"), "namespace metadata.labels")
    value = labels.get(ENFORCE)
    if value is not None and not isinstance(value, str):
        raise NotVerified(f"the {ENFORCE} label is not a string")
    return value


def label_findings(namespace: dict, required: str) -> list[Finding]:
    observed = enforced_level(namespace)
    ref = ObjectRef.of(namespace, "Namespace")
    path = f"metadata.labels[{ENFORCE}]"
    if observed is None:
        if required == "privileged":
            return []
        return [Finding(LABEL_CONTROLS, ref, path, "absent (privileged)", f"{required} or stricter", _REMEDIATE_LABEL)]
    if observed not in RANK:
        return [Finding(LABEL_CONTROLS, ref, path, observed, f"one of {', '.join(RANK)}", _REMEDIATE_LABEL)]
    if RANK[observed] < RANK[required]:
        return [Finding(LABEL_CONTROLS, ref, path, observed, f"{required} or stricter", _REMEDIATE_LABEL)]
    return []


def dry_run_label_patch(namespace: dict, required: str, server_minor: str) -> dict:
    """A merge patch that sets the required level. PodSecurity only evaluates existing pods when the
    enforce policy changes, so the version is switched between "latest" and the server's own minor
    (which mean the same rules) to make sure the dry-run evaluates them."""
    labels = mapping(metadata(namespace, "namespace").get("labels"), "namespace metadata.labels")
    version = "latest" if labels.get(ENFORCE_VERSION) == server_minor else server_minor
    return {"metadata": {"labels": {ENFORCE: required, ENFORCE_VERSION: version}}}


_EXISTING_HEADER = re.compile(r"existing pods in namespace .* violate the new PodSecurity enforce level")
_INCOMPLETE = re.compile(r"only checked against|timeout|timed out", re.IGNORECASE)


def existing_pod_findings(namespace: dict, status: int, warnings: list[str], required: str) -> list[Finding]:
    """From the dry-run of the label: each warning after the header names a pod (or a group of pods
    that share the same problems) that the level would reject."""
    if not isinstance(status, int) or not 200 <= status < 300:
        raise NotVerified(f"the server-side dry-run of the {ENFORCE} label was refused (HTTP {status})")
    ref = ObjectRef.of(namespace, "Namespace")
    texts = listing(warnings, "the dry-run's warnings")
    if not all(isinstance(w, str) for w in texts):
        # A warning we cannot read may be the one that names a pod; dropping it could turn into a pass.
        raise NotVerified("a warning of the server-side dry-run is not text")
    incomplete = [w for w in texts if _INCOMPLETE.search(w)]
    findings = [
        Finding(ADMISSION_CONTROLS, ref, "existing pods", warning, f"pods that meet {required}", _REMEDIATE_EXISTING)
        for warning in texts
        if not _EXISTING_HEADER.search(warning) and warning not in incomplete
    ]
    if incomplete and not findings:
        raise NotVerified(f"PodSecurity did not evaluate every pod in the dry-run: {incomplete[0]}")
    return findings


def pod_security_answered(status: int, message: str) -> bool:
    """Whether the dry-run of an invalid enforce label was refused by PodSecurity admission itself."""
    return status == 422 and ENFORCE in (message or "")


def privileged_probe_pod(namespace: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PROBE_POD_NAME, "namespace": namespace, "labels": {"app.kubernetes.io/name": "kubeproof-probe"}},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [{
                "name": "probe",
                "image": "registry.k8s.io/pause:3.10",
                "securityContext": {"privileged": True},
            }],
        },
    }


def probe_rejected_by_pod_security(status: int, message: str) -> bool | None:
    """True: PodSecurity refused the privileged pod. False: it was admitted. None: refused for some
    other reason, so the probe proves nothing."""
    if not isinstance(status, int):
        return None  # no HTTP answer to judge
    if 200 <= status < 300:
        return False
    if status == 403 and isinstance(message, str) and "violates PodSecurity" in message:
        return True
    return None


def privileged_probe_findings(namespace: dict, status: int, message: str, required: str) -> list[Finding]:
    rejected = probe_rejected_by_pod_security(status, message)
    if rejected is None:
        raise NotVerified(
            f"the dry-run create of a privileged pod was refused for another reason (HTTP {status}: "
            f"{(message if isinstance(message, str) else '')[:200]}), so it does not show what PodSecurity "
            "admission would do"
        )
    if rejected:
        return []
    return [Finding(ADMISSION_CONTROLS, ObjectRef.of(namespace, "Namespace"), "server-side dry-run create of a privileged pod",
                    f"admitted (HTTP {status})", f"rejected by PodSecurity admission ({required})", _REMEDIATE_ADMISSION)]
