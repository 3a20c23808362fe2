"""Unit tests for kubeproof.checks.rbac (wildcards, cluster-admin) and the shape helpers it uses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, NAMES, PROPERTY, baseline, mangled, never_passes, outcome, protect_prefixes

from kubeproof.checks import _shape, rbac
from kubeproof.results import Finding, NotVerified, ObjectRef

DEFAULT = baseline()


def rule(verbs=("get", "list"), resources=("pods",), api_groups=("",), **extra) -> dict:
    return {"apiGroups": list(api_groups), "resources": list(resources), "verbs": list(verbs), **extra}


def cluster_role(name="reader", rules=None, labels=None) -> dict:
    metadata = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    return {"kind": "ClusterRole", "metadata": metadata, "rules": [rule()] if rules is None else rules}


def namespaced_role(name="deployer", namespace="team-a", rules=None) -> dict:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace},
            "rules": [rule()] if rules is None else rules}


def binding(name="grant", namespace=None, role_kind="ClusterRole", role_name="cluster-admin", subjects=None,
            kind=None) -> dict:
    metadata = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "kind": kind or ("RoleBinding" if namespace else "ClusterRoleBinding"),
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [{"kind": "User", "name": "alice"}] if subjects is None else subjects,
    }


BOOTSTRAP = {"kubernetes.io/bootstrapping": "rbac-defaults"}


# -- wildcards (CIS 5.1.3) -------------------------------------------------------------------------
def test_explicit_rules_pass():
    role = cluster_role(rules=[rule(), rule(verbs=["create"], resources=["deployments"], api_groups=["apps"])])
    assert rbac.wildcard_findings(role, DEFAULT) == []


def test_role_without_rules_passes():
    assert rbac.wildcard_findings(cluster_role(rules=[]), DEFAULT) == []
    role = cluster_role()
    del role["rules"]
    assert rbac.wildcard_findings(role, DEFAULT) == []


def test_wildcard_verb_in_first_rule_is_a_finding():
    role = cluster_role(rules=[rule(verbs=["*"])])
    [finding] = rbac.wildcard_findings(role, DEFAULT)
    assert finding.controls == ("5.1.3",)
    assert finding.object == ObjectRef("ClusterRole", "reader")
    assert finding.path == "rules[0].verbs"
    assert finding.observed == ["*"]


@pytest.mark.parametrize("field", ["verbs", "resources", "apiGroups"])
def test_wildcard_in_a_later_rule_is_found_for_every_field(field):
    rules = [rule(), rule(verbs=["watch"]), rule(resources=["configmaps"])]
    later = rule()
    later[field] = [later[field][0], "*"]
    rules.append(later)
    [finding] = rbac.wildcard_findings(cluster_role(rules=rules), DEFAULT)
    assert finding.path == f"rules[3].{field}"
    assert "*" in finding.observed


def test_every_wildcard_field_of_a_rule_is_reported():
    role = cluster_role(rules=[rule(), rule(verbs=["*"], resources=["*"], api_groups=["*"])])
    findings = rbac.wildcard_findings(role, DEFAULT)
    assert sorted(f.path for f in findings) == ["rules[1].apiGroups", "rules[1].resources", "rules[1].verbs"]


def test_partial_names_are_not_wildcards():
    # '*' only counts as a whole entry; 'pods/*' and '*.example.com' are names the API server matches literally
    role = cluster_role(rules=[rule(resources=["pods/log"], api_groups=["example.com"])])
    assert rbac.wildcard_findings(role, DEFAULT) == []


def test_namespaced_role_is_named_with_its_namespace():
    role = namespaced_role(rules=[rule(resources=["*"])])
    [finding] = rbac.wildcard_findings(role, DEFAULT)
    assert finding.object == ObjectRef("Role", "deployer", "team-a")
    assert rbac.role_reference(role) == "Role/team-a/deployer"


def test_role_without_kind_but_with_namespace_is_a_role():
    role = namespaced_role()
    del role["kind"]
    assert rbac.role_reference(role) == "Role/team-a/deployer"
    assert rbac.role_reference(cluster_role()) == "ClusterRole/reader"


@pytest.mark.parametrize("name", ["cluster-admin", "system:controller:generic-garbage-collector", "system:kube-scheduler"])
def test_kubernetes_bootstrap_roles_are_excepted(name):
    role = cluster_role(name=name, labels=BOOTSTRAP, rules=[rule(verbs=["*"], resources=["*"], api_groups=["*"])])
    assert rbac.is_kubernetes_bootstrap_role(role)
    assert rbac.wildcard_findings(role, DEFAULT) == []


def test_bootstrap_name_without_the_label_is_not_excepted():
    role = cluster_role(name="cluster-admin", rules=[rule(verbs=["*"])])
    assert not rbac.is_kubernetes_bootstrap_role(role)
    assert [f.path for f in rbac.wildcard_findings(role, DEFAULT)] == ["rules[0].verbs"]


def test_user_role_copying_the_bootstrap_label_is_not_excepted():
    role = cluster_role(name="my-admin", labels=BOOTSTRAP, rules=[rule(verbs=["*"])])
    assert not rbac.is_kubernetes_bootstrap_role(role)
    assert len(rbac.wildcard_findings(role, DEFAULT)) == 1


def test_other_label_value_is_not_excepted():
    role = cluster_role(name="system:evil", labels={"kubernetes.io/bootstrapping": "mine"}, rules=[rule(verbs=["*"])])
    assert len(rbac.wildcard_findings(role, DEFAULT)) == 1


def test_namespaced_role_named_like_a_bootstrap_role_is_not_excepted():
    role = namespaced_role(name="system:controller:x", rules=[rule(verbs=["*"])])
    role["metadata"]["labels"] = dict(BOOTSTRAP)
    assert not rbac.is_kubernetes_bootstrap_role(role)
    assert len(rbac.wildcard_findings(role, DEFAULT)) == 1


def test_baseline_allow_list_patterns():
    allowing = baseline(wildcard_roles_allowed=("ClusterRole/ops-*", "Role/team-*/deployer"))
    wild = [rule(verbs=["*"])]
    assert rbac.wildcard_findings(cluster_role(name="ops-admin", rules=wild), allowing) == []
    assert rbac.wildcard_findings(namespaced_role(namespace="team-b", rules=wild), allowing) == []
    assert len(rbac.wildcard_findings(cluster_role(name="dev-admin", rules=wild), allowing)) == 1
    # A ClusterRole pattern does not allow a Role of the same name, nor the other way round
    assert len(rbac.wildcard_findings(namespaced_role(name="ops-admin", namespace="x", rules=wild), allowing)) == 1
    assert len(rbac.wildcard_findings(cluster_role(name="deployer", rules=wild), allowing)) == 1
    # Patterns are case-sensitive, like the names they match
    assert len(rbac.wildcard_findings(cluster_role(name="OPS-admin", rules=wild), allowing)) == 1


@pytest.mark.parametrize("bad", [
    "not a role",
    None,
    {"kind": "ClusterRole", "rules": []},                                  # no metadata
    {"kind": "ClusterRole", "metadata": {"name": ""}, "rules": []},        # empty name
    {"kind": "ClusterRole", "metadata": {"name": 7}, "rules": []},         # name not a string
    {"kind": "ClusterRole", "metadata": ["reader"], "rules": []},
    cluster_role(rules="*"),                                               # rules not a list
    cluster_role(rules=["*"]),                                             # a rule that is not an object
    cluster_role(rules=[{"verbs": "*", "resources": ["pods"], "apiGroups": [""]}]),  # verbs a string
    cluster_role(rules=[rule(verbs=[None])]),
    cluster_role(rules=[rule(), rule(resources=[["*"]])]),                 # a nested list hides a wildcard
    cluster_role(labels=["kubernetes.io/bootstrapping"]),                  # labels not an object
], ids=lambda v: repr(v)[:60])
def test_uninterpretable_roles_are_not_verified(bad):
    with pytest.raises(NotVerified):
        rbac.wildcard_findings(bad, DEFAULT)


# -- cluster-admin (CIS 5.1.1) ---------------------------------------------------------------------
def test_cluster_admin_binding_to_a_user_is_a_finding():
    [finding] = rbac.cluster_admin_findings(binding(), DEFAULT)
    assert finding.controls == ("5.1.1",)
    assert finding.object == ObjectRef("ClusterRoleBinding", "grant")
    assert finding.path == "subjects[0]"
    assert finding.observed == "User/alice"


def test_system_masters_is_allowed_by_default():
    assert rbac.cluster_admin_findings(binding(subjects=[{"kind": "Group", "name": "system:masters"}]), DEFAULT) == []


def test_only_subjects_outside_the_baseline_are_reported_with_their_index():
    subjects = [
        {"kind": "Group", "name": "system:masters"},
        {"kind": "User", "name": "alice"},
        {"kind": "Group", "name": "system:masters"},
        {"kind": "ServiceAccount", "name": "ci", "namespace": "build"},
    ]
    findings = rbac.cluster_admin_findings(binding(subjects=subjects), DEFAULT)
    assert [(f.path, f.observed) for f in findings] == [("subjects[1]", "User/alice"),
                                                         ("subjects[3]", "ServiceAccount/build/ci")]


def test_rolebinding_to_the_cluster_admin_clusterrole_counts():
    [finding] = rbac.cluster_admin_findings(binding(namespace="team-a"), DEFAULT)
    assert finding.object == ObjectRef("RoleBinding", "grant", "team-a")


def test_rolebinding_to_a_role_named_cluster_admin_does_not_count():
    assert rbac.cluster_admin_findings(binding(namespace="team-a", role_kind="Role"), DEFAULT) == []


def test_binding_to_another_clusterrole_does_not_count():
    assert rbac.cluster_admin_findings(binding(role_name="view"), DEFAULT) == []


def test_binding_without_subjects_grants_nobody():
    assert rbac.cluster_admin_findings(binding(subjects=[]), DEFAULT) == []


def test_service_account_without_namespace_takes_the_bindings_namespace():
    subjects = [{"kind": "ServiceAccount", "name": "deployer"}]
    [finding] = rbac.cluster_admin_findings(binding(namespace="team-a", subjects=subjects), DEFAULT)
    assert finding.observed == "ServiceAccount/team-a/deployer"


def test_service_account_keeps_its_own_namespace():
    subjects = [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]
    [finding] = rbac.cluster_admin_findings(binding(namespace="team-a", subjects=subjects), DEFAULT)
    assert finding.observed == "ServiceAccount/ci/deployer"


def test_service_account_without_any_namespace_is_not_verified():
    subjects = [{"kind": "ServiceAccount", "name": "deployer"}]
    with pytest.raises(NotVerified):
        rbac.cluster_admin_findings(binding(subjects=subjects), DEFAULT)


def test_allowed_subject_patterns():
    allowing = baseline(cluster_admin_subjects=("Group/system:masters", "ServiceAccount/kube-system/*"))
    sa = [{"kind": "ServiceAccount", "name": "bootstrap", "namespace": "kube-system"}]
    assert rbac.cluster_admin_findings(binding(subjects=sa), allowing) == []
    other = [{"kind": "ServiceAccount", "name": "bootstrap", "namespace": "kube-public"}]
    assert len(rbac.cluster_admin_findings(binding(subjects=other), allowing)) == 1
    # A User named like an allowed group is still reported: the kind is part of the reference
    user = [{"kind": "User", "name": "system:masters"}]
    assert len(rbac.cluster_admin_findings(binding(subjects=user), allowing)) == 1


def test_empty_allow_list_reports_even_system_masters():
    strict = baseline(cluster_admin_subjects=())
    assert len(rbac.cluster_admin_findings(binding(subjects=[{"kind": "Group", "name": "system:masters"}]), strict)) == 1


def _without(obj: dict, *path):
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return obj


@pytest.mark.parametrize("bad", [
    _without(binding(), "roleRef"),
    _without(binding(), "roleRef", "name"),
    _without(binding(), "roleRef", "kind"),
    {**binding(), "roleRef": "cluster-admin"},
    {**binding(), "subjects": {"kind": "User", "name": "alice"}},
    binding(subjects=[{"kind": "User"}]),
    binding(subjects=[{"name": "alice"}]),
    binding(subjects=[{"kind": "User", "name": ["alice"]}]),
    binding(subjects=["User/alice"]),
    binding(subjects=[{"kind": "ServiceAccount", "name": "sa", "namespace": 3}]),
    _without(binding(), "metadata", "name"),
    [binding()],
], ids=lambda v: repr(v)[:60])
def test_uninterpretable_bindings_are_not_verified(bad):
    with pytest.raises(NotVerified):
        rbac.cluster_admin_findings(bad, DEFAULT)


def test_binding_reference_forms():
    assert rbac.binding_reference(binding()) == "ClusterRoleBinding/grant"
    assert rbac.binding_reference(binding(namespace="ns")) == "RoleBinding/ns/grant"
    assert rbac.role_ref(binding(role_kind="Role", role_name="edit")) == ("Role", "edit")
    assert rbac.subjects(binding(subjects=[{"kind": "Group", "name": "devs"}])) == ["Group/devs"]


# -- _shape ----------------------------------------------------------------------------------------
def test_shape_helpers():
    assert _shape.mapping(None, "x") == {}
    assert _shape.mapping({"a": 1}, "x") == {"a": 1}
    assert _shape.listing(None, "x") == []
    assert _shape.listing([1], "x") == [1]
    assert _shape.text("a", "x") == "a"
    assert _shape.text(None, "x", required=False) is None
    assert _shape.metadata({"metadata": {"name": "n"}}, "thing") == {"name": "n"}


@pytest.mark.parametrize("helper, value", [
    (_shape.mapping, []), (_shape.mapping, "a"), (_shape.mapping, 0),
    (_shape.listing, {}), (_shape.listing, "abc"), (_shape.listing, 0), (_shape.listing, False),
    (_shape.text, None), (_shape.text, ""), (_shape.text, 5), (_shape.text, ["a"]),
    (_shape.metadata, None), (_shape.metadata, []), (_shape.metadata, {}), (_shape.metadata, {"metadata": {"name": 1}}),
    (_shape.metadata, {"metadata": "n"}),
])
def test_shape_helpers_refuse_the_wrong_shape(helper, value):
    with pytest.raises(NotVerified) as raised:
        helper(value, "where")
    assert raised.value.reason


def test_optional_text_still_refuses_other_types():
    with pytest.raises(NotVerified):
        _shape.text(5, "x", required=False)


# -- properties ------------------------------------------------------------------------------------
WORDS = st.lists(NAMES, min_size=1, max_size=3)
RULES = st.builds(lambda v, r, g: {"verbs": v, "resources": r, "apiGroups": g}, WORDS, WORDS, WORDS)
ROLES = st.builds(lambda name, rules: cluster_role(name=name, rules=rules), NAMES, st.lists(RULES, max_size=5)) | st.builds(
    lambda name, ns, rules: namespaced_role(name=name, namespace=ns, rules=rules), NAMES, NAMES, st.lists(RULES, max_size=5))


@PROPERTY
@given(st.data())
def test_malformed_roles_give_findings_or_not_verified(data):
    role = data.draw(mangled(data.draw(ROLES)))
    outcome(rbac.wildcard_findings, role, DEFAULT)


@PROPERTY
@given(JSON)
def test_arbitrary_values_as_roles_give_findings_or_not_verified(value):
    outcome(rbac.wildcard_findings, value, DEFAULT)


@PROPERTY
@given(st.data())
def test_a_wildcard_anywhere_is_never_passed(data):
    role = data.draw(ROLES)
    rules = role["rules"]
    position = data.draw(st.integers(min_value=0, max_value=len(rules)))
    rules.insert(position, data.draw(RULES))
    field = data.draw(st.sampled_from(rbac.WILDCARD_FIELDS))
    values = rules[position][field]
    values.insert(data.draw(st.integers(min_value=0, max_value=len(values))), "*")
    findings = never_passes(rbac.wildcard_findings, role, DEFAULT)
    assert any(f.path == f"rules[{position}].{field}" for f in findings)
    # Breaking the other rules may make the role unjudgeable, but never compliant.
    keep = protect_prefixes(("rules", position), ("metadata",), ("kind",))
    never_passes(rbac.wildcard_findings, data.draw(mangled(role, keep, root=False)), DEFAULT)


SUBJECTS = st.one_of(
    st.builds(lambda n: {"kind": "User", "name": n}, NAMES),
    st.builds(lambda n: {"kind": "Group", "name": n}, NAMES),
    st.builds(lambda n, ns: {"kind": "ServiceAccount", "name": n, "namespace": ns}, NAMES, NAMES),
)
ALLOWED = {"kind": "Group", "name": "system:masters"}
BINDINGS = st.builds(
    lambda name, ns, subjects, role: binding(name=name, namespace=ns, subjects=subjects, role_name=role),
    NAMES, st.none() | NAMES, st.lists(SUBJECTS | st.just(ALLOWED), max_size=5), st.sampled_from(["cluster-admin", "view"]),
)


@PROPERTY
@given(st.data())
def test_malformed_bindings_give_findings_or_not_verified(data):
    outcome(rbac.cluster_admin_findings, data.draw(mangled(data.draw(BINDINGS))), DEFAULT)


@PROPERTY
@given(JSON)
def test_arbitrary_values_as_bindings_give_findings_or_not_verified(value):
    outcome(rbac.cluster_admin_findings, value, DEFAULT)


@PROPERTY
@given(st.data())
def test_an_unlisted_cluster_admin_subject_is_never_passed(data):
    granted = data.draw(BINDINGS)
    granted["roleRef"]["name"] = "cluster-admin"
    subjects = granted["subjects"]
    position = data.draw(st.integers(min_value=0, max_value=len(subjects)))
    subjects.insert(position, data.draw(SUBJECTS))
    findings = never_passes(rbac.cluster_admin_findings, granted, DEFAULT)
    assert any(f.path == f"subjects[{position}]" for f in findings)
    keep = protect_prefixes(("subjects", position), ("roleRef",), ("metadata",), ("kind",))
    never_passes(rbac.cluster_admin_findings, data.draw(mangled(granted, keep, root=False)), DEFAULT)


@PROPERTY
@given(st.lists(SUBJECTS | st.just(ALLOWED), max_size=6))
def test_cluster_admin_findings_are_exactly_the_unlisted_subjects(subjects):
    findings = rbac.cluster_admin_findings(binding(subjects=subjects), DEFAULT)
    expected = [f"subjects[{i}]" for i, s in enumerate(subjects) if s != ALLOWED]
    assert [f.path for f in findings] == expected
    assert all(isinstance(f, Finding) and f.controls == rbac.CLUSTER_ADMIN_CONTROLS for f in findings)


@pytest.mark.parametrize("bad_namespace", [None, 5, ["team-a"], {"name": "team-a"}, ""])
def test_an_allow_list_never_excuses_a_role_whose_namespace_cannot_be_read(bad_namespace):
    # kind Role says it lives in a namespace; "Role/None/deployer" must not match "Role/*/deployer"
    allowing = baseline(wildcard_roles_allowed=("Role/*/deployer",))
    role = namespaced_role(rules=[rule(verbs=["*"])])
    role["metadata"]["namespace"] = bad_namespace
    assert outcome(rbac.wildcard_findings, role, allowing) != []


@pytest.mark.parametrize("bad_namespace", [None, 5, ["team-a"], ""])
def test_an_allow_list_never_excuses_a_rolebinding_whose_namespace_cannot_be_read(bad_namespace):
    allowing = baseline(cluster_admin_subjects=("User/*",))
    granted = binding(kind="RoleBinding", namespace="team-a")
    granted["metadata"]["namespace"] = bad_namespace
    with pytest.raises(NotVerified):
        rbac.binding_reference(granted)
    outcome(rbac.cluster_admin_findings, granted, allowing)
