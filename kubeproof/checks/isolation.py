"""Workload isolation: nothing runs in the `default` namespace (CIS 5.6.4), every namespace bounds what
its pods may consume (a ResourceQuota and a LimitRange: the NSA guide's resource policies), and the
workloads of sensitive namespaces run only on nodes dedicated to them (tainted, tolerated, selected:
the NSA guide's worker-node segmentation)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeproof.checks import _nodes
from kubeproof.checks._nodes import Node, Taint, tolerates
from kubeproof.checks._shape import listing, mapping, metadata, text
from kubeproof.checks._workload import pod_template
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Workload isolation"

DEFAULT_NAMESPACE = "default"
DEFAULT_NAMESPACE_CONTROLS = ("5.6.4",)
# Resource policies and node segmentation have no CIS 1.12 control; the tests carry the NSA section.
RESOURCE_POLICY_CONTROLS: tuple[str, ...] = ()
DEDICATED_NODE_CONTROLS: tuple[str, ...] = ()
# The CIS ids each test of tests_cluster/test_isolation.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_workload_is_not_in_the_default_namespace": DEFAULT_NAMESPACE_CONTROLS,
    "test_namespace_has_a_resource_quota": RESOURCE_POLICY_CONTROLS,
    "test_namespace_has_a_limit_range": RESOURCE_POLICY_CONTROLS,
    "test_sensitive_workload_runs_only_on_dedicated_nodes": DEDICATED_NODE_CONTROLS,
}

# Kubernetes makes and runs these itself: kube-public holds the public cluster-info ConfigMap and
# kube-node-lease the nodes' Lease objects, no pods; kube-system runs the cluster's own components,
# which a quota sized for applications can starve (and which do not schedule at all when it is hit).
# `default` is NOT exempt: it is where anything lands that forgot its namespace, so it needs the
# guard most (a quota of `pods: "0"` there is the usual way to keep it empty, CIS 5.6.4).
RESOURCE_POLICY_EXEMPT = ("kube-system", "kube-public", "kube-node-lease")
# A quota counts when it caps how many pods run or how much CPU or memory they take.
BOUNDING_QUOTA_RESOURCES = frozenset({"pods", "cpu", "memory", "requests.cpu", "requests.memory",
                                      "limits.cpu", "limits.memory"})
# A LimitRange counts when it sets a maximum or a default for containers or pods.
BOUNDING_LIMIT_TYPES = ("Container", "Pod")
BOUNDING_LIMIT_FIELDS = ("max", "default", "defaultRequest")

# Taints that keep other pods off a node. Kubernetes sets and clears the node.kubernetes.io/ ones
# itself for conditions (not-ready, unreachable, pressure), and DaemonSets tolerate them by default:
# tolerating one dedicates nothing, so they count neither for nor against confinement.
DEDICATING_EFFECTS = ("NoSchedule", "NoExecute")
SYSTEM_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")

_REMEDIATE_DEFAULT = (
    "Move the workload into a namespace of its own with its own RBAC, network policies and quota; "
    "keep `default` empty (a ResourceQuota of pods: \"0\" there enforces it)."
)
_REMEDIATE_QUOTA = (
    "Create a ResourceQuota in the namespace that caps pods, CPU and memory (requests and limits), so "
    "one team's workloads cannot exhaust the nodes for everyone."
)
_REMEDIATE_LIMITS = (
    "Create a LimitRange with default requests and limits (and a max) for containers, so pods that "
    "set none still get bounded resources."
)
_REMEDIATE_NODES = (
    "Taint the dedicated nodes (e.g. dedicated=<team>:NoSchedule), give the workload a toleration for "
    "that taint, and select those nodes with a nodeSelector or required node affinity on a label only "
    "they carry; the taint keeps others off, the selector keeps this workload on."
)


def _namespace_name(namespace) -> str:
    return metadata(namespace, "namespace")["name"]


# -- the default namespace (CIS 5.6.4) -------------------------------------------------------------
def default_namespace_findings(workload) -> list[Finding]:
    template = pod_template(workload)
    if template.namespace != DEFAULT_NAMESPACE:
        return []
    return [Finding(DEFAULT_NAMESPACE_CONTROLS, template.ref, "metadata.namespace", DEFAULT_NAMESPACE,
                    "a namespace other than default", _REMEDIATE_DEFAULT)]


# -- resource policies -------------------------------------------------------------------------------
def exempt_from_resource_policies(namespace_name: str) -> bool:
    return namespace_name in RESOURCE_POLICY_EXEMPT


def quota_caps(quota) -> list[str]:
    """The resources a ResourceQuota caps, from its spec."""
    meta = metadata(quota, "ResourceQuota")
    spec = mapping(quota.get("spec"), f"ResourceQuota {meta['name']} spec")
    return sorted(str(k) for k in mapping(spec.get("hard"), f"ResourceQuota {meta['name']} spec.hard"))


def quota_caps_by_name(quotas) -> dict[str, list[str]]:
    return {metadata(q, "ResourceQuota")["name"]: quota_caps(q) for q in listing(quotas, "the ResourceQuotas")}


def resource_quota_findings(namespace, quotas) -> list[Finding]:
    _namespace_name(namespace)
    caps = quota_caps_by_name(quotas)
    if any(BOUNDING_QUOTA_RESOURCES & set(capped) for capped in caps.values()):
        return []
    observed = ("no ResourceQuota" if not caps else
                "ResourceQuotas that cap none of pods, cpu, memory: " + ", ".join(sorted(caps)))
    return [Finding(RESOURCE_POLICY_CONTROLS, ObjectRef.of(namespace, "Namespace"), "resourcequotas", observed,
                    "a ResourceQuota capping pods, cpu or memory", _REMEDIATE_QUOTA)]


def limit_range_bounds(limit_range) -> list[str]:
    """What a LimitRange bounds, as "<type>.<field>" for each non-empty max/default/defaultRequest."""
    meta = metadata(limit_range, "LimitRange")
    where = f"LimitRange {meta['name']}"
    spec = mapping(limit_range.get("spec"), f"{where} spec")
    bounds = []
    for index, item in enumerate(listing(spec.get("limits"), f"{where} spec.limits")):
        item = mapping(item, f"{where} spec.limits[{index}]")
        kind = text(item.get("type"), f"{where} spec.limits[{index}].type")
        for name in BOUNDING_LIMIT_FIELDS:
            if mapping(item.get(name), f"{where} spec.limits[{index}].{name}"):
                bounds.append(f"{kind}.{name}")
    return bounds


def limit_range_bounds_by_name(limit_ranges) -> dict[str, list[str]]:
    return {metadata(r, "LimitRange")["name"]: limit_range_bounds(r) for r in listing(limit_ranges, "the LimitRanges")}


def limit_range_findings(namespace, limit_ranges) -> list[Finding]:
    _namespace_name(namespace)
    bounds = limit_range_bounds_by_name(limit_ranges)
    if any(b.split(".")[0] in BOUNDING_LIMIT_TYPES for found in bounds.values() for b in found):
        return []
    observed = ("no LimitRange" if not bounds else
                "LimitRanges that set no max or default for containers or pods: " + ", ".join(sorted(bounds)))
    return [Finding(RESOURCE_POLICY_CONTROLS, ObjectRef.of(namespace, "Namespace"), "limitranges", observed,
                    "a LimitRange with a max or defaults for containers", _REMEDIATE_LIMITS)]


# -- dedicated nodes for sensitive namespaces --------------------------------------------------------
def dedicating(taint: Taint) -> bool:
    """A taint that keeps other pods off a node and is not one Kubernetes sets itself."""
    return taint.effect in DEDICATING_EFFECTS and not taint.key.startswith(SYSTEM_TAINT_PREFIXES)


def read_nodes(nodes) -> list[Node]:
    return _nodes.read_nodes(nodes, "the cluster has no nodes, so where a workload would run cannot be judged")



def _requirement_matches(requirement: dict, value: str | None, where: str) -> bool:
    operator = text(requirement.get("operator"), f"{where}.operator")
    values = listing(requirement.get("values"), f"{where}.values")
    if not all(isinstance(v, str) for v in values):
        raise NotVerified(f"{where}.values holds a value that is not a string")
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt"):
        if len(values) != 1 or not _is_integer(values[0]):
            raise NotVerified(f"{where} uses {operator} without a single integer value")
        if value is None or not _is_integer(value):
            return False
        return int(value) > int(values[0]) if operator == "Gt" else int(value) < int(values[0])
    # Guessing here could count a node out that the scheduler would use, and pass a workload.
    raise NotVerified(f"{where}.operator {operator!r} is not one kubeproof knows")


def _is_integer(value: str) -> bool:
    return value.lstrip("-").isdigit() and value.count("-") <= 1


def _term_matches(term: dict, node: Node, where: str) -> bool:
    expressions = listing(term.get("matchExpressions"), f"{where}.matchExpressions")
    fields = listing(term.get("matchFields"), f"{where}.matchFields")
    if not expressions and not fields:
        return False  # an empty term selects no node
    for index, requirement in enumerate(expressions):
        requirement = mapping(requirement, f"{where}.matchExpressions[{index}]")
        key = text(requirement.get("key"), f"{where}.matchExpressions[{index}].key")
        label = node.labels.get(key)
        if not _requirement_matches(requirement, label if isinstance(label, str) else None,
                                    f"{where}.matchExpressions[{index}]"):
            return False
    for index, requirement in enumerate(fields):
        requirement = mapping(requirement, f"{where}.matchFields[{index}]")
        key = text(requirement.get("key"), f"{where}.matchFields[{index}].key")
        if key != "metadata.name":
            raise NotVerified(f"{where}.matchFields[{index}].key {key!r} is not a node field kubeproof knows")
        if not _requirement_matches(requirement, node.name, f"{where}.matchFields[{index}]"):
            return False
    return True


@dataclass
class Placement:
    """Where a workload's pods may go: what it tolerates, how it selects, and the nodes that leaves."""

    tolerated: list[str] = field(default_factory=list)  # dedicating taints on current nodes it tolerates
    dedicating: list[str] = field(default_factory=list)  # every dedicating taint on current nodes
    selection: list[str] = field(default_factory=list)  # nodeName / nodeSelector / required affinity
    runnable: list[str] = field(default_factory=list)  # selected nodes whose dedicating taints it tolerates
    undedicated: list[str] = field(default_factory=list)  # runnable nodes without a dedicating taint it tolerates

    def summary(self) -> dict:
        return dict(self.__dict__)


