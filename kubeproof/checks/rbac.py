"""RBAC least privilege: wildcard rules (CIS 5.1.3) and who holds cluster-admin (CIS 5.1.1)."""

from __future__ import annotations

from kubeproof.checks._shape import listing, mapping, metadata, text
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "RBAC least privilege"

WILDCARD_CONTROLS = ("5.1.3",)
CLUSTER_ADMIN_CONTROLS = ("5.1.1",)
# The CIS ids each test of tests_cluster/test_rbac.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_role_grants_no_wildcards": WILDCARD_CONTROLS,
    "test_cluster_admin_is_bound_only_to_allowed_subjects": CLUSTER_ADMIN_CONTROLS,
}
BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping"
WILDCARD_FIELDS = ("verbs", "resources", "apiGroups")

_REMEDIATE_WILDCARD = (
    "List the API groups, resources and verbs the role's users need instead of '*'; a wildcard also "
    "grants every resource and verb added to the cluster later. If the wildcard is intended, name the "
    "role in the baseline's rbac.wildcard_roles_allowed."
)
_REMEDIATE_CLUSTER_ADMIN = (
    "Bind a narrower role (admin, edit, view, or one of your own) to this subject, or record the subject "
    "in the baseline's rbac.cluster_admin_subjects if it truly needs full control of the cluster."
)


def role_reference(role: dict) -> str:
    meta = metadata(role, "role")
    namespace = text(meta.get("namespace"), "role metadata.namespace", required=False)
    if role.get("kind") == "Role" or namespace:
        # A Role without a readable namespace would be "Role/None/..." and could match an allow-list pattern.
        return f"Role/{text(namespace, 'role metadata.namespace')}/{meta['name']}"
    return f"ClusterRole/{meta['name']}"


def is_kubernetes_bootstrap_role(role: dict) -> bool:
    """Kubernetes' own default roles carry the bootstrapping label; the name test keeps a user's role
    that merely copies the label from being excused."""
    meta = metadata(role, "role")
    labels = mapping(meta.get("labels"), "role metadata.labels")
    name = meta["name"]
    return (
        role.get("kind") == "ClusterRole"
        and labels.get(BOOTSTRAP_LABEL) == "rbac-defaults"
        and (name == "cluster-admin" or name.startswith("system:"))
    )


def wildcard_findings(role: dict, baseline) -> list[Finding]:
    reference = role_reference(role)
    if is_kubernetes_bootstrap_role(role) or baseline.wildcard_allowed(reference):
        return []
    kind = "Role" if reference.startswith("Role/") else "ClusterRole"
    ref = ObjectRef.of(role, kind)
    findings = []
    for index, rule in enumerate(listing(role.get("rules"), f"{reference} rules")):
        rule = mapping(rule, f"{reference} rules[{index}]")
        for field in WILDCARD_FIELDS:
            values = listing(rule.get(field), f"{reference} rules[{index}].{field}")
            if any(not isinstance(v, str) for v in values):
                raise NotVerified(f"{reference} rules[{index}].{field} holds a value that is not a string")
            if "*" in values:
                findings.append(Finding(WILDCARD_CONTROLS, ref, f"rules[{index}].{field}", values,
                                        "explicit names, no '*'", _REMEDIATE_WILDCARD))
    return findings


def subject_reference(subject: dict, binding_namespace: str | None, where: str) -> str:
    subject = mapping(subject, where)
    kind = text(subject.get("kind"), f"{where}.kind")
    name = text(subject.get("name"), f"{where}.name")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        if not isinstance(namespace, str) or not namespace:
            raise NotVerified(f"{where} is a ServiceAccount without a namespace")
        return f"ServiceAccount/{namespace}/{name}"
    return f"{kind}/{name}"


def binding_reference(binding: dict) -> str:
    meta = metadata(binding, "binding")
    namespace = text(meta.get("namespace"), "binding metadata.namespace", required=False)
    if binding.get("kind") == "RoleBinding" or namespace:
        # Same as for roles: no guessed namespace in a reference the baseline's patterns are matched against.
        return f"RoleBinding/{text(namespace, 'binding metadata.namespace')}/{meta['name']}"
    return f"ClusterRoleBinding/{meta['name']}"


def role_ref(binding: dict) -> tuple[str, str]:
    reference = binding_reference(binding)
    ref = binding.get("roleRef")
    if not isinstance(ref, dict):
        raise NotVerified(f"{reference} has no roleRef; what it grants cannot be judged")
    return text(ref.get("kind"), f"{reference} roleRef.kind"), text(ref.get("name"), f"{reference} roleRef.name")


def subjects(binding: dict) -> list[str]:
    reference = binding_reference(binding)
    namespace = (binding.get("metadata") or {}).get("namespace")
    return [
        subject_reference(subject, namespace, f"{reference} subjects[{index}]")
        for index, subject in enumerate(listing(binding.get("subjects"), f"{reference} subjects"))
    ]


def cluster_admin_findings(binding: dict, baseline) -> list[Finding]:
    kind, name = role_ref(binding)
    if (kind, name) != ("ClusterRole", "cluster-admin"):
        return []
    ref = ObjectRef.of(binding, "RoleBinding" if binding_reference(binding).startswith("RoleBinding/") else "ClusterRoleBinding")
    return [
        Finding(CLUSTER_ADMIN_CONTROLS, ref, f"subjects[{index}]", subject,
                "a subject listed in the baseline's rbac.cluster_admin_subjects", _REMEDIATE_CLUSTER_ADMIN)
        for index, subject in enumerate(subjects(binding))
        if not baseline.cluster_admin_allowed(subject)
    ]
