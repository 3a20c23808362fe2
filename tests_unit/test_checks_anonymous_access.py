"""Unit tests for kubeproof.checks.anonymous_access: the unauthenticated probe and bindings to anonymous subjects."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, NAMES, PROPERTY, baseline, mangled, never_passes, outcome, protect_prefixes

from kubeproof.checks import anonymous_access
from kubeproof.results import NotVerified, ObjectRef

DEFAULT = baseline()
ANONYMOUS_USER = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}
UNAUTHENTICATED = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}
AUTHENTICATED = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}


def binding(name="open", namespace=None, subjects=None, role_kind="ClusterRole", role_name="view", labels=None) -> dict:
    metadata = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels is not None:
        metadata["labels"] = labels
    return {
        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [ANONYMOUS_USER] if subjects is None else subjects,
    }


def public_info_viewer(**changes) -> dict:
    """The binding Kubernetes creates itself (bootstrap policy), as the API returns it."""
    default = binding(
        name="system:public-info-viewer", subjects=[AUTHENTICATED, UNAUTHENTICATED],
        role_name="system:public-info-viewer", labels={"kubernetes.io/bootstrapping": "rbac-defaults"},
    )
    default["metadata"]["annotations"] = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    default.update(changes)
    return default


# -- the probe -------------------------------------------------------------------------------------
def test_401_passes():
    assert anonymous_access.probe_findings("/api", 401, "Unauthorized") == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttled_or_broken_answers_are_not_verified(status):
    with pytest.raises(NotVerified):
        anonymous_access.probe_findings("/version", status, "")


@pytest.mark.parametrize("status", [403, 200, 302, 404])
def test_anything_but_401_is_a_finding(status):
    [finding] = anonymous_access.probe_findings("/version", status, "")
    assert finding.controls == ("1.2.1",)
    assert finding.object == ObjectRef("Endpoint", "/version")
    assert finding.path == "unauthenticated GET /version"
    assert finding.observed == f"HTTP {status}"
    assert finding.expected == "HTTP 401"


@pytest.mark.parametrize("status", [0, -1, None, "401", 401.0])
def test_no_http_answer_is_not_verified(status):
    with pytest.raises(NotVerified):
        anonymous_access.probe_findings("/api", status, "")


@PROPERTY
@given(st.one_of(st.integers(min_value=-5, max_value=999), JSON))
def test_probe_passes_only_on_401(status):
    result = outcome(anonymous_access.probe_findings, "/healthz", status, "")
    if result == []:
        assert status == 401 and type(status) is int
    if isinstance(status, int) and not isinstance(status, bool) and 0 < status < 500 and status not in (401, 429):
        assert len(result) == 1


# -- bindings --------------------------------------------------------------------------------------
def test_binding_to_system_anonymous_is_a_finding():
    [finding] = anonymous_access.binding_findings(binding(), DEFAULT)
    assert finding.controls == ("1.2.1", "5.1.1")
    assert finding.object == ObjectRef("ClusterRoleBinding", "open")
    assert finding.path == "subjects"
    assert finding.observed == ["User/system:anonymous"]
    assert "ClusterRole view" in finding.expected


def test_binding_to_system_unauthenticated_is_a_finding():
    subjects = [AUTHENTICATED, UNAUTHENTICATED, ANONYMOUS_USER]
    [finding] = anonymous_access.binding_findings(binding(subjects=subjects), DEFAULT)
    assert finding.observed == ["Group/system:unauthenticated", "User/system:anonymous"]


def test_rolebinding_is_named_with_its_namespace():
    [finding] = anonymous_access.binding_findings(binding(namespace="web", subjects=[UNAUTHENTICATED]), DEFAULT)
    assert finding.object == ObjectRef("RoleBinding", "open", "web")


def test_authenticated_subjects_pass():
    subjects = [AUTHENTICATED, {"kind": "User", "name": "anonymous"}, {"kind": "ServiceAccount", "name": "default", "namespace": "x"}]
    assert anonymous_access.binding_findings(binding(subjects=subjects), DEFAULT) == []


def test_kubernetes_default_public_info_viewer_is_excepted():
    default = public_info_viewer()
    assert anonymous_access.is_kubernetes_default(default)
    assert anonymous_access.binding_findings(default, DEFAULT) == []


def test_public_info_viewer_look_alike_without_the_label_is_reported():
    look_alike = public_info_viewer()
    del look_alike["metadata"]["labels"]
    assert not anonymous_access.is_kubernetes_default(look_alike)
    [finding] = anonymous_access.binding_findings(look_alike, DEFAULT)
    assert finding.observed == ["Group/system:unauthenticated"]


def test_public_info_viewer_with_another_label_value_is_reported():
    look_alike = public_info_viewer()
    look_alike["metadata"]["labels"] = {"kubernetes.io/bootstrapping": "mine"}
    assert len(anonymous_access.binding_findings(look_alike, DEFAULT)) == 1


@pytest.mark.parametrize("role_ref", [
    {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "system:public-info-viewer"},
])
def test_public_info_viewer_with_another_role_is_reported(role_ref):
    look_alike = public_info_viewer(roleRef=role_ref)
    assert not anonymous_access.is_kubernetes_default(look_alike)
    [finding] = anonymous_access.binding_findings(look_alike, DEFAULT)
    assert role_ref["name"] in finding.expected


def test_a_rolebinding_with_the_default_name_is_not_the_default():
    look_alike = public_info_viewer()
    look_alike["kind"] = "RoleBinding"
    look_alike["metadata"]["namespace"] = "kube-public"
    assert not anonymous_access.is_kubernetes_default(look_alike)
    assert len(anonymous_access.binding_findings(look_alike, DEFAULT)) == 1


def test_labels_of_the_wrong_shape_are_not_the_default():
    look_alike = public_info_viewer()
    look_alike["metadata"]["labels"] = [["kubernetes.io/bootstrapping", "rbac-defaults"]]
    assert not anonymous_access.is_kubernetes_default(look_alike)


def test_baseline_allow_list():
    allowing = baseline(unauthenticated_bindings_allowed=("ClusterRoleBinding/legacy-*", "RoleBinding/web/*"))
    assert anonymous_access.binding_findings(binding(name="legacy-health"), allowing) == []
    assert anonymous_access.binding_findings(binding(namespace="web"), allowing) == []
    assert len(anonymous_access.binding_findings(binding(name="new-health"), allowing)) == 1
    assert len(anonymous_access.binding_findings(binding(namespace="api"), allowing)) == 1


@pytest.mark.parametrize("bad", [
    {k: v for k, v in binding(subjects=[AUTHENTICATED]).items() if k != "roleRef"},  # judged even with fine subjects
    {k: v for k, v in binding().items() if k != "roleRef"},
    binding(subjects=[{"kind": "User"}]),
    binding(subjects="system:anonymous"),
    binding(subjects=[None]),
    {**binding(), "metadata": {}},
    "ClusterRoleBinding/open",
], ids=lambda v: repr(v)[:60])
def test_uninterpretable_bindings_are_not_verified(bad):
    with pytest.raises(NotVerified):
        anonymous_access.binding_findings(bad, DEFAULT)


# -- properties ------------------------------------------------------------------------------------
SUBJECTS = st.one_of(
    st.just(AUTHENTICATED),
    st.builds(lambda n: {"kind": "User", "name": n}, NAMES),
    st.builds(lambda n: {"kind": "Group", "name": n}, NAMES),
    st.builds(lambda n, ns: {"kind": "ServiceAccount", "name": n, "namespace": ns}, NAMES, NAMES),
)
UNAUTHENTICATED_SUBJECTS = st.sampled_from([
    ANONYMOUS_USER, UNAUTHENTICATED, {"kind": "Group", "name": "system:anonymous"}, {"kind": "User", "name": "system:anonymous"},
])
BINDINGS = st.builds(
    lambda name, ns, subjects: binding(name=name, namespace=ns, subjects=subjects),
    NAMES, st.none() | NAMES, st.lists(SUBJECTS, max_size=4),
) | st.builds(lambda: copy.deepcopy(public_info_viewer()))


@PROPERTY
@given(st.data())
def test_malformed_bindings_give_findings_or_not_verified(data):
    outcome(anonymous_access.binding_findings, data.draw(mangled(data.draw(BINDINGS))), DEFAULT)


@PROPERTY
@given(JSON)
def test_arbitrary_values_as_bindings_give_findings_or_not_verified(value):
    outcome(anonymous_access.binding_findings, value, DEFAULT)


@PROPERTY
@given(st.data())
def test_an_anonymous_subject_anywhere_is_never_passed(data):
    open_binding = data.draw(BINDINGS.filter(lambda b: not anonymous_access.is_kubernetes_default(b)))
    subjects = open_binding["subjects"]
    position = data.draw(st.integers(min_value=0, max_value=len(subjects)))
    granted = data.draw(UNAUTHENTICATED_SUBJECTS)
    subjects.insert(position, dict(granted))
    [finding] = never_passes(anonymous_access.binding_findings, open_binding, DEFAULT)
    assert f"{granted['kind']}/{granted['name']}" in finding.observed
    keep = protect_prefixes(("subjects", position), ("roleRef",), ("metadata",), ("kind",))
    never_passes(anonymous_access.binding_findings, data.draw(mangled(open_binding, keep, root=False)), DEFAULT)
