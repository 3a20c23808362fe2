"""Unit tests for kubeproof.checks.monitoring: expected node agents exist and are ready on every node
whose taints they tolerate, judged from a status the controller has caught up on."""

from __future__ import annotations

import copy

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled, never_passes, outcome, protect_prefixes

from kubeproof.checks import monitoring as mon
from kubeproof.results import NotVerified, ObjectRef

PATTERN = "logging/fluent-bit"


def node(name, taints=(), labels=None) -> dict:
    return {"kind": "Node", "metadata": {"name": name, "labels": labels or {"kubernetes.io/os": "linux"}},
            "spec": {"taints": [dict(t) for t in taints]} if taints else {}}


def daemonset(name="fluent-bit", namespace="logging", tolerations=None, desired=2, ready=2, unavailable=None,
              generation=3, observed=3, node_selector=None, host_network=None, affinity=None) -> dict:
    spec = {"containers": [{"name": "agent", "image": "fluent/fluent-bit:3.0"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if host_network is not None:
        spec["hostNetwork"] = host_network
    if affinity is not None:
        spec["affinity"] = affinity
    status = {"currentNumberScheduled": desired, "numberMisscheduled": 0, "desiredNumberScheduled": desired,
              "numberReady": ready}
    if observed is not None:
        status["observedGeneration"] = observed
    if unavailable is not None:
        status["numberUnavailable"] = unavailable
    return {"kind": "DaemonSet", "metadata": {"name": name, "namespace": namespace, "generation": generation},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
                                                                                "spec": spec}},
            "status": status}


TWO_NODES = [node("a"), node("b")]
DEDICATED = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def paths(findings) -> list[str]:
    return [f.path for f in findings]


# -- examples: presence ---------------------------------------------------------------------------------
def test_a_ready_agent_on_every_node_passes():
    assert mon.agent_findings(PATTERN, [daemonset()], TWO_NODES) == []


def test_an_absent_agent_is_a_finding_even_without_nodes():
    [finding] = mon.agent_findings(PATTERN, [daemonset(name="other")], [])
    assert finding.object == ObjectRef("DaemonSet", "fluent-bit", "logging")
    assert finding.observed == "no DaemonSet matches logging/fluent-bit"
    assert finding.controls == ()


def test_patterns_use_shell_wildcards_and_judge_every_match():
    found = [daemonset("falco-a", "security"), daemonset("falco-b", "security", ready=1),
             daemonset("falco", "other")]
    findings = mon.agent_findings("sec*/falco-*", found, TWO_NODES)
    assert [f.object.name for f in findings] == ["falco-b"]
    assert [d["metadata"]["name"] for d in mon.matching("sec*/falco-*", found)] == ["falco-a", "falco-b"]


@pytest.mark.parametrize("pattern", ["fluent-bit", "a/b/c", "/fluent-bit", "logging/", None, 3])
def test_a_pattern_that_is_not_namespace_slash_name_is_not_verified(pattern):
    with pytest.raises(NotVerified):
        mon.agent_findings(pattern, [daemonset()], TWO_NODES)


def test_no_nodes_is_not_verified_with_the_reason():
    with pytest.raises(NotVerified, match="no nodes"):
        mon.agent_findings(PATTERN, [daemonset(desired=0, ready=0)], [])


# -- examples: readiness and coverage -------------------------------------------------------------------
def test_a_pod_that_is_not_ready_is_a_finding():
    [finding] = mon.agent_findings(PATTERN, [daemonset(ready=1, unavailable=1)], TWO_NODES)
    assert finding.path == "status.numberReady"
    assert finding.observed == "1 of 2 agent pods ready, 1 unavailable"


def test_unavailable_pods_are_a_finding_even_when_ready_count_matches():
    assert paths(mon.agent_findings(PATTERN, [daemonset(unavailable=1)], TWO_NODES)) == ["status.numberReady"]


def test_a_node_selector_that_leaves_nodes_out_is_a_finding():
    findings = mon.agent_findings(PATTERN, [daemonset(desired=1, ready=1, node_selector={"pool": "web"})], TWO_NODES)
    assert paths(findings) == ["status.desiredNumberScheduled"]
    assert findings[0].observed == "scheduled on 1 of the 2 nodes it should watch"


def test_a_node_whose_taint_it_does_not_tolerate_is_not_expected():
    nodes = [node("a"), node("b"), node("db", [DEDICATED])]
    assert mon.agent_findings(PATTERN, [daemonset(desired=2, ready=2)], nodes) == []
    status = mon.agent_status(daemonset(), mon.read_nodes(nodes))
    assert status.expected_nodes == ("a", "b") and status.other_nodes == ("db",)


@pytest.mark.parametrize("toleration", [
    {"operator": "Exists"},                                   # empty key with Exists: every taint
    {"operator": "Exists", "effect": "NoSchedule"},
    {"key": "dedicated", "operator": "Exists"},
    {"key": "dedicated", "operator": "Equal", "value": "db"},
    {"key": "dedicated", "value": "db", "effect": "NoSchedule"},  # empty operator means Equal
])
def test_tolerated_taints_put_a_node_in_the_expectation(toleration):
    nodes = [node("a"), node("db", [DEDICATED])]
    # Scheduled on one only: the tolerated, tainted node is missing.
    [finding] = mon.agent_findings(PATTERN, [daemonset(tolerations=[toleration], desired=1, ready=1)], nodes)
    assert finding.path == "status.desiredNumberScheduled"
    assert mon.agent_findings(PATTERN, [daemonset(tolerations=[toleration], desired=2, ready=2)], nodes) == []


@pytest.mark.parametrize("toleration", [
    {"key": "dedicated", "operator": "Equal", "value": "web"},
    {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
    {"key": "other", "operator": "Exists"},
    {"key": "dedicated"},                                       # Equal with an empty value
])
def test_tolerations_that_do_not_match_leave_the_node_out(toleration):
    nodes = [node("a"), node("db", [DEDICATED])]
    assert mon.agent_findings(PATTERN, [daemonset(tolerations=[toleration], desired=1, ready=1)], nodes) == []


def test_prefer_no_schedule_taints_keep_no_agent_off():
    nodes = [node("a"), node("b", [{"key": "soft", "effect": "PreferNoSchedule"}])]
    assert mon.agent_findings(PATTERN, [daemonset(desired=2, ready=2)], nodes) == []


def test_the_controllers_own_tolerations_count():
    nodes = [node("a"), node("b", [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                                   {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])]
    [finding] = mon.agent_findings(PATTERN, [daemonset(desired=1, ready=1)], nodes)
    assert finding.observed == "scheduled on 1 of the 2 nodes it should watch"


def test_network_unavailable_is_tolerated_only_for_host_network_agents():
    nodes = [node("a"), node("b", [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}])]
    assert mon.agent_findings(PATTERN, [daemonset(desired=1, ready=1)], nodes) == []
    assert paths(mon.agent_findings(PATTERN, [daemonset(desired=1, ready=1, host_network=True)], nodes)) == [
        "status.desiredNumberScheduled"]


def test_an_agent_for_another_platform_does_not_expect_those_nodes():
    nodes = [node("a"), node("win", labels={"kubernetes.io/os": "windows"})]
    linux = daemonset(desired=1, ready=1, node_selector={"kubernetes.io/os": "linux"})
    assert mon.agent_findings(PATTERN, [linux], nodes) == []
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                              {"key": "pool", "operator": "In", "values": ["web"]}]}]}}}
    # The os requirement lowers the expectation, the pool requirement does not.
    assert mon.agent_findings(PATTERN, [daemonset(desired=1, ready=1, affinity=affinity)], nodes) == []
    assert paths(mon.agent_findings(PATTERN, [daemonset(desired=0, ready=0, affinity=affinity)], nodes)) == [
        "status.desiredNumberScheduled"]


