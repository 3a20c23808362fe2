"""Unit tests for kubeproof.checks.network_policy: default-deny per namespace, with the API server's
defaulting of policyTypes and podSelector."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, NAMES, PROPERTY, mangled, never_passes, outcome

from kubeproof.checks import network_policy as np
from kubeproof.results import NotVerified, ObjectRef

NS = {"kind": "Namespace", "metadata": {"name": "shop"}}
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
ALLOW_DNS = [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]}]


def policy(name="deny", **spec) -> dict:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def missing(findings) -> str:
    [finding] = findings
    return finding.observed


# -- examples --------------------------------------------------------------------------------------
def test_no_policies_is_a_finding():
    [finding] = np.default_deny_findings(NS, [])
    assert finding.controls == ("5.3.2",)
    assert finding.object == ObjectRef("Namespace", "shop")
    assert finding.path == "NetworkPolicy (podSelector: {})"
    assert finding.observed == "no default-deny for Ingress and Egress (no policies)"


def test_deny_all_policy_passes():
    assert np.default_deny_findings(NS, [policy(**DENY_ALL)]) == []


def test_deny_all_alongside_allow_policies_passes():
    allow = policy("allow-web", podSelector={"matchLabels": {"app": "web"}}, ingress=[{}], policyTypes=["Ingress"])
    assert np.default_deny_findings(NS, [allow, policy(**DENY_ALL)]) == []


def test_policy_types_omitted_means_ingress_only():
    spec = {"podSelector": {}}
    assert np.effective_policy_types(spec, "p") == ["Ingress"]
    assert np.denied_directions(policy(**spec)) == {"Ingress"}
    assert missing(np.default_deny_findings(NS, [policy(**spec)])) == "no default-deny for Egress (1 policies present)"


def test_policy_types_omitted_with_egress_rules_means_both():
    spec = {"podSelector": {}, "egress": ALLOW_DNS}
    assert np.effective_policy_types(spec, "p") == ["Ingress", "Egress"]
    # Ingress is denied (no ingress rules); egress is opened by its rule
    assert np.denied_directions(policy(**spec)) == {"Ingress"}


def test_policy_types_omitted_with_empty_egress_means_ingress_only():
    assert np.effective_policy_types({"egress": []}, "p") == ["Ingress"]


def test_empty_policy_types_is_defaulted_like_an_omitted_one():
    # The API server defaults policyTypes whenever the list is empty, not only when it is absent.
    assert np.effective_policy_types({"policyTypes": []}, "p") == ["Ingress"]
    assert np.effective_policy_types({"policyTypes": [], "egress": ALLOW_DNS}, "p") == ["Ingress", "Egress"]
    assert np.denied_directions(policy(podSelector={}, policyTypes=[])) == {"Ingress"}


def test_an_empty_ingress_rule_allows_everything():
    spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}]}
    assert np.denied_directions(policy(**spec)) == {"Egress"}
    assert missing(np.default_deny_findings(NS, [policy(**spec)])).startswith("no default-deny for Ingress ")


def test_an_empty_egress_rule_allows_everything():
    spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{}]}
    assert np.denied_directions(policy(**spec)) == {"Ingress"}


def test_null_rules_are_no_rules():
    assert np.denied_directions(policy(podSelector={}, policyTypes=["Ingress", "Egress"], ingress=None, egress=None)) == {
        "Ingress", "Egress"}


@pytest.mark.parametrize("selector", [{}, {"matchLabels": {}}, {"matchExpressions": []},
                                      {"matchLabels": {}, "matchExpressions": []}, {"matchLabels": None}])
def test_empty_selectors_select_every_pod(selector):
    assert np.denied_directions(policy(podSelector=selector, policyTypes=["Ingress", "Egress"])) == {"Ingress", "Egress"}


def test_missing_pod_selector_selects_every_pod():
    assert np.denied_directions(policy(policyTypes=["Ingress", "Egress"])) == {"Ingress", "Egress"}


@pytest.mark.parametrize("selector", [
    {"matchLabels": {"app": "web"}},
    {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
    {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]},
])
def test_a_policy_with_a_selector_does_not_count(selector):
    narrow = policy(podSelector=selector, policyTypes=["Ingress", "Egress"])
    assert np.denied_directions(narrow) == set()
    assert missing(np.default_deny_findings(NS, [narrow])) == "no default-deny for Ingress and Egress (1 policies present)"


def test_deny_split_across_two_policies_counts():
    ingress = policy("deny-ingress", podSelector={}, policyTypes=["Ingress"])
    egress = policy("deny-egress", podSelector={}, policyTypes=["Egress"])
    assert np.default_deny_findings(NS, [ingress, egress]) == []
    assert missing(np.default_deny_findings(NS, [egress])) == "no default-deny for Ingress (1 policies present)"


def test_egress_only_policy_leaves_ingress_open_even_with_no_ingress_rules():
    assert np.denied_directions(policy(podSelector={}, policyTypes=["Egress"])) == {"Egress"}


@pytest.mark.parametrize("spec", [
    {"podSelector": {}, "policyTypes": "Ingress"},
    {"podSelector": {}, "policyTypes": ["Ingress", "Both"]},
    {"podSelector": {}, "policyTypes": ["ingress"]},
    {"podSelector": {}, "policyTypes": [None]},
    {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": "none"},
    {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": {}},
    {"podSelector": {}, "policyTypes": ["Egress"], "egress": 0},
    {"podSelector": {}, "egress": {"to": []}},
    {"podSelector": "all"},
    {"podSelector": []},
    {"podSelector": {"matchLabels": ["app"]}},
    {"podSelector": {"matchExpressions": {"key": "app"}}},
], ids=repr)
def test_uninterpretable_policies_are_not_verified(spec):
    with pytest.raises(NotVerified):
        np.default_deny_findings(NS, [policy(**spec)])


@pytest.mark.parametrize("bad_policy", [None, "deny", [], {"spec": DENY_ALL}, {"metadata": {"name": 1}, "spec": DENY_ALL},
                                        {"metadata": {"name": "p"}, "spec": [DENY_ALL]}], ids=repr)
def test_uninterpretable_policy_objects_are_not_verified(bad_policy):
    with pytest.raises(NotVerified):
        np.default_deny_findings(NS, [policy(**DENY_ALL), bad_policy])


@pytest.mark.parametrize("bad_namespace", [None, {}, {"metadata": {}}, {"metadata": {"name": None}}, "shop"], ids=repr)
def test_uninterpretable_namespace_is_not_verified(bad_namespace):
    with pytest.raises(NotVerified):
        np.default_deny_findings(bad_namespace, [policy(**DENY_ALL)])


def test_policies_that_are_not_a_list_are_never_passed():
    assert np.default_deny_findings(NS, None) != []  # read as "no policies"
    with pytest.raises(NotVerified):
        np.default_deny_findings(NS, {"deny": policy(**DENY_ALL)})


# -- properties ------------------------------------------------------------------------------------
SELECTORS = st.sampled_from([
    None, {}, {"matchLabels": {}}, {"matchLabels": {"app": "web"}},
    {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]},
])
RULES = st.sampled_from([None, [], [{}], [{"ports": [{"port": 443}]}], ALLOW_DNS])
TYPES = st.sampled_from([None, [], ["Ingress"], ["Egress"], ["Ingress", "Egress"], ["Egress", "Ingress"]])


@st.composite
def policies(draw):
    spec = {}
    for key, values in (("podSelector", SELECTORS), ("policyTypes", TYPES), ("ingress", RULES), ("egress", RULES)):
        value = draw(values)
        if value is not None or draw(st.booleans()):
            spec[key] = value
    return policy(draw(NAMES), **spec)


def oracle_denied(spec: dict) -> set[str]:
    """Kubernetes' semantics, written out separately from the check."""
    selector = spec.get("podSelector") or {}
    if selector.get("matchLabels") or selector.get("matchExpressions"):
        return set()
    types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
    return {t for t in types if not spec.get(t.lower())}


