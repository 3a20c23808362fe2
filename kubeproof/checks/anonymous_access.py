"""Anonymous access: what an unauthenticated caller gets, and what RBAC grants to one."""

from __future__ import annotations

from kubeproof.checks.rbac import binding_reference, role_ref, subjects
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "API server anonymous access"

PROBE_CONTROLS = ("1.2.1",)
BINDING_CONTROLS = ("1.2.1", "5.1.1")
# The CIS ids each test of tests_cluster/test_anonymous_access.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_unauthenticated_request_is_refused": PROBE_CONTROLS,
    "test_binding_grants_nothing_to_unauthenticated_users": BINDING_CONTROLS,
}
PROBE_PATHS = ("/api", "/apis", "/version", "/healthz")
UNAUTHENTICATED_SUBJECTS = ("User/system:anonymous", "Group/system:unauthenticated", "Group/system:anonymous")
# Kubernetes' own default: the health and version endpoints are public to whoever is let in.
KUBERNETES_DEFAULT_BINDINGS = {
    "ClusterRoleBinding/system:public-info-viewer": ("ClusterRole", "system:public-info-viewer"),
}

_REMEDIATE_PROBE = (
    "Start kube-apiserver with --anonymous-auth=false (or an AuthenticationConfiguration that allows "
    "anonymous requests to no path) so unauthenticated requests are refused with 401."
)
_REMEDIATE_BINDING = (
    "Remove system:anonymous and system:unauthenticated from this binding's subjects; grant the access "
    "to an authenticated group instead, or record the binding in the baseline's "
    "rbac.unauthenticated_bindings_allowed with the reason."
)


def probe_findings(path: str, status: int, message: str = "") -> list[Finding]:
    """An unauthenticated GET must be refused as unauthenticated (401). A 403 still means the
    request was accepted as system:anonymous and only stopped by authorization."""
    if not isinstance(status, int) or status <= 0:
        raise NotVerified(f"no HTTP answer to the unauthenticated GET {path}")
    if status == 401:
        return []
    if status == 429 or status >= 500:
        # Throttled or broken: the server never said whether it would let an anonymous caller in.
        raise NotVerified(f"the unauthenticated GET {path} answered HTTP {status}, which says nothing about authentication")
    return [Finding(PROBE_CONTROLS, ObjectRef("Endpoint", path), f"unauthenticated GET {path}",
                    f"HTTP {status}", "HTTP 401", _REMEDIATE_PROBE)]


def is_kubernetes_default(binding: dict) -> bool:
    reference = binding_reference(binding)
    expected_role = KUBERNETES_DEFAULT_BINDINGS.get(reference)
    labels = (binding.get("metadata") or {}).get("labels") or {}
    return (
        expected_role is not None
        and isinstance(labels, dict)
        and labels.get("kubernetes.io/bootstrapping") == "rbac-defaults"
        and role_ref(binding) == expected_role
    )


def binding_findings(binding: dict, baseline) -> list[Finding]:
    reference = binding_reference(binding)
    granted = [s for s in subjects(binding) if s in UNAUTHENTICATED_SUBJECTS]
    role_ref(binding)  # a binding without a roleRef cannot be judged even when its subjects look fine
    if not granted or is_kubernetes_default(binding) or baseline.unauthenticated_binding_allowed(reference):
        return []
    kind, name = role_ref(binding)
    ref = ObjectRef.of(binding, reference.split("/", 1)[0])
    return [Finding(BINDING_CONTROLS, ref, "subjects", granted,
                    f"no unauthenticated subject (binding grants {kind} {name})", _REMEDIATE_BINDING)]