def test_an_agent_that_tolerates_no_node_runs_nowhere_and_is_a_finding():
    nodes = [node("db", [DEDICATED]), node("cp", [CONTROL_PLANE])]
    [finding] = mon.agent_findings(PATTERN, [daemonset(desired=0, ready=0)], nodes)
    assert finding.observed.startswith("runs on none of the 2 nodes")


def test_more_scheduled_than_kubeproof_expects_is_not_verified():
    with pytest.raises(NotVerified, match="node list may have changed"):
        mon.agent_findings(PATTERN, [daemonset(desired=3, ready=3)], TWO_NODES)


# -- examples: a status that proves nothing -------------------------------------------------------------
def test_a_stale_status_is_not_verified():
    with pytest.raises(NotVerified, match="has not caught up"):
        mon.agent_findings(PATTERN, [daemonset(generation=4, observed=3)], TWO_NODES)


def test_a_status_never_observed_is_not_verified():
    with pytest.raises(NotVerified, match="observedGeneration"):
        mon.agent_findings(PATTERN, [daemonset(observed=None)], TWO_NODES)


@pytest.mark.parametrize("change", [
    lambda d: d["status"].pop("numberReady"),
    lambda d: d["status"].update(desiredNumberScheduled="2"),
    lambda d: d["status"].update(numberReady=True),
    lambda d: d["status"].update(numberUnavailable=-1),
    lambda d: d["metadata"].pop("generation"),
    lambda d: d.update(status=[]),
    lambda d: d["spec"]["template"]["spec"].update(tolerations={"operator": "Exists"}),
    lambda d: d["spec"]["template"]["spec"].update(tolerations=[{"operator": "Gt", "key": "x", "value": "1"}]),
    lambda d: d["spec"]["template"]["spec"].update(hostNetwork="yes"),
    lambda d: d["spec"]["template"]["spec"].update(nodeSelector=["linux"]),
])
def test_uninterpretable_daemonsets_are_not_verified(change):
    broken = daemonset()
    change(broken)
    with pytest.raises(NotVerified):
        mon.agent_findings(PATTERN, [broken], TWO_NODES)