@PROPERTY
@given(st.lists(policies(), max_size=4))
def test_well_formed_policies_follow_kubernetes_semantics(drawn):
    covered = set().union(*(oracle_denied(p["spec"]) for p in drawn))
    findings = np.default_deny_findings(NS, drawn)
    assert (findings == []) == (covered == {"Ingress", "Egress"})


@PROPERTY
@given(st.data())
def test_malformed_policies_give_findings_or_not_verified(data):
    drawn = data.draw(st.lists(policies(), min_size=1, max_size=3))
    index = data.draw(st.integers(min_value=0, max_value=len(drawn) - 1))
    drawn[index] = data.draw(mangled(drawn[index]))
    outcome(np.default_deny_findings, NS, drawn)


@PROPERTY
@given(JSON, st.lists(JSON, max_size=3))
def test_arbitrary_values_give_findings_or_not_verified(namespace_value, policy_values):
    outcome(np.default_deny_findings, namespace_value, policy_values)
    outcome(np.default_deny_findings, NS, policy_values)


@PROPERTY
@given(st.lists(policies(), max_size=4).filter(
    lambda ps: "Ingress" not in set().union(*(oracle_denied(p["spec"]) for p in ps))))
def test_namespaces_without_an_ingress_deny_are_never_passed(drawn):
    never_passes(np.default_deny_findings, NS, drawn)
