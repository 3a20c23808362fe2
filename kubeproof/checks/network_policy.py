"""NetworkPolicy default-deny: every namespace has policies that select all its pods and allow
neither ingress nor egress by default."""

from __future__ import annotations

from kubeproof.checks._shape import listing, mapping, metadata
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "NetworkPolicy default-deny"

CONTROLS = ("5.3.2",)
# The CIS ids each test of tests_cluster/test_network_policy.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {"test_namespace_denies_traffic_by_default": CONTROLS}
DIRECTIONS = ("Ingress", "Egress")

_REMEDIATE = (
    "Add a NetworkPolicy to the namespace with `podSelector: {}`, `policyTypes: [Ingress, Egress]` and "
    "no ingress or egress rules, then allow the traffic each workload needs with narrower policies. "
    "Namespaces that must stay open belong in the baseline's network_policy.exempt_namespaces."
)


def _selects_every_pod(selector, where: str) -> bool:
    if selector is None:
        return True  # the API server defaults a missing podSelector to {}
    selector = mapping(selector, where)
    labels = mapping(selector.get("matchLabels"), f"{where}.matchLabels")
    expressions = listing(selector.get("matchExpressions"), f"{where}.matchExpressions")
    return not labels and not expressions


def effective_policy_types(spec: dict, where: str) -> list[str]:
    """policyTypes as the API server applies them: when omitted, Ingress always, and Egress only if
    the policy has egress rules."""
    declared = listing(spec.get("policyTypes"), f"{where}.policyTypes")
    if declared:
        if any(t not in DIRECTIONS for t in declared):
            raise NotVerified(f"{where}.policyTypes holds an unknown value: {declared!r}")
        return declared
    # The API server defaults an empty list the same way as a missing one.
    egress = listing(spec.get("egress"), f"{where}.egress")
    return ["Ingress", "Egress"] if egress else ["Ingress"]


def denied_directions(policy: dict) -> set[str]:
    """The directions this policy closes by default for every pod of its namespace."""
    name = metadata(policy, "NetworkPolicy")["name"]
    where = f"NetworkPolicy {name} spec"
    spec = mapping(policy.get("spec"), where)
    if not _selects_every_pod(spec.get("podSelector"), f"{where}.podSelector"):
        return set()
    denied = set()
    for direction in effective_policy_types(spec, where):
        rules = listing(spec.get(direction.lower()), f"{where}.{direction.lower()}")
        # An empty rule ({}) allows everything; only a policy with no rules at all denies.
        if not rules:
            denied.add(direction)
    return denied


def default_deny_findings(namespace: dict, policies: list[dict]) -> list[Finding]:
    metadata(namespace, "namespace")
    covered: set[str] = set()
    for policy in listing(policies, "the namespace's NetworkPolicies"):
        covered |= denied_directions(policy)
    missing = [d for d in DIRECTIONS if d not in covered]
    if not missing:
        return []
    return [Finding(CONTROLS, ObjectRef.of(namespace, "Namespace"), "NetworkPolicy (podSelector: {})",
                    f"no default-deny for {' and '.join(missing)}" + (f" ({len(policies)} policies present)" if policies else " (no policies)"),
                    "default-deny for Ingress and Egress", _REMEDIATE)]
