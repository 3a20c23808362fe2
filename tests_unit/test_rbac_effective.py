"""Unit tests for kubeproof.rbac_effective: the effective-permission engine, without a cluster.

The same semantics are compared with the real authorizer in tests_e2e/test_rbac_differential.py;
here each rule of the model has its own example, and properties hold it to its contract."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, SMALL_PROPERTY, mangled

from kubeproof.rbac_effective import (
    Identity,
    Policy,
    Request,
    Rule,
    Subject,
    read_binding,
    service_account_user,
    split_service_account_user,
)
from kubeproof.results import NotVerified

RBAC = "rbac.authorization.k8s.io"
ALICE = Subject("User", "alice")


def rule(verbs=("get",), groups=("",), resources=("pods",), names=(), urls=()) -> dict:
    if urls:
        return {"verbs": list(verbs), "nonResourceURLs": list(urls)}
    out = {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}
    if names:
        out["resourceNames"] = list(names)
    return out


def clusterrole(name, *rules, labels=None, selectors=None) -> dict:
    role = {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}
    if labels is not None:
        role["metadata"]["labels"] = labels
    if selectors is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return role


def role(namespace, name, *rules) -> dict:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace}, "rules": list(rules)}


def user(name):
    return {"kind": "User", "name": name, "apiGroup": RBAC}


def group(name):
    return {"kind": "Group", "name": name, "apiGroup": RBAC}


def account(name, namespace=None):
    out = {"kind": "ServiceAccount", "name": name}
    if namespace is not None:
        out["namespace"] = namespace
    return out


def crb(name, role_name, *subjects, role_kind="ClusterRole", labels=None) -> dict:
    binding = {"kind": "ClusterRoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name}, "subjects": list(subjects)}
    if labels:
        binding["metadata"]["labels"] = labels
    return binding


def rb(namespace, name, role_kind, role_name, *subjects) -> dict:
    return {"kind": "RoleBinding", "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name}, "subjects": list(subjects)}


def policy(clusterroles=(), roles=(), clusterrolebindings=(), rolebindings=(), serviceaccounts=()) -> Policy:
    return Policy(roles=list(roles), clusterroles=list(clusterroles), rolebindings=list(rolebindings),
                  clusterrolebindings=list(clusterrolebindings), serviceaccounts=list(serviceaccounts))


def granting(*rules, subject=None) -> Policy:
    """alice (or `subject`) holds `rules` cluster-wide."""
    return policy([clusterrole("granted", *rules)], clusterrolebindings=[crb("grant", "granted", subject or user("alice"))])


# -- rule matching (upstream RuleAllows) -----------------------------------------------------------
@pytest.mark.parametrize("rules, request_, allowed", [
    ([rule()], Request("get", "pods"), True),
    ([rule()], Request("list", "pods"), False),
    ([rule(verbs=["*"])], Request("escalate", "pods"), True),
    ([rule(verbs=["GET"])], Request("get", "pods"), False),  # case-sensitive
    ([rule()], Request("get", "pods", "apps"), False),
    ([rule(groups=["*"])], Request("get", "pods", "apps"), True),
    ([rule(resources=["*"])], Request("get", "secrets"), True),
    ([rule(resources=["*"])], Request("get", "pods", subresource="exec"), True),  # * covers subresources
    ([rule()], Request("get", "pods", subresource="exec"), False),  # a resource does not cover its subresources
    ([rule(resources=["pods/exec"])], Request("get", "pods"), False),
    ([rule(resources=["pods/exec"])], Request("get", "pods", subresource="exec"), True),
    ([rule(groups=["apps"], resources=["*/scale"])], Request("get", "deployments", "apps", subresource="scale"), True),
    ([rule(groups=["apps"], resources=["*/scale"])], Request("get", "deployments", "apps"), False),
    ([rule(resources=["pods/*"])], Request("get", "pods", subresource="log"), False),  # not a pattern
    ([rule(resources=["pods/*"])], Request("get", "pods", subresource="*"), True),
    ([rule(resources=["*/*"])], Request("get", "pods", subresource="log"), False),
    ([rule(resources=["*/*"])], Request("get", "pods", subresource="*"), True),
    ([rule(names=["x"])], Request("get", "pods", name="x"), True),
    ([rule(names=["x"])], Request("get", "pods", name="y"), False),
    ([rule(names=["x"])], Request("get", "pods"), False),  # a named rule never grants "any name"
    ([rule(urls=["/healthz"])], Request("get", path="/healthz"), True),
    ([rule(urls=["/healthz"])], Request("get", path="/healthz/etcd"), False),
    ([rule(urls=["/logs/*"])], Request("get", path="/logs/app"), True),
    ([rule(urls=["/logs/*"])], Request("get", path="/logs"), False),
    ([rule(urls=["/api**"])], Request("get", path="/apis"), True),  # every trailing * is trimmed
    ([rule(urls=["*"])], Request("get", path="/anything"), True),
    ([rule(urls=["*"])], Request("post", path="/anything"), False),
    ([rule(resources=["*"], groups=["*"], verbs=["*"])], Request("get", path="/healthz"), False),
    ([rule(urls=["*"])], Request("get", "pods"), False),
], ids=lambda v: repr(v)[:70])
def test_rule_matching(rules, request_, allowed):
    assert granting(*rules).allows(ALICE, request_) is allowed


# -- where a binding applies -----------------------------------------------------------------------
def test_a_clusterrolebinding_applies_everywhere():
    engine = granting(rule(resources=["secrets"]))
    assert engine.can(ALICE, "get", "secrets")
    assert engine.can(ALICE, "get", "secrets", namespace="team-a")


def test_a_rolebinding_confines_a_clusterrole_to_its_namespace():
    engine = policy([clusterrole("reader", rule(resources=["secrets", "nodes"]), rule(urls=["/metrics"]))],
                    rolebindings=[rb("team-a", "read", "ClusterRole", "reader", user("alice"))])
    assert engine.can(ALICE, "get", "secrets", namespace="team-a")
    assert not engine.can(ALICE, "get", "secrets", namespace="team-b")
    assert not engine.can(ALICE, "get", "secrets")  # "in every namespace"
    assert not engine.can(ALICE, "get", "nodes")  # a cluster-scoped resource is asked cluster-wide
    assert not engine.can(ALICE, "get", path="/metrics")  # non-resource URLs never through a RoleBinding


def test_a_rolebinding_finds_its_role_in_its_own_namespace_only():
    engine = policy(roles=[role("team-a", "reader", rule())],
                    rolebindings=[rb("team-a", "a", "Role", "reader", user("alice")),
                                  rb("team-b", "b", "Role", "reader", user("alice"))])
    assert engine.can(ALICE, "get", "pods", namespace="team-a")
    assert not engine.can(ALICE, "get", "pods", namespace="team-b")
    assert any("Role/team-b/reader, which does not exist" in n for n in engine.notes)


@pytest.mark.parametrize("dangling, note", [
    (crb("dangling", "gone", user("alice")), "ClusterRole/gone, which does not exist"),
    (crb("odd", "reader", user("alice"), role_kind="Policy"), "not a role kind"),
    (crb("role-in-crb", "reader", user("alice"), role_kind="Role"), "has no namespace"),
])
def test_a_binding_to_a_missing_role_grants_nothing_and_is_noted(dangling, note):
    engine = policy([clusterrole("reader", rule())], clusterrolebindings=[dangling])
    assert not engine.can(ALICE, "get", "pods", namespace="x")
    assert any(note in n for n in engine.notes), engine.notes
    view = engine.binding(dangling)
    assert engine.binding_allows(view, Request("get", "pods", namespace="x")) is None


# -- subjects and groups ---------------------------------------------------------------------------
def test_every_authenticated_user_is_in_system_authenticated():
    engine = granting(rule(resources=["secrets"]), subject=group("system:authenticated"))
    assert engine.can(ALICE, "get", "secrets")
    assert engine.can(Subject("ServiceAccount", "ci", "build"), "get", "secrets")
    assert engine.can(Subject("Group", "devs"), "get", "secrets")
    assert not engine.can(Subject("User", "system:anonymous"), "get", "secrets")
    assert not engine.can(Subject("Group", "system:unauthenticated"), "get", "secrets")


def test_service_accounts_are_users_in_their_groups():
    sa = Subject("ServiceAccount", "ci", "build")
    assert sa.identity() == Identity("system:serviceaccount:build:ci",
                                     ("system:serviceaccounts", "system:serviceaccounts:build", "system:authenticated"))
    for subject in (group("system:serviceaccounts"), group("system:serviceaccounts:build"),
                    user("system:serviceaccount:build:ci"), account("ci", "build")):
        assert granting(rule(), subject=subject).can(sa, "get", "pods"), subject
    assert not granting(rule(), subject=group("system:serviceaccounts:other")).can(sa, "get", "pods")
    # A user named like the account is the account, as far as RBAC is concerned.
    assert granting(rule(), subject=account("ci", "build")).can(Subject("User", "system:serviceaccount:build:ci"),
                                                               "get", "pods")


def test_a_rolebinding_service_account_without_namespace_means_the_binding_namespace():
    engine = policy([clusterrole("reader", rule())], rolebindings=[rb("build", "b", "ClusterRole", "reader", account("ci"))])
    assert engine.can(Subject("ServiceAccount", "ci", "build"), "get", "pods", namespace="build")
    assert not engine.can(Subject("ServiceAccount", "ci", "other"), "get", "pods", namespace="build")


def test_a_clusterrolebinding_service_account_without_namespace_matches_nobody():
    binding = crb("b", "reader", account("ci"))
    view = read_binding(binding)
    assert view.subjects == () and "matches nobody" in view.matches_nobody[0]
    engine = policy([clusterrole("reader", rule())], clusterrolebindings=[binding])
    assert not engine.can(Subject("ServiceAccount", "ci", "default"), "get", "pods", namespace="default")


def test_unknown_subject_kinds_match_nobody():
    view = read_binding(crb("b", "reader", {"kind": "Robot", "name": "r2"}, user("alice")))
    assert view.subjects == (ALICE,) and "Robot" in view.matches_nobody[0]


def test_system_masters_may_do_anything_whatever_rbac_says():
    engine = policy()
    masters = Subject("Group", "system:masters")
    assert engine.can(masters, "escalate", "clusterroles", RBAC)
    assert engine.can(Identity("bob", ("system:masters",)), "get", path="/anything")
    assert engine.explain(masters, Request("get", "pods")) == []  # nothing in RBAC grants it


def test_subject_references_round_trip():
    for text in ("User/alice", "Group/system:masters", "ServiceAccount/kube-system/default"):
        assert str(Subject.parse(text)) == text
    with pytest.raises(ValueError):
        Subject.parse("ServiceAccount/only-a-name")
    assert split_service_account_user(service_account_user("ns", "a")) == ("ns", "a")
    assert split_service_account_user("system:serviceaccount:too:many:parts") is None


def test_review_spec_carries_user_groups_and_attributes():
    spec = Subject("ServiceAccount", "ci", "build").identity().review_spec(
        Request("create", "serviceaccounts", namespace="build", subresource="token", name="x"))
    assert spec == {"user": "system:serviceaccount:build:ci",
                    "groups": ["system:serviceaccounts", "system:serviceaccounts:build", "system:authenticated"],
                    "resourceAttributes": {"verb": "create", "group": "", "resource": "serviceaccounts",
                                           "namespace": "build", "subresource": "token", "name": "x"}}
    spec = Subject("Group", "devs").identity().review_spec(Request("get", path="/healthz"))
    assert spec == {"groups": ["devs", "system:authenticated"], "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}


# -- who_can ---------------------------------------------------------------------------------------
def test_who_can_lists_subjects_from_bindings_and_service_accounts():
    engine = policy([clusterrole("reader", rule(resources=["secrets"]))],
                    clusterrolebindings=[crb("a", "reader", user("alice"), group("system:serviceaccounts:build"))],
                    rolebindings=[rb("team", "b", "ClusterRole", "reader", user("bob"))],
                    serviceaccounts=[{"metadata": {"name": "ci", "namespace": "build"}},
                                     {"metadata": {"name": "web", "namespace": "team"}}])
    assert [str(s) for s in engine.who_can("get", "secrets")] == [
        "Group/system:serviceaccounts:build", "ServiceAccount/build/ci", "User/alice"]
    assert [str(s) for s in engine.who_can("get", "secrets", namespace="team")] == [
        "Group/system:serviceaccounts:build", "ServiceAccount/build/ci", "User/alice", "User/bob"]


# -- aggregation -----------------------------------------------------------------------------------
def test_an_aggregated_role_grants_what_its_selectors_gather_before_the_controller_wrote_it():
    engine = policy([clusterrole("piece", rule(resources=["secrets"]), labels={"agg": "yes"}),
                     clusterrole("other", rule(resources=["nodes"]), labels={"agg": "no"}),
                     clusterrole("aggregate", selectors=[{"matchLabels": {"agg": "yes"}}])],
                    clusterrolebindings=[crb("a", "aggregate", user("alice"))])
    assert engine.can(ALICE, "get", "secrets")
    assert not engine.can(ALICE, "get", "nodes")
    assert "aggregate" in engine.aggregation_lag()


def test_an_aggregated_role_that_caught_up_is_not_lagging_and_stored_rules_count():
    engine = policy([clusterrole("piece", rule(resources=["secrets"]), labels={"agg": "yes"}),
                     clusterrole("aggregate", rule(resources=["secrets"]), selectors=[{"matchLabels": {"agg": "yes"}}]),
                     clusterrole("stale", rule(resources=["nodes"]), selectors=[{"matchLabels": {"agg": "none"}}])],
                    clusterrolebindings=[crb("a", "aggregate", user("alice")), crb("s", "stale", user("bob"))])
    assert engine.aggregation_lag() == {}  # "stale" gathers nothing: the controller leaves it alone
    assert engine.can(Subject("User", "bob"), "get", "nodes")


def test_nested_aggregation_is_followed_and_self_selection_ignored():
    engine = policy([clusterrole("leaf", rule(resources=["secrets"]), labels={"tier": "leaf"}),
                     clusterrole("middle", labels={"tier": "middle"}, selectors=[{"matchLabels": {"tier": "leaf"}}]),
                     clusterrole("top", labels={"tier": "top"},
                                 selectors=[{"matchExpressions": [{"key": "tier", "operator": "In",
                                                                   "values": ["middle", "top"]}]}])],
                    clusterrolebindings=[crb("a", "top", user("alice"))])
    assert engine.can(ALICE, "get", "secrets")


@pytest.mark.parametrize("expression, selected", [
    ({"key": "agg", "operator": "In", "values": ["yes"]}, {"yes"}),
    ({"key": "agg", "operator": "NotIn", "values": ["yes"]}, {"no", "unlabelled"}),
    ({"key": "agg", "operator": "Exists"}, {"yes", "no"}),
    ({"key": "agg", "operator": "DoesNotExist"}, {"unlabelled"}),
])
def test_selector_operators(expression, selected):
    roles = [clusterrole("yes", rule(resources=["yes"]), labels={"agg": "yes"}),
             clusterrole("no", rule(resources=["no"]), labels={"agg": "no"}),
             clusterrole("unlabelled", rule(resources=["unlabelled"])),
             clusterrole("aggregate", labels={"agg": "self"}, selectors=[{"matchExpressions": [expression]}])]
    engine = policy(roles, clusterrolebindings=[crb("a", "aggregate", user("alice"))])
    assert {r for r in ("yes", "no", "unlabelled") if engine.can(ALICE, "get", r)} == selected


def test_an_empty_selector_selects_every_other_clusterrole():
    engine = policy([clusterrole("admin", rule(verbs=["*"], groups=["*"], resources=["*"])),
                     clusterrole("everything", selectors=[{}])],
                    clusterrolebindings=[crb("a", "everything", user("alice"))])
    assert engine.can(ALICE, "delete", "nodes")


# -- fail closed -----------------------------------------------------------------------------------
def test_an_unreadable_rule_makes_a_no_not_verified_but_a_yes_stands():
    engine = granting(rule(resources=["pods"]), {"verbs": "get", "resources": ["secrets"], "apiGroups": [""]})
    assert engine.can(ALICE, "get", "pods")
    with pytest.raises(NotVerified):
        engine.can(ALICE, "get", "secrets")


def test_unreadable_subjects_make_a_no_not_verified():
    engine = policy([clusterrole("reader", rule())], clusterrolebindings=[crb("a", "reader", {"kind": 3})])
    with pytest.raises(NotVerified):
        engine.can(ALICE, "get", "pods")


def test_a_role_without_readable_name_may_be_the_missing_one():
    engine = policy([{"metadata": {"name": None}, "rules": [rule()]}],
                    clusterrolebindings=[crb("a", "reader", user("alice"))])
    with pytest.raises(NotVerified):
        engine.can(ALICE, "get", "pods")


def test_a_binding_without_name_makes_every_no_not_verified():
    engine = policy([clusterrole("reader", rule())],
                    clusterrolebindings=[{"roleRef": {"kind": "ClusterRole", "name": "reader"}, "subjects": [user("alice")]}])
    with pytest.raises(NotVerified):
        engine.can(Subject("User", "bob"), "get", "pods")


def test_unreadable_labels_leave_aggregation_unjudged():
    engine = policy([clusterrole("piece", rule(resources=["secrets"]), labels=["agg"]),
                     clusterrole("aggregate", selectors=[{"matchLabels": {"agg": "yes"}}])],
                    clusterrolebindings=[crb("a", "aggregate", user("alice"))])
    with pytest.raises(NotVerified):
        engine.can(ALICE, "get", "secrets")
    assert "aggregate" in engine.aggregation_lag()


@pytest.mark.parametrize("field", ["roles", "clusterroles", "rolebindings", "clusterrolebindings", "serviceaccounts"])
def test_a_list_that_is_not_a_list_is_not_verified(field):
    with pytest.raises(NotVerified):
        Policy(**{field: {"items": []}})


# -- properties ------------------------------------------------------------------------------------
VERBS = st.sampled_from(["get", "list", "create", "delete", "bind", "impersonate", "*"])
GROUPS = st.sampled_from(["", "apps", RBAC, "*"])
RESOURCES = st.sampled_from(["pods", "secrets", "pods/exec", "*/scale", "*", "pods/*", "nodes"])
NAMESPACES = st.sampled_from(["", "team-a", "team-b"])
SUBJECTS = st.sampled_from([ALICE, Subject("User", "bob"), Subject("Group", "devs"),
                            Subject("Group", "system:authenticated"), Subject("ServiceAccount", "ci", "team-a"),
                            Subject("ServiceAccount", "default", "team-b"), Subject("User", "system:anonymous")])


@st.composite
def rules(draw):
    if draw(st.integers(0, 5)) == 0:
        return rule(verbs=draw(st.lists(VERBS, min_size=1, max_size=2)),
                    urls=draw(st.lists(st.sampled_from(["/healthz", "/logs/*", "*"]), min_size=1, max_size=2)))
    return rule(verbs=draw(st.lists(VERBS, min_size=1, max_size=3)), groups=draw(st.lists(GROUPS, min_size=1, max_size=2)),
                resources=draw(st.lists(RESOURCES, min_size=1, max_size=3)),
                names=draw(st.lists(st.sampled_from(["x", "y"]), max_size=2)))


def _subject_entry(subject: Subject) -> dict:
    if subject.kind == "ServiceAccount":
        return account(subject.name, subject.namespace)
    return {"kind": subject.kind, "name": subject.name, "apiGroup": RBAC}


@st.composite
def policies(draw):
    names = [f"c{i}" for i in range(draw(st.integers(1, 3)))]
    clusterroles = []
    for name in names:
        labels = {"agg": draw(st.sampled_from(["a", "b"]))} if draw(st.booleans()) else None
        selectors = [{"matchLabels": {"agg": draw(st.sampled_from(["a", "b"]))}}] if draw(st.integers(0, 3)) == 0 else None
        clusterroles.append(clusterrole(name, *draw(st.lists(rules(), max_size=3)), labels=labels, selectors=selectors))
    roles_ = [role(draw(st.sampled_from(["team-a", "team-b"])), f"r{i}", *draw(st.lists(rules(), min_size=1, max_size=2)))
              for i in range(draw(st.integers(0, 2)))]
    crbs, rbs = [], []
    for index in range(draw(st.integers(0, 4))):
        subjects = [_subject_entry(s) for s in draw(st.lists(SUBJECTS, min_size=1, max_size=3))]
        namespace = draw(st.sampled_from([None, "team-a", "team-b"]))
        if namespace:
            kind = draw(st.sampled_from(["Role", "ClusterRole"]))
            target = draw(st.sampled_from([r["metadata"]["name"] for r in roles_] or ["r0"])) if kind == "Role" \
                else draw(st.sampled_from(names + ["missing"]))
            rbs.append(rb(namespace, f"b{index}", kind, target, *subjects))
        else:
            crbs.append(crb(f"b{index}", draw(st.sampled_from(names + ["missing"])), *subjects))
    return {"clusterroles": clusterroles, "roles": roles_, "clusterrolebindings": crbs, "rolebindings": rbs}


@st.composite
def requests(draw):
    if draw(st.integers(0, 5)) == 0:
        return Request(draw(VERBS), path=draw(st.sampled_from(["/healthz", "/logs/a", "/x"])))
    resource, _, subresource = draw(RESOURCES.filter(lambda r: not r.startswith("*"))).partition("/")
    return Request(draw(VERBS), resource, draw(GROUPS), draw(NAMESPACES), subresource,
                   draw(st.sampled_from(["", "x", "z"])))


@PROPERTY
@given(policies(), SUBJECTS, requests())
def test_who_can_is_can_over_the_known_subjects(objects, subject, request_):
    engine = policy(**objects)
    holders = set(engine.who_can(request_.verb, request_.resource, request_.group, request_.namespace,
                                 request_.subresource, request_.name)) if request_.is_resource_request else None
    for candidate in engine.subjects():
        allowed = engine.allows(candidate, request_)
        if holders is not None:
            assert (candidate in holders) == allowed
        if allowed:
            assert engine.explain(candidate, request_), "an allowed request names its grant"


@PROPERTY
@given(policies(), policies(), SUBJECTS, requests())
def test_more_bindings_never_take_a_permission_away(objects, more, subject, request_):
    before = policy(**objects).allows(subject, request_)
    # Names of the added objects are made distinct so nothing is replaced.
    for key in more:
        for item in more[key]:
            item["metadata"]["name"] = "more-" + item["metadata"]["name"]
    combined = {key: objects[key] + more[key] for key in objects}
    if before:
        assert policy(**combined).allows(subject, request_)


@PROPERTY
@given(policies(), SUBJECTS, requests())
def test_rolebindings_of_one_namespace_grant_nothing_elsewhere(objects, subject, request_):
    only_team_a = dict(objects, clusterrolebindings=[],
                       rolebindings=[b for b in objects["rolebindings"] if b["metadata"]["namespace"] == "team-a"])
    if policy(**only_team_a).allows(subject, request_):
        assert request_.is_resource_request and request_.namespace == "team-a"


@PROPERTY
@given(st.lists(rules(), min_size=1, max_size=3), requests())
def test_aggregation_grants_at_least_what_the_parts_grant(parts, request_):
    pieces = [clusterrole(f"p{i}", r, labels={"agg": "yes"}) for i, r in enumerate(parts)]
    aggregate = clusterrole("aggregate", selectors=[{"matchLabels": {"agg": "yes"}}])
    engine = policy(pieces + [aggregate], clusterrolebindings=[crb("a", "aggregate", user("alice"))])
    direct = policy(pieces, clusterrolebindings=[crb(f"d{i}", f"p{i}", user("alice")) for i in range(len(parts))])
    assert engine.allows(ALICE, request_) == direct.allows(ALICE, request_)


@PROPERTY
@given(requests(), VERBS, GROUPS)
def test_a_rule_of_wildcards_allows_every_resource_request(request_, verb, group):
    rule_ = Rule(("*",), ("*",), ("*",))
    assert rule_.allows(request_) == request_.is_resource_request


@PROPERTY
@given(requests(), st.lists(st.sampled_from(["x", "y"]), min_size=1, max_size=2))
def test_resource_names_only_narrow_a_rule(request_, names):
    resource = request_.resource + (f"/{request_.subresource}" if request_.subresource else "")
    wide = Rule((request_.verb,), (request_.group,), (resource,))
    narrow = Rule((request_.verb,), (request_.group,), (resource,), tuple(names))
    if narrow.allows(request_):
        assert wide.allows(request_)
    if request_.is_resource_request:
        assert wide.allows(request_)
        assert narrow.allows(request_) == (request_.name in names)


BASE = {"clusterroles": [clusterrole("reader", rule(resources=["secrets"]), labels={"agg": "a"}),
                         clusterrole("aggregate", selectors=[{"matchLabels": {"agg": "a"}}])],
        "roles": [role("team-a", "local", rule())],
        "clusterrolebindings": [crb("a", "aggregate", user("alice"), account("ci", "build"))],
        "rolebindings": [rb("team-a", "b", "Role", "local", group("devs"), account("ci"))],
        "serviceaccounts": [{"metadata": {"name": "ci", "namespace": "build"}}]}


@SMALL_PROPERTY
@given(mangled(BASE, root=False), SUBJECTS, requests())
def test_malformed_objects_give_an_answer_or_not_verified_never_a_crash(objects, subject, request_):
    try:
        engine = Policy(**{key: value for key, value in objects.items()
                           if key in ("roles", "clusterroles", "rolebindings", "clusterrolebindings", "serviceaccounts")})
        engine.aggregation_lag()
        assert isinstance(engine.allows(subject, request_), bool)
        if request_.is_resource_request:
            engine.who_can(request_.verb, request_.resource, request_.group, request_.namespace)
    except NotVerified as error:
        assert error.reason


@SMALL_PROPERTY
@given(mangled(BASE["clusterrolebindings"][0], root=True), requests())
def test_malformed_bindings_are_judged_or_not_verified(binding, request_):
    engine = policy(BASE["clusterroles"])
    try:
        grant = engine.binding_allows(binding, request_)
    except NotVerified as error:
        assert error.reason
    else:
        assert grant is None or grant.rule.allows(request_)


@PROPERTY
@given(JSON)
def test_arbitrary_rules_parse_or_are_kept_as_unreadable(raw):
    engine = policy([clusterrole("any", raw)], clusterrolebindings=[crb("a", "any", user("alice"))])
    try:
        engine.can(ALICE, "get", "pods")
    except NotVerified as error:
        assert error.reason


def test_policy_does_not_change_its_input():
    objects = copy.deepcopy(BASE)
    policy(**objects).can(ALICE, "get", "secrets")
    assert objects == BASE