def placement(workload, nodes) -> Placement:
    template = pod_template(workload)
    known = read_nodes(nodes)
    spec, where = template.spec, f"{template.ref} {template.spec_path}"
    tolerations = _nodes.read_tolerations(spec.get("tolerations"), f"{where}.tolerations")
    result = Placement()
    for node in known:
        for taint in node.taints:
            if dedicating(taint) and str(taint) not in result.dedicating:
                result.dedicating.append(str(taint))
                if any(tolerates(t, taint) for t in tolerations):
                    result.tolerated.append(str(taint))

    node_name = text(spec.get("nodeName"), f"{where}.nodeName", required=False)
    selector = mapping(spec.get("nodeSelector"), f"{where}.nodeSelector")
    affinity = mapping(mapping(spec.get("affinity"), f"{where}.affinity").get("nodeAffinity"),
                       f"{where}.affinity.nodeAffinity")
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = None
    if required is not None:
        required = mapping(required, f"{where}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution")
        terms = listing(required.get("nodeSelectorTerms"), f"{where}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms")
    if node_name:
        result.selection.append(f"nodeName {node_name}")
    if selector:
        result.selection.append("nodeSelector " + ", ".join(f"{k}={v}" for k, v in sorted(selector.items(), key=str)))
    if terms is not None:
        result.selection.append(f"required node affinity ({len(terms)} term(s))")

    for node in known:
        if node_name and node.name != node_name:
            continue
        if any(node.labels.get(k) != v for k, v in selector.items()):
            continue
        if terms is not None and not any(
            _term_matches(mapping(term, f"{where} nodeSelectorTerms[{i}]"), node, f"{where} nodeSelectorTerms[{i}]")
            for i, term in enumerate(terms)
        ):
            continue
        held = [t for t in node.taints if dedicating(t)]
        if not all(any(tolerates(tol, t) for tol in tolerations) for t in held):
            continue  # a dedicating taint it does not tolerate keeps it off this node
        result.runnable.append(node.name)
        if not held:
            result.undedicated.append(node.name)
    return result