@pytest.mark.parametrize("bad_nodes", [[None], [{"metadata": {}}], [{"metadata": {"name": "a"}, "spec": {"taints": {}}}],
                                       [node("a", [{"effect": "NoSchedule"}])], "nodes"], ids=repr)
def test_uninterpretable_nodes_are_not_verified(bad_nodes):
    with pytest.raises(NotVerified):
        mon.agent_findings(PATTERN, [daemonset()], bad_nodes)


def test_evidence_names_the_expected_nodes():
    evidence = mon.agent_evidence(PATTERN, [daemonset()], TWO_NODES)
    assert evidence["daemonsets"]["DaemonSet/logging/fluent-bit"]["expected_nodes"] == ["a", "b"]
    assert mon.agent_evidence(PATTERN, [], TWO_NODES) == {"daemonsets": []}


# -- properties -----------------------------------------------------------------------------------------
TAINTS = st.sampled_from([DEDICATED, CONTROL_PLANE, {"key": "gpu", "value": "yes", "effect": "NoExecute"},
                          {"key": "soft", "effect": "PreferNoSchedule"}])
TOLERATIONS = st.sampled_from([{"operator": "Exists"}, {"key": "dedicated", "operator": "Exists"},
                               {"key": "gpu", "value": "yes", "effect": "NoExecute"},
                               {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                "effect": "NoSchedule"}])


@st.composite
def clusters(draw):
    nodes = [node(f"n{i}", draw(st.lists(TAINTS, max_size=2, unique_by=lambda t: t["key"])))
             for i in range(draw(st.integers(min_value=1, max_value=4)))]
    tolerations = draw(st.lists(TOLERATIONS, max_size=2))
    return nodes, tolerations


def oracle_expected(nodes, tolerations) -> int:
    """Kubernetes' semantics, written out separately: a node counts when every NoSchedule/NoExecute
    taint on it is tolerated."""
    def tolerated(taint):
        for t in tolerations:
            if t.get("effect") and t["effect"] != taint["effect"]:
                continue
            if t.get("key") and t["key"] != taint["key"]:
                continue
            if t.get("operator") == "Exists" or t.get("value", "") == taint.get("value", ""):
                return True
        return False
    return sum(all(tolerated(t) for t in n["spec"].get("taints", []) if t["effect"] != "PreferNoSchedule")
               for n in nodes)


@PROPERTY
@given(clusters(), st.data())
def test_well_formed_agents_follow_kubernetes_semantics(cluster, data):
    nodes, tolerations = cluster
    expected = oracle_expected(nodes, tolerations)
    desired = data.draw(st.integers(min_value=0, max_value=expected))
    ready = data.draw(st.integers(min_value=0, max_value=desired))
    result = outcome(mon.agent_findings, PATTERN, [daemonset(tolerations=tolerations, desired=desired, ready=ready)], nodes)
    assert (result == []) == (expected > 0 and desired == expected and ready == desired)


@PROPERTY
@given(clusters(), st.integers(min_value=0, max_value=4), st.integers(min_value=0, max_value=4))
def test_an_agent_missing_a_node_or_a_ready_pod_is_never_passed(cluster, desired, ready):
    nodes, tolerations = cluster
    expected = oracle_expected(nodes, tolerations)
    assume(ready <= desired <= expected)
    assume(not (expected > 0 and desired == expected and ready == desired))
    never_passes(mon.agent_findings, PATTERN, [daemonset(tolerations=tolerations, desired=desired, ready=ready)], nodes)


@PROPERTY
@given(st.data())
def test_malformed_daemonsets_give_findings_or_not_verified(data):
    broken = data.draw(mangled(daemonset(), protected=protect_prefixes(("metadata", "name"), ("metadata", "namespace"))))
    outcome(mon.agent_findings, PATTERN, [broken], TWO_NODES)


@PROPERTY
@given(st.data())
def test_malformed_not_ready_daemonsets_are_never_passed(data):
    # Whatever else is mangled, the status still says a pod is not ready, or the object is unreadable.
    broken = data.draw(mangled(daemonset(ready=1), protected=protect_prefixes(
        ("metadata", "name"), ("metadata", "namespace"), ("status", "numberReady"), ("status", "desiredNumberScheduled"),
        ("status", "observedGeneration"), ("metadata", "generation"))))
    never_passes(mon.agent_findings, PATTERN, [broken], TWO_NODES)


@PROPERTY
@given(st.lists(JSON, max_size=3), st.lists(JSON, max_size=3), JSON)
def test_arbitrary_values_give_findings_or_not_verified(daemonsets, nodes, pattern):
    outcome(mon.agent_findings, PATTERN, daemonsets, nodes)
    outcome(mon.agent_findings, pattern, [daemonset()], TWO_NODES)
    outcome(mon.agent_findings, PATTERN, [daemonset()], nodes)


@PROPERTY
@given(st.data())
def test_malformed_nodes_give_findings_or_not_verified(data):
    nodes = copy.deepcopy([node("a", [DEDICATED]), node("b")])
    nodes[0] = data.draw(mangled(nodes[0]))
    outcome(mon.agent_findings, PATTERN, [daemonset()], nodes)
