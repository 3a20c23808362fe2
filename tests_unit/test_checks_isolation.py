"""Unit tests for kubeproof.checks.isolation: the default namespace, resource policies per namespace,
and sensitive workloads confined to dedicated (tainted, tolerated, selected) nodes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, NAMES, PROPERTY, mangled, never_passes, outcome, protect_prefixes
from workloads import pod_spec, spec_key, spec_of, workload, workloads

from kubeproof.checks import isolation
from kubeproof.checks.isolation import Taint
from kubeproof.results import NotVerified, ObjectRef


def namespace(name="team") -> dict:
    return {"kind": "Namespace", "metadata": {"name": name}}


# -- the default namespace (CIS 5.6.4) -------------------------------------------------------------
def test_workload_in_default_is_a_finding():
    [finding] = isolation.default_namespace_findings(workload("StatefulSet", namespace="default"))
    assert finding.controls == ("5.6.4",) and finding.path == "metadata.namespace"
    assert finding.object == ObjectRef("StatefulSet", "web", "default", "uid-web")


@pytest.mark.parametrize("name", ["team", "kube-system", "defaults", "Default"])
def test_workload_elsewhere_passes(name):
    assert isolation.default_namespace_findings(workload(namespace=name)) == []


# -- resource quotas and limit ranges ------------------------------------------------------------
def quota(name="compute", hard=None, **spec) -> dict:
    return {"kind": "ResourceQuota", "metadata": {"name": name, "namespace": "team"},
            "spec": {"hard": {"requests.cpu": "4", "limits.memory": "8Gi"} if hard is None else hard, **spec}}


def limit_range(name="defaults", limits=None) -> dict:
    limits = [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}] if limits is None else limits
    return {"kind": "LimitRange", "metadata": {"name": name, "namespace": "team"}, "spec": {"limits": limits}}


def test_built_in_namespaces_other_than_default_are_exempt():
    assert all(isolation.exempt_from_resource_policies(n) for n in ("kube-system", "kube-public", "kube-node-lease"))
    assert not isolation.exempt_from_resource_policies("default")
    assert not isolation.exempt_from_resource_policies("kube-system-extra")


def test_namespace_without_a_quota_is_a_finding():
    [finding] = isolation.resource_quota_findings(namespace(), [])
    assert finding.observed == "no ResourceQuota" and finding.object == ObjectRef("Namespace", "team")


@pytest.mark.parametrize("hard", [{"pods": "0"}, {"cpu": "1"}, {"limits.memory": "1Gi"}, {"requests.memory": "1Gi", "secrets": "5"}])
def test_a_quota_capping_pods_cpu_or_memory_passes(hard):
    assert isolation.resource_quota_findings(namespace(), [quota(hard=hard)]) == []


def test_quotas_capping_only_object_counts_do_not_count():
    [finding] = isolation.resource_quota_findings(namespace(), [quota("objects", {"configmaps": "10"}), quota("none", {})])
    assert "none, objects" in finding.observed


def test_quota_caps_by_name():
    assert isolation.quota_caps_by_name([quota(), quota("p", {"pods": "1"})]) == {
        "compute": ["limits.memory", "requests.cpu"], "p": ["pods"]}


def test_namespace_without_a_limit_range_is_a_finding():
    [finding] = isolation.limit_range_findings(namespace(), [])
    assert finding.observed == "no LimitRange" and finding.path == "limitranges"


@pytest.mark.parametrize("limits", [
    [{"type": "Container", "max": {"memory": "1Gi"}}],
    [{"type": "Container", "defaultRequest": {"cpu": "100m"}}],
    [{"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}, {"type": "Pod", "max": {"cpu": "2"}}],
])
def test_a_limit_range_with_a_max_or_defaults_passes(limits):
    assert isolation.limit_range_findings(namespace(), [limit_range(limits=limits)]) == []


@pytest.mark.parametrize("limits", [
    [], [{"type": "Container", "min": {"cpu": "10m"}}], [{"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}],
    [{"type": "Container", "max": {}}],
])
def test_limit_ranges_that_bound_nothing_do_not_count(limits):
    [finding] = isolation.limit_range_findings(namespace(), [limit_range(limits=limits)])
    assert "defaults" in finding.observed


@pytest.mark.parametrize("check, item", [
    (isolation.resource_quota_findings, {"metadata": {"name": "q"}, "spec": {"hard": ["pods"]}}),
    (isolation.resource_quota_findings, {"metadata": {"name": "q"}, "spec": "x"}),
    (isolation.resource_quota_findings, "x"),
    (isolation.limit_range_findings, {"metadata": {"name": "l"}, "spec": {"limits": [{"max": {"cpu": "1"}}]}}),
    (isolation.limit_range_findings, {"metadata": {"name": "l"}, "spec": {"limits": "x"}}),
])
def test_unreadable_policies_are_not_verified(check, item):
    with pytest.raises(NotVerified):
        check(namespace(), [item])


# -- dedicated nodes ---------------------------------------------------------------------------------
DEDICATED = {"key": "dedicated", "value": "payments", "effect": "NoSchedule"}
TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "payments", "effect": "NoSchedule"}


def node(name, labels=None, taints=None) -> dict:
    return {"kind": "Node", "metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


NODES = [
    node("pay-1", {"pool": "payments"}, [DEDICATED]),
    node("pay-2", {"pool": "payments"}, [DEDICATED, {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
    node("general-1", {"pool": "general"}),
    node("other-team", {"pool": "payments-old"}, [{"key": "dedicated", "value": "search", "effect": "NoSchedule"}]),
]


def sensitive(tolerations=None, node_selector=None, affinity=None, node_name=None, kind="Deployment") -> dict:
    spec = pod_spec()
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if affinity is not None:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": affinity}}}
    if node_name is not None:
        spec["nodeName"] = node_name
    return workload(kind, namespace="payments", spec=spec)


def paths(findings) -> list[str]:
    return [f.path.rsplit(".", 1)[-1] for f in findings]


def test_tolerating_and_selecting_the_dedicated_nodes_passes():
    assert isolation.dedicated_node_findings(sensitive([TOLERATION], {"pool": "payments"}), NODES) == []
    where = isolation.placement(sensitive([TOLERATION], {"pool": "payments"}), NODES)
    assert where.runnable == ["pay-1", "pay-2"] and where.undedicated == []
    assert where.tolerated == ["dedicated=payments:NoSchedule"]


def test_required_node_affinity_selects_as_well():
    terms = [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["payments"]}]}]
    assert isolation.dedicated_node_findings(sensitive([TOLERATION], affinity=terms), NODES) == []


def test_tolerating_without_selecting_is_a_finding():
    findings = isolation.dedicated_node_findings(sensitive([TOLERATION]), NODES)
    assert paths(findings) == ["nodeSelector"] and findings[0].observed.startswith("no nodeSelector")
    assert findings[0].controls == ()


def test_selecting_without_tolerating_is_a_finding():
    findings = isolation.dedicated_node_findings(sensitive(node_selector={"pool": "payments"}), NODES)
    assert paths(findings) == ["tolerations"]
    assert "dedicated=payments:NoSchedule" in findings[0].observed and "dedicated=search:NoSchedule" in findings[0].observed


def test_neither_is_two_findings():
    assert paths(isolation.dedicated_node_findings(sensitive(), NODES)) == ["tolerations", "nodeSelector"]


def test_a_blanket_toleration_with_a_loose_selector_reaches_general_nodes():
    terms = [{"matchExpressions": [{"key": "pool", "operator": "Exists"}]}]
    [finding] = isolation.dedicated_node_findings(sensitive([{"operator": "Exists"}], affinity=terms), NODES)
    assert finding.observed == "can also run on nodes without a dedicating taint: general-1"


def test_a_selector_that_matches_no_runnable_node_is_a_finding():
    [finding] = isolation.dedicated_node_findings(sensitive([TOLERATION], {"pool": "gpu"}), NODES)
    assert "selects no node it can run on" in finding.observed


def test_an_untolerated_taint_keeps_the_workload_off_a_selected_node():
    terms = [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["payments", "payments-old"]}]}]
    where = isolation.placement(sensitive([TOLERATION], affinity=terms), NODES)
    assert where.runnable == ["pay-1", "pay-2"]


def test_kubernetes_condition_taints_dedicate_nothing():
    nodes = [node("n", {"pool": "payments"}, [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])]
    tolerate = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]
    findings = isolation.dedicated_node_findings(sensitive(tolerate, {"pool": "payments"}), nodes)
    assert paths(findings) == ["tolerations"]
    assert findings[0].observed == "no node carries a NoSchedule or NoExecute taint to dedicate it"


def test_prefer_no_schedule_dedicates_nothing():
    nodes = [node("n", {"pool": "p"}, [{"key": "dedicated", "value": "p", "effect": "PreferNoSchedule"}])]
    tolerate = [{"key": "dedicated", "operator": "Exists"}]
    assert paths(isolation.dedicated_node_findings(sensitive(tolerate, {"pool": "p"}), nodes)) == ["tolerations"]


def test_a_bare_pod_bound_by_node_name():
    assert isolation.dedicated_node_findings(sensitive([TOLERATION], node_name="pay-1", kind="Pod"), NODES) == []
    [finding] = isolation.dedicated_node_findings(sensitive([TOLERATION], node_name="general-1", kind="Pod"), NODES)
    assert "general-1" in finding.observed


@pytest.mark.parametrize("operator, values, label, expected", [
    ("In", ["a"], "a", True), ("In", ["a"], None, False), ("NotIn", ["a"], "b", True), ("NotIn", ["a"], None, True),
    ("NotIn", ["a"], "a", False), ("Exists", [], "x", True), ("DoesNotExist", [], None, True),
    ("DoesNotExist", [], "x", False), ("Gt", ["3"], "4", True), ("Gt", ["3"], "3", False), ("Lt", ["3"], "-1", True),
    ("Gt", ["3"], "four", False), ("Lt", ["3"], None, False),
])
def test_node_selector_operators(operator, values, label, expected):
    labels = {"k": label} if label is not None else {}
    nodes = [node("n", labels, [DEDICATED])]
    terms = [{"matchExpressions": [{"key": "k", "operator": operator, "values": values}]}]
    assert (isolation.placement(sensitive([TOLERATION], affinity=terms), nodes).runnable == ["n"]) is expected


def test_match_fields_on_the_node_name_and_empty_terms():
    terms = [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["pay-2"]}]}]
    assert isolation.placement(sensitive([TOLERATION], affinity=terms), NODES).runnable == ["pay-2"]
    assert isolation.placement(sensitive([TOLERATION], affinity=[{}]), NODES).runnable == []
    assert isolation.placement(sensitive([TOLERATION], affinity=[]), NODES).runnable == []


@pytest.mark.parametrize("toleration, taint, expected", [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, Taint("k", "v", "NoSchedule"), True),
    ({"key": "k", "value": "v"}, Taint("k", "v", "NoExecute"), True),         # empty effect matches any
    ({"key": "k", "value": "w"}, Taint("k", "v", "NoSchedule"), False),
    ({"key": "k", "operator": "Exists"}, Taint("k", "v", "NoSchedule"), True),
    ({"operator": "Exists"}, Taint("any", "v", "NoExecute"), True),            # empty key with Exists: all
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, Taint("k", "", "NoSchedule"), False),
    ({"key": "j", "operator": "Exists"}, Taint("k", "", "NoSchedule"), False),
])
def test_toleration_matching_follows_kubernetes(toleration, taint, expected):
    assert isolation.tolerates(toleration, taint) is expected


@pytest.mark.parametrize("operator", ["Gt", "Lt", "exists", 7])
def test_an_operator_kubeproof_does_not_know_is_not_verified(operator):
    # The same helper as the monitoring check's (checks/_nodes.py): neither guesses what it tolerates.
    unknown = {"key": "dedicated", "operator": operator, "value": "1", "effect": "NoSchedule"}
    with pytest.raises(NotVerified):
        isolation.placement(sensitive([unknown], {"pool": "payments"}), NODES)


def test_no_nodes_is_not_verified():
    with pytest.raises(NotVerified, match="no nodes"):
        isolation.dedicated_node_findings(sensitive([TOLERATION], {"pool": "payments"}), [])


@pytest.mark.parametrize("affinity", [
    [{"matchExpressions": [{"key": "pool", "operator": "Near", "values": ["x"]}]}],
    [{"matchExpressions": [{"key": "pool", "operator": "Gt", "values": ["x"]}]}],
    [{"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["x"]}]}],
    [{"matchExpressions": [{"key": "pool", "operator": "In", "values": [1]}]}],
])
def test_selectors_kubeproof_cannot_evaluate_are_not_verified(affinity):
    with pytest.raises(NotVerified):
        isolation.dedicated_node_findings(sensitive([TOLERATION], affinity=affinity), NODES)


@pytest.mark.parametrize("nodes", ["x", [5], [node("n", taints=[{"effect": "NoSchedule"}])], [{"metadata": {"name": "n"}, "spec": "x"}],
                                   [node("n", {"pool": 5})]])
def test_unreadable_nodes_are_not_verified(nodes):
    with pytest.raises(NotVerified):
        isolation.dedicated_node_findings(sensitive([TOLERATION], {"pool": "payments"}), nodes)


# -- properties ------------------------------------------------------------------------------------
LABELS = st.dictionaries(st.sampled_from(["pool", "zone", "gpu"]), st.sampled_from(["a", "b", "payments"]), max_size=2)
TAINTS = st.lists(st.builds(lambda k, v, e: {"key": k, "value": v, "effect": e}, st.sampled_from(["dedicated", "gpu"]),
                            st.sampled_from(["", "a", "payments"]), st.sampled_from(["NoSchedule", "NoExecute", "PreferNoSchedule"])),
                  max_size=2)
NODE_LISTS = st.lists(st.builds(node, NAMES, LABELS, TAINTS), min_size=1, max_size=4, unique_by=lambda n: n["metadata"]["name"])
TOLERATIONS = st.lists(st.builds(lambda k, o, v: {"key": k, "operator": o, "value": v},
                                 st.sampled_from(["dedicated", "gpu", ""]), st.sampled_from(["Equal", "Exists"]),
                                 st.sampled_from(["", "a", "payments"])).map(
    lambda t: {k: v for k, v in t.items() if not (t["operator"] == "Exists" and k == "value")}), max_size=2)


@PROPERTY
@given(st.data())
def test_malformed_inputs_give_findings_or_not_verified(data):
    obj = data.draw(workloads(namespaces=st.just("payments")))
    spec = spec_of(obj)
    spec["tolerations"] = data.draw(TOLERATIONS)
    spec["nodeSelector"] = data.draw(LABELS)
    nodes = data.draw(NODE_LISTS)
    if data.draw(st.booleans()):
        obj = data.draw(mangled(obj))
    else:
        nodes = data.draw(mangled(nodes))
    outcome(isolation.dedicated_node_findings, obj, nodes)


@PROPERTY
@given(JSON, JSON)
def test_arbitrary_values_give_findings_or_not_verified(workload_value, nodes_value):
    outcome(isolation.dedicated_node_findings, workload_value, nodes_value)
    outcome(isolation.default_namespace_findings, workload_value)
    outcome(isolation.resource_quota_findings, workload_value, nodes_value)
    outcome(isolation.limit_range_findings, namespace(), nodes_value)
    outcome(isolation.resource_quota_findings, namespace(), nodes_value)


@PROPERTY
@given(st.data())
def test_a_selection_that_reaches_an_untainted_node_is_never_passed(data):
    obj = data.draw(workloads(namespaces=st.just("payments")))
    selector = data.draw(LABELS)
    spec = spec_of(obj)
    spec["tolerations"] = data.draw(TOLERATIONS)
    spec["nodeSelector"] = selector
    nodes = data.draw(NODE_LISTS) + [node("open-node", {**selector, "extra": "x"}, [])]
    never_passes(isolation.dedicated_node_findings, obj, nodes)
    keep = protect_prefixes(("kind",), ("metadata",), spec_key(obj["kind"]) + ("nodeSelector",))
    never_passes(isolation.dedicated_node_findings, data.draw(mangled(obj, keep, root=False)), nodes)


@PROPERTY
@given(st.data())
def test_a_workload_in_default_is_never_passed(data):
    obj = data.draw(workloads(namespaces=st.just("default")))
    never_passes(isolation.default_namespace_findings, obj)
    keep = protect_prefixes(("kind",), ("metadata", "namespace"))
    never_passes(isolation.default_namespace_findings, data.draw(mangled(obj, keep, root=False)))


@PROPERTY
@given(st.lists(st.builds(quota, NAMES, st.dictionaries(st.sampled_from(["configmaps", "secrets", "services"]), st.just("1"))),
                max_size=3, unique_by=lambda q: q["metadata"]["name"]))
def test_quotas_that_cap_no_compute_are_never_passed(quotas):
    never_passes(isolation.resource_quota_findings, namespace(), quotas)

