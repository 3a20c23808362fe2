"""Runtime monitoring agents (the NSA/CISA guide's audit logging and threat detection): every
DaemonSet the baseline expects (log shippers, monitoring, runtime security) exists and has a ready
pod on every node it should run on, as its controller last reported.

"Every node it should run on" is every node whose NoSchedule/NoExecute taints the agent's pod
template tolerates (with the tolerations the DaemonSet controller adds to each of its pods), on the
agent's operating system and architecture. A nodeSelector or node affinity on any other label is a
choice to leave nodes unwatched, so it does not lower the expectation: the controller's
desiredNumberScheduled falls short of it and that is a finding. The status is only believed when the
controller has observed the DaemonSet's current generation."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from kubeproof.checks import _nodes
from kubeproof.checks._nodes import Node, Taint, tolerates  # noqa: F401  (Taint: part of what tests build)
from kubeproof.checks._shape import listing, mapping, metadata, text
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Runtime monitoring agents"

# No CIS 1.12 control asks for node agents; the tests carry the NSA section only.
CONTROLS: tuple[str, ...] = ()
# The CIS ids each test of tests_cluster/test_monitoring.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {"test_monitoring_agent_is_ready_on_every_node": CONTROLS}
TAINT_EFFECTS_THAT_KEEP_PODS_OFF = ("NoSchedule", "NoExecute")

# The DaemonSet controller gives each of its pods these tolerations (AddOrUpdateDaemonPodTolerations),
# so a node that carries only condition taints still counts as one the agent should run on.
CONTROLLER_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATIONS = (
    {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"},
)
# A binary built for one platform cannot run on another: selecting on these is not a coverage choice.
PLATFORM_LABELS = ("kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch")

_REMEDIATE_ABSENT = (
    "Deploy the agent as a DaemonSet in the namespace and with the name the baseline expects (or correct "
    "the baseline's monitoring.daemonsets entry), so every node is watched."
)
_REMEDIATE_COVERAGE = (
    "Remove the nodeSelector or node affinity that keeps the agent off some nodes, and add tolerations "
    "for the taints of the nodes it must watch (an `operator: Exists` toleration covers every taint)."
)
_REMEDIATE_NOWHERE = (
    "Add tolerations for the taints the nodes carry (an `operator: Exists` toleration covers every "
    "taint) and check its node selection, so the agent can run on the cluster's nodes."
)
_REMEDIATE_READY = (
    "Find the agent's pods that are not ready (`kubectl -n <namespace> get pods -o wide -l <its selector>`), "
    "fix what keeps them from starting (image, resources, host mounts, admission), and watch the "
    "DaemonSet until numberReady equals desiredNumberScheduled."
)


# -- what the baseline names --------------------------------------------------------------------------
def split_pattern(pattern) -> tuple[str, str]:
    if not isinstance(pattern, str) or pattern.count("/") != 1 or not all(pattern.split("/")):
        raise NotVerified(f"the baseline's monitoring.daemonsets entry {pattern!r} is not NAMESPACE/NAME")
    namespace, name = pattern.split("/")
    return namespace, name


def matching(pattern, daemonsets) -> list[dict]:
    """The DaemonSets a "NAMESPACE/NAME" pattern (shell-style wildcards) names, sorted by namespace and name."""
    namespace_pattern, name_pattern = split_pattern(pattern)
    found = []
    for daemonset in listing(daemonsets, "the DaemonSets"):
        meta = metadata(daemonset, "DaemonSet")
        namespace = text(meta.get("namespace"), f"DaemonSet {meta['name']} metadata.namespace")
        if fnmatch.fnmatchcase(namespace, namespace_pattern) and fnmatch.fnmatchcase(meta["name"], name_pattern):
            found.append(daemonset)
    return sorted(found, key=lambda d: (d["metadata"]["namespace"], d["metadata"]["name"]))


# -- nodes, taints, tolerations -------------------------------------------------------------------------
def read_nodes(nodes) -> list[Node]:
    """The nodes, with only the taints that keep pods off (NoSchedule, NoExecute)."""
    known = _nodes.read_nodes(nodes, "the cluster has no nodes, so whether an agent runs on every node cannot be judged")
    return [Node(node.name, node.labels, tuple(t for t in node.taints if t.effect in TAINT_EFFECTS_THAT_KEEP_PODS_OFF))
            for node in known]


read_tolerations = _nodes.read_tolerations


def _platform_requirement_matches(requirement: dict, node: Node, where: str) -> bool:
    key = text(requirement.get("key"), f"{where}.key")
    if key not in PLATFORM_LABELS:
        return True  # a coverage choice: it does not lower the expectation
    operator = text(requirement.get("operator"), f"{where}.operator")
    values = listing(requirement.get("values"), f"{where}.values")
    if not all(isinstance(v, str) for v in values):
        raise NotVerified(f"{where}.values holds a value that is not a string")
    label = node.labels.get(key)
    label = label if isinstance(label, str) else None
    if operator == "In":
        return label in values
    if operator == "NotIn":
        return label not in values
    if operator == "Exists":
        return label is not None
    if operator == "DoesNotExist":
        return label is None
    raise NotVerified(f"{where}.operator {operator!r} is not one kubeproof knows for {key}")


def _on_its_platform(spec: dict, node: Node, where: str) -> bool:
    selector = mapping(spec.get("nodeSelector"), f"{where}.nodeSelector")
    for key, value in selector.items():
        if key in PLATFORM_LABELS and node.labels.get(key) != value:
            return False
    affinity = mapping(mapping(spec.get("affinity"), f"{where}.affinity").get("nodeAffinity"),
                       f"{where}.affinity.nodeAffinity")
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    path = f"{where}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    terms = listing(mapping(required, path).get("nodeSelectorTerms"), f"{path}.nodeSelectorTerms")
    if not terms:
        return True
    for index, term in enumerate(terms):
        term = mapping(term, f"{path}.nodeSelectorTerms[{index}]")
        expressions = listing(term.get("matchExpressions"), f"{path}.nodeSelectorTerms[{index}].matchExpressions")
        if all(_platform_requirement_matches(mapping(r, f"{path}.nodeSelectorTerms[{index}].matchExpressions[{i}]"),
                                             node, f"{path}.nodeSelectorTerms[{index}].matchExpressions[{i}]")
               for i, r in enumerate(expressions)):
            return True
    return False


# -- one agent ------------------------------------------------------------------------------------------
def _count(value, where: str, required: bool = True) -> int:
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NotVerified(f"{where} is {value!r}, not a count; the agent's state cannot be judged")
    return value


@dataclass(frozen=True)
class AgentStatus:
    ref: ObjectRef
    generation: int
    observed_generation: int
    desired: int
    ready: int
    unavailable: int
    expected_nodes: tuple[str, ...]  # nodes it should run on (tolerated, on its platform)
    other_nodes: tuple[str, ...]  # nodes left out by a taint it does not tolerate or another platform

    def summary(self) -> dict:
        return {"desiredNumberScheduled": self.desired, "numberReady": self.ready,
                "numberUnavailable": self.unavailable, "generation": self.generation,
                "observedGeneration": self.observed_generation, "expected_nodes": list(self.expected_nodes),
                "nodes_it_does_not_tolerate_or_other_platform": list(self.other_nodes)}


def agent_status(daemonset, nodes: list[Node]) -> AgentStatus:
    meta = metadata(daemonset, "DaemonSet")
    ref = ObjectRef.of(daemonset, "DaemonSet")
    generation = _count(meta.get("generation"), f"{ref} metadata.generation")
    status = mapping(daemonset.get("status"), f"{ref} status")
    if status.get("observedGeneration") is None:
        raise NotVerified(f"{ref} has no status.observedGeneration: its controller has not reported on it, "
                          "so its status proves nothing")
    observed = _count(status.get("observedGeneration"), f"{ref} status.observedGeneration")
    if observed < generation:
        raise NotVerified(f"{ref} status describes generation {observed} but the DaemonSet is at generation "
                          f"{generation}: its controller has not caught up, so the status proves nothing")
    desired = _count(status.get("desiredNumberScheduled"), f"{ref} status.desiredNumberScheduled")
    ready = _count(status.get("numberReady"), f"{ref} status.numberReady")
    unavailable = _count(status.get("numberUnavailable"), f"{ref} status.numberUnavailable", required=False)

    where = f"{ref} spec.template.spec"
    template = mapping(mapping(daemonset.get("spec"), f"{ref} spec").get("template"), f"{ref} spec.template")
    spec = mapping(template.get("spec"), where)
    host_network = spec.get("hostNetwork")
    if host_network is not None and not isinstance(host_network, bool):
        raise NotVerified(f"{where}.hostNetwork is {host_network!r}, not true or false")
    tolerations = read_tolerations(spec.get("tolerations"), f"{where}.tolerations")
    tolerations += [*CONTROLLER_TOLERATIONS, *(HOST_NETWORK_TOLERATIONS if host_network else ())]
    expected, other = [], []
    for node in nodes:
        runs = (all(any(tolerates(t, taint) for t in tolerations) for taint in node.taints)
                and _on_its_platform(spec, node, where))
        (expected if runs else other).append(node.name)
    return AgentStatus(ref, generation, observed, desired, ready, unavailable, tuple(expected), tuple(other))


def status_findings(agent: AgentStatus, node_count: int) -> list[Finding]:
    expected = len(agent.expected_nodes)
    if agent.desired > expected:
        # The controller counts nodes kubeproof does not: the node list changed between the two reads,
        # or a rule kubeproof does not model. Either way the numbers do not say every node is covered.
        raise NotVerified(f"{agent.ref} is scheduled on {agent.desired} nodes but kubeproof counts {expected} "
                          "it should run on; the node list may have changed while it was read")
    if not expected:
        return [Finding(CONTROLS, agent.ref, "spec.template.spec.tolerations",
                        f"runs on none of the {node_count} nodes (it tolerates none of their taints, or none is "
                        "on its platform)", "an agent on every node", _REMEDIATE_NOWHERE)]
    findings = []
    if agent.desired < expected:
        findings.append(Finding(CONTROLS, agent.ref, "status.desiredNumberScheduled",
                                f"scheduled on {agent.desired} of the {expected} nodes it should watch",
                                f"scheduled on all {expected} nodes whose taints it tolerates", _REMEDIATE_COVERAGE))
    if agent.ready < agent.desired or agent.unavailable:
        findings.append(Finding(CONTROLS, agent.ref, "status.numberReady",
                                f"{agent.ready} of {agent.desired} agent pods ready, {agent.unavailable} unavailable",
                                "a ready agent pod on every node it is scheduled on", _REMEDIATE_READY))
    return findings


def agent_findings(pattern, daemonsets, nodes) -> list[Finding]:
    """Findings for one baseline entry: absent, or (for each DaemonSet it names) not covering or not
    ready on every node it should watch."""
    found = matching(pattern, daemonsets)
    if not found:
        namespace, name = split_pattern(pattern)
        return [Finding(CONTROLS, ObjectRef("DaemonSet", name, namespace), "metadata.name",
                        f"no DaemonSet matches {pattern}", f"a DaemonSet {pattern} with a ready pod on every node",
                        _REMEDIATE_ABSENT)]
    known = read_nodes(nodes)
    findings = []
    for daemonset in found:
        findings.extend(status_findings(agent_status(daemonset, known), len(known)))
    return findings


def agent_evidence(pattern, daemonsets, nodes) -> dict:
    """What the report shows for one baseline entry (call after agent_findings succeeded)."""
    found = matching(pattern, daemonsets)
    if not found:
        return {"daemonsets": []}
    known = read_nodes(nodes)
    return {"daemonsets": {str(ObjectRef.of(d, "DaemonSet")): agent_status(d, known).summary() for d in found}}