def dedicated_node_findings(workload, nodes, placed: Placement | None = None) -> list[Finding]:
    """`placed` is placement(workload, nodes) when the caller already has it (for the evidence)."""
    template = pod_template(workload)
    where = placed if placed is not None else placement(workload, nodes)
    spec = template.spec_path
    findings = []
    if not where.tolerated:
        observed = (f"tolerates none of the taints that dedicate nodes ({', '.join(where.dedicating)})"
                    if where.dedicating else "no node carries a NoSchedule or NoExecute taint to dedicate it")
        findings.append(Finding(DEDICATED_NODE_CONTROLS, template.ref, f"{spec}.tolerations", observed,
                                "a toleration for the taint of the nodes dedicated to this namespace", _REMEDIATE_NODES))
    if not where.selection:
        findings.append(Finding(DEDICATED_NODE_CONTROLS, template.ref, f"{spec}.nodeSelector",
                                "no nodeSelector, required node affinity or nodeName",
                                "a selection of the dedicated nodes", _REMEDIATE_NODES))
    elif where.tolerated:
        if not where.runnable:
            findings.append(Finding(DEDICATED_NODE_CONTROLS, template.ref, f"{spec}.nodeSelector",
                                    f"{'; '.join(where.selection)} selects no node it can run on",
                                    "a selection of the dedicated nodes", _REMEDIATE_NODES))
        elif where.undedicated:
            findings.append(Finding(DEDICATED_NODE_CONTROLS, template.ref, f"{spec}.nodeSelector",
                                    f"can also run on nodes without a dedicating taint: {', '.join(where.undedicated)}",
                                    "only nodes carrying a taint it tolerates", _REMEDIATE_NODES))
    return findings
