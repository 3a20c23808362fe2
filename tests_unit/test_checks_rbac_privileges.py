"""Unit tests for kubeproof.checks.rbac_privileges (CIS 5.1.2, 5.1.4, 5.1.5, 5.1.7 to 5.1.13)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import NAMES, PROPERTY, SMALL_PROPERTY, baseline, mangled
from test_rbac_effective import account, clusterrole, crb, group, policy, rb, role, rule, user

from kubeproof.checks import rbac_privileges as privileges
from kubeproof.rbac_effective import Request, Subject
from kubeproof.results import Finding, NotVerified, ObjectRef

DEFAULT = baseline()
BOOTSTRAP = {"kubernetes.io/bootstrapping": "rbac-defaults"}
EVERYTHING = rule(verbs=["*"], groups=["*"], resources=["*"])
REQUEST_CONTROLS = ("5.1.2", "5.1.4", "5.1.8", "5.1.9", "5.1.10", "5.1.11", "5.1.12", "5.1.13")

# One role per control granting exactly that permission, and the request the finding must name.
GRANTS = {
    "5.1.2": (rule(verbs=["list"], resources=["secrets"]), "list secrets"),
    "5.1.4": (rule(verbs=["create"], groups=["apps"], resources=["deployments"]), "create deployments.apps"),
    "5.1.8": (rule(verbs=["impersonate"], resources=["users"]), "impersonate users"),
    "5.1.9": (rule(verbs=["create"], resources=["persistentvolumes"]), "create persistentvolumes"),
    "5.1.10": (rule(verbs=["get"], resources=["nodes/proxy"]), "get nodes/proxy"),
    "5.1.11": (rule(verbs=["approve"], groups=["certificates.k8s.io"], resources=["signers"],
                    names=["kubernetes.io/kube-apiserver-client"]), "approve signers.certificates.k8s.io named"),
    "5.1.12": (rule(verbs=["patch"], groups=["admissionregistration.k8s.io"],
                    resources=["mutatingwebhookconfigurations"]), "patch mutatingwebhookconfigurations"),
    "5.1.13": (rule(verbs=["create"], resources=["serviceaccounts/token"]), "create serviceaccounts/token"),
}


def engine_for(binding, *roles):
    clusterroles = [r for r in roles if r["kind"] == "ClusterRole"]
    namespaced = [r for r in roles if r["kind"] == "Role"]
    if binding["kind"] == "ClusterRoleBinding":
        return policy(clusterroles, namespaced, clusterrolebindings=[binding])
    return policy(clusterroles, namespaced, rolebindings=[binding])


def allowed(assessment) -> dict:
    return {key: {"allowed": True, "denied": False, "reason": "RBAC: allowed"} for key, _ in assessment.reviews()}


def judge(control, binding, *roles, base=DEFAULT) -> list[Finding]:
    assessment = privileges.assess(control, binding, engine_for(binding, *roles), base)
    return privileges.confirmed_findings(assessment, allowed(assessment))


@pytest.mark.parametrize("control", REQUEST_CONTROLS)
def test_a_binding_granting_the_permission_is_a_finding_naming_subject_and_request(control):
    grant, described = GRANTS[control]
    binding = crb("grant", "granted", user("alice"), group("ops"))
    findings = judge(control, binding, clusterrole("granted", grant))
    assert [(f.controls, f.object, f.path) for f in findings] == [
        ((control,), ObjectRef("ClusterRoleBinding", "grant"), "subjects[0]"),
        ((control,), ObjectRef("ClusterRoleBinding", "grant"), "subjects[1]")]
    assert findings[0].observed.startswith("User/alice may ") and described in findings[0].observed
    assert findings[0].remediation and "outside Kubernetes' own identities" in findings[0].expected


@pytest.mark.parametrize("control", REQUEST_CONTROLS)
def test_other_controls_permissions_are_not_this_controls_finding(control):
    for other, (grant, _) in GRANTS.items():
        if other == control:
            continue
        binding = crb("grant", "granted", user("alice"))
        assert judge(control, binding, clusterrole("granted", grant)) == [], other


@pytest.mark.parametrize("control", REQUEST_CONTROLS)
def test_a_wildcard_role_holds_every_permission(control):
    assert len(judge(control, crb("grant", "all", user("alice")), clusterrole("all", EVERYTHING))) == 1


def test_subresources_are_told_apart():
    exec_only = clusterrole("exec", rule(verbs=["create"], resources=["pods/exec"]))
    assert judge("5.1.4", rb("team", "debug", "ClusterRole", "exec", user("alice")), exec_only) == []
    logs = clusterrole("logs", rule(verbs=["get"], resources=["pods/log", "nodes"]))
    assert judge("5.1.10", crb("logs", "logs", user("alice")), logs) == []
    scale = clusterrole("scale", rule(verbs=["*"], groups=["*"], resources=["*/scale", "*/proxy"]))
    assert len(judge("5.1.10", crb("s", "scale", user("alice")), scale)) == 1  # */proxy covers nodes/proxy


def test_a_rolebinding_grants_secrets_in_its_namespace_only():
    binding = rb("team-a", "readers", "Role", "reader", account("app"))
    [finding] = judge("5.1.2", binding, role("team-a", "reader", GRANTS["5.1.2"][0]))
    assert finding.object == ObjectRef("RoleBinding", "readers", "team-a")
    assert finding.observed == "ServiceAccount/team-a/app may list secrets in namespace team-a"


def test_cluster_scoped_permissions_through_a_rolebinding_are_ineffective():
    # Creating a persistent volume is a cluster-wide request: a RoleBinding never takes part in it.
    binding = rb("team-a", "pv", "ClusterRole", "pv-maker", user("alice"))
    assert judge("5.1.9", binding, clusterrole("pv-maker", GRANTS["5.1.9"][0])) == []


def test_access_to_one_named_secret_is_still_access_to_secrets():
    named = clusterrole("named", rule(verbs=["get"], resources=["secrets"], names=["db-password"]))
    [finding] = judge("5.1.2", crb("named", "named", user("alice")), named)
    assert "get secrets named 'db-password' cluster-wide" in finding.observed


def test_a_compliant_binding_passes_with_evidence():
    binding = crb("view", "viewer", user("alice"))
    assessment = privileges.assess("5.1.2", binding, engine_for(binding, clusterrole("viewer", rule(verbs=["get"]))), DEFAULT)
    assert assessment.held == [] and assessment.reviews() == [] and assessment.exempt_reason() is None
    assert assessment.facts() == {"binding": "ClusterRoleBinding/view", "role": "ClusterRole/viewer", "grants": [],
                                  "subjects_holding": {}}


def test_a_binding_to_a_missing_role_passes_and_says_so():
    binding = crb("dangling", "gone", user("alice"))
    assessment = privileges.assess("5.1.2", binding, engine_for(binding), DEFAULT)
    assert assessment.held == []
    assert "does not exist" in assessment.facts()["notes"][0]


def test_an_aggregated_role_is_judged_on_what_it_gathers():
    piece = clusterrole("piece", GRANTS["5.1.2"][0], labels={"team/aggregate": "true"})
    aggregate = clusterrole("aggregate", selectors=[{"matchLabels": {"team/aggregate": "true"}}])
    binding = crb("agg", "aggregate", user("alice"))
    assessment = privileges.assess("5.1.2", binding, engine_for(binding, piece, aggregate), DEFAULT)
    assert [h.subject for h in assessment.held] == [Subject("User", "alice")]
    assert any("judged on the union" in n for n in assessment.notes)


# -- exemptions ------------------------------------------------------------------------------------
def test_kubernetes_bootstrap_bindings_for_its_own_identities_are_exempt():
    binding = crb("system:controller:namespace-controller", "system:controller:namespace-controller",
                  account("namespace-controller", "kube-system"), user("system:kube-controller-manager"),
                  labels=BOOTSTRAP)
    assessment = privileges.assess("5.1.2", binding, engine_for(binding, clusterrole(
        "system:controller:namespace-controller", EVERYTHING, labels=BOOTSTRAP)), DEFAULT)
    assert assessment.held == []
    assert set(assessment.exempt) == {"ServiceAccount/kube-system/namespace-controller",
                                      "User/system:kube-controller-manager"}
    assert "Kubernetes' own bootstrap binding" in assessment.exempt_reason()


@pytest.mark.parametrize("name, labels, subject", [
    ("my-controller", BOOTSTRAP, account("namespace-controller", "kube-system")),  # label copied, other name
    ("system:controller:x", None, account("namespace-controller", "kube-system")),  # name without the label
    ("system:controller:x", {"kubernetes.io/bootstrapping": "mine"}, account("x", "kube-system")),
    ("system:basic-user", BOOTSTRAP, group("system:authenticated")),  # a tampered default for everyone
    ("system:basic-user", BOOTSTRAP, group("system:serviceaccounts:team")),
    ("system:public-info-viewer", BOOTSTRAP, user("system:anonymous")),
    ("system:controller:x", BOOTSTRAP, user("alice")),  # a person added to a bootstrap binding
    ("system:controller:x", BOOTSTRAP, account("robot", "team")),
])
def test_what_only_looks_like_kubernetes_own_is_not_exempt(name, labels, subject):
    binding = crb(name, "everything", subject, labels=labels)
    assert len(judge("5.1.2", binding, clusterrole("everything", EVERYTHING))) == 1


def test_the_default_cluster_admin_binding_of_system_masters_is_exempt_everywhere():
    binding = crb("cluster-admin", "cluster-admin", group("system:masters"), labels=BOOTSTRAP)
    admin = clusterrole("cluster-admin", EVERYTHING, labels=BOOTSTRAP)
    for control in REQUEST_CONTROLS + ("5.1.7",):
        assessment = privileges.assess(control, binding, engine_for(binding, admin), DEFAULT)
        assert assessment.held == [] and "default cluster-admin binding" in assessment.exempt_reason(), control


def test_a_person_added_to_the_default_cluster_admin_binding_is_not_exempt():
    binding = crb("cluster-admin", "cluster-admin", group("system:masters"), user("alice"), labels=BOOTSTRAP)
    [finding] = judge("5.1.2", binding, clusterrole("cluster-admin", EVERYTHING, labels=BOOTSTRAP))
    assert finding.path == "subjects[1]" and finding.observed.startswith("User/alice")


def test_baseline_cluster_admins_are_exempt_except_from_the_system_masters_control():
    allowing = baseline(cluster_admin_subjects=("Group/system:masters", "User/ops-*"))
    admin = clusterrole("cluster-admin", EVERYTHING, labels=BOOTSTRAP)
    binding = crb("ops", "cluster-admin", user("ops-alice"), user("bob"), group("system:masters"))
    findings = judge("5.1.2", binding, admin, base=allowing)
    assert [f.observed.split(" ")[0] for f in findings] == ["User/bob"]
    [masters] = judge("5.1.7", binding, admin, base=allowing)
    assert masters.path == "subjects[2]" and masters.controls == ("5.1.7",)
    # Another role of the same powers is not cluster-admin: the baseline entry does not reach it.
    assert len(judge("5.1.2", crb("x", "root", user("ops-alice")), clusterrole("root", EVERYTHING), base=allowing)) == 1


# -- 5.1.5 and 5.1.7 -------------------------------------------------------------------------------
def test_a_binding_to_a_default_service_account_is_a_finding_with_what_it_grants():
    binding = rb("team", "default-reader", "Role", "cm", account("default"), user("alice"))
    reader = role("team", "cm", rule(verbs=["get", "list"], resources=["configmaps"]), rule(urls=["/x"]))
    [finding] = judge("5.1.5", binding, reader)
    assert finding.path == "subjects[0]" and finding.controls == ("5.1.5",)
    assert finding.observed == "ServiceAccount/team/default may get configmaps in namespace team"


def test_a_default_service_account_named_as_a_user_counts_too():
    binding = crb("b", "viewer", user("system:serviceaccount:team:default"))
    assert len(judge("5.1.5", binding, clusterrole("viewer", rule()))) == 1


def test_a_default_service_account_bound_to_nothing_effective_passes():
    binding = rb("team", "b", "ClusterRole", "urls-only", account("default"))
    assert judge("5.1.5", binding, clusterrole("urls-only", rule(urls=["/metrics"]))) == []
    assert judge("5.1.5", rb("team", "c", "Role", "missing", account("default"))) == []
    assert judge("5.1.5", crb("d", "viewer", account("robot", "team")), clusterrole("viewer", rule())) == []


def test_a_binding_naming_system_masters_is_a_5_1_7_finding_whatever_its_role():
    binding = rb("team", "masters-view", "ClusterRole", "nothing", group("system:masters"), user("alice"))
    assessment = privileges.assess("5.1.7", binding, engine_for(binding), DEFAULT)
    [(key, spec)] = assessment.reviews()
    assert spec["groups"] == ["system:masters", "system:authenticated"]
    assert spec["resourceAttributes"] == {"verb": "*", "group": "*", "resource": "*", "namespace": "team"}
    [finding] = privileges.confirmed_findings(assessment, allowed(assessment))
    assert finding.path == "subjects[0]"
    assert judge("5.1.7", crb("x", "nothing", group("devs"))) == []


# -- confirming with the authorizer ----------------------------------------------------------------
def _held(control="5.1.2"):
    binding = crb("grant", "granted", user("alice"))
    return privileges.assess(control, binding, engine_for(binding, clusterrole("granted", EVERYTHING)), DEFAULT)


def test_every_granted_request_is_reviewed_as_the_subject():
    assessment = _held()
    specs = [spec for _, spec in assessment.reviews()]
    assert [s["resourceAttributes"]["verb"] for s in specs] == ["get", "list", "watch"]
    assert all(s["user"] == "alice" and s["groups"] == ["system:authenticated"] for s in specs)
    assert all("namespace" not in s["resourceAttributes"] for s in specs)  # cluster-wide


def test_a_denied_review_is_a_disagreement_never_a_pass():
    assessment = _held()
    outcomes = allowed(assessment)
    first = next(iter(outcomes))
    outcomes[first] = {"allowed": False, "denied": False, "evaluationError": "role not found"}
    with pytest.raises(privileges.AuthorizerDisagrees, match="engine and authorizer disagree.*role not found"):
        privileges.confirmed_findings(assessment, outcomes)


def test_a_missing_review_is_not_verified():
    assessment = _held()
    outcomes = allowed(assessment)
    outcomes.pop(next(iter(outcomes)))
    with pytest.raises(NotVerified):
        privileges.confirmed_findings(assessment, outcomes)


@pytest.mark.parametrize("status, body", [
    (403, {"message": "forbidden"}), (500, None), (0, None), (201, {"status": "yes"}), (201, {}),
    (201, {"status": {"allowed": "true"}}), (201, []),
])
def test_a_review_that_could_not_be_made_is_not_verified(status, body):
    with pytest.raises(NotVerified):
        privileges.review_outcome(status, body, "forbidden")


def test_review_outcome_keeps_the_answer_for_the_evidence():
    outcome = privileges.review_outcome(201, {"status": {"allowed": True, "reason": "RBAC: allowed by X"}})
    assert outcome == {"allowed": True, "denied": False, "reason": "RBAC: allowed by X"}
    assert privileges.review_outcome(201, {"status": {}}) == {"allowed": False, "denied": False}


def test_controls_are_the_catalogue_ids():
    assert set(privileges.CONTROLS) == {"5.1.2", "5.1.4", "5.1.5", "5.1.7", "5.1.8", "5.1.9", "5.1.10", "5.1.11",
                                        "5.1.12", "5.1.13"}
    for control in privileges.CONTROLS.values():
        assert control.expected and control.remediation and control.permission


# -- properties ------------------------------------------------------------------------------------
CONTROL = st.sampled_from(sorted(privileges.CONTROLS))
SUBJECT = st.one_of(st.builds(user, NAMES), st.builds(group, NAMES), st.builds(account, NAMES, NAMES))


@PROPERTY
@given(st.sampled_from(REQUEST_CONTROLS), NAMES.filter(lambda n: not n.startswith("system")),
       st.lists(SUBJECT, min_size=1, max_size=3), st.booleans(), st.booleans())
def test_a_wildcard_grant_to_anyone_never_passes(control, name, subjects, labelled, namespaced):
    # Whatever the name, a user's binding is never Kubernetes' own; the label does not change that.
    # A RoleBinding cannot grant what is only asked cluster-wide (persistent volumes, nodes/proxy, ...).
    namespaced = namespaced and any(scope == privileges.BINDING for _, scope in privileges.CONTROLS[control].requests)
    labels = BOOTSTRAP if labelled else None
    binding = crb(name, "all", *subjects, labels=labels) if not namespaced else \
        rb("team", name, "ClusterRole", "all", *subjects)
    findings = judge(control, binding, clusterrole("all", EVERYTHING))
    assert len(findings) == len({str(s) for s in engine_for(binding).binding(binding).subjects})
    assert findings


@PROPERTY
@given(CONTROL, st.lists(SUBJECT, min_size=1, max_size=3))
def test_reviews_cover_every_held_request_and_nothing_else(control, subjects):
    binding = crb("b", "all", *subjects, group("system:masters"))
    assessment = privileges.assess(control, binding, engine_for(binding, clusterrole("all", EVERYTHING)), DEFAULT)
    keys = [key for key, _ in assessment.reviews()]
    assert keys == [(str(h.subject), r) for h in assessment.held for r in h.requests]
    assert all(isinstance(r, Request) for _, r in keys)


GOOD_BINDING = crb("grant", "granted", user("alice"), account("ci", "build"))
GOOD_ROLE = clusterrole("granted", GRANTS["5.1.2"][0], rule(verbs=["create"], resources=["pods"]))


@SMALL_PROPERTY
@given(CONTROL, mangled(GOOD_BINDING))
def test_malformed_bindings_are_assessed_or_not_verified(control, binding):
    try:
        # As in the suite, the binding judged is one of those the policy was built from.
        assessment = privileges.assess(control, binding, policy([GOOD_ROLE], clusterrolebindings=[binding]), DEFAULT)
        privileges.confirmed_findings(assessment, allowed(assessment))
    except NotVerified as error:
        assert error.reason


@SMALL_PROPERTY
@given(CONTROL, mangled(GOOD_ROLE, root=False))
def test_malformed_roles_are_assessed_or_not_verified(control, granted):
    engine = policy([granted], clusterrolebindings=[GOOD_BINDING])
    try:
        assessment = privileges.assess(control, GOOD_BINDING, engine, DEFAULT)
        privileges.confirmed_findings(assessment, allowed(assessment))
    except NotVerified as error:
        assert error.reason


@SMALL_PROPERTY
@given(mangled(GOOD_ROLE, root=False))
def test_a_malformed_role_never_hides_a_readable_secrets_grant(granted):
    # If the secrets rule survived intact, the binding fails whatever else was damaged.
    engine = policy([granted], clusterrolebindings=[GOOD_BINDING])
    intact = isinstance(granted.get("rules"), list) and GRANTS["5.1.2"][0] in granted["rules"] and \
        granted.get("metadata") == GOOD_ROLE["metadata"] and "aggregationRule" not in granted
    if intact:
        assert len(privileges.confirmed_findings(*_assessed(engine))) == 2


def _assessed(engine):
    assessment = privileges.assess("5.1.2", GOOD_BINDING, engine, DEFAULT)
    return assessment, allowed(assessment)


# -- one result per binding, every control -----------------------------------------------------------
def judge_binding(binding, *roles, base=DEFAULT) -> tuple[privileges.BindingAssessment, list[Finding]]:
    judged = privileges.assess_binding(binding, engine_for(binding, *roles), base)
    return judged, privileges.confirmed_binding_findings(judged, {key: {"allowed": True} for key, _ in judged.reviews()})


@pytest.mark.parametrize("control", sorted(GRANTS))
def test_a_binding_fails_under_exactly_the_control_its_role_breaks(control):
    binding = crb("one", "one", user("alice"))
    judged, findings = judge_binding(binding, clusterrole("one", GRANTS[control][0]))
    assert [f.controls for f in findings] == [(control,)]
    facts = judged.facts()
    assert set(facts["controls"]) == {control} and len(facts["nothing_granted_under"]) == len(privileges.CONTROLS) - 1


def test_a_binding_breaking_several_controls_has_a_finding_for_each():
    binding = crb("all", "all", user("alice"), group("system:masters"))
    _, findings = judge_binding(binding, clusterrole("all", EVERYTHING))
    controls = sorted({c for f in findings for c in f.controls})
    assert controls == sorted(set(privileges.CONTROLS) - {"5.1.5"})
    # Asked once per question, however many controls need the answer.
    judged = privileges.assess_binding(binding, engine_for(binding, clusterrole("all", EVERYTHING)), DEFAULT)
    keys = [key for key, _ in judged.reviews()]
    assert len(keys) == len(set(keys))


def test_a_compliant_binding_passes_every_control_with_evidence():
    binding = rb("team", "viewer", "Role", "viewer", user("alice"))
    judged, findings = judge_binding(binding, role("team", "viewer", rule(verbs=["get"], resources=["configmaps"])))
    assert findings == [] and judged.exempt_reason() is None
    assert judged.facts()["controls"] == {} and len(judged.facts()["nothing_granted_under"]) == len(privileges.CONTROLS)


def test_the_default_cluster_admin_binding_is_exempt_as_a_whole():
    binding = crb("cluster-admin", "cluster-admin", group("system:masters"), labels=BOOTSTRAP)
    judged, findings = judge_binding(binding, clusterrole("cluster-admin", EVERYTHING, labels=BOOTSTRAP))
    assert findings == [] and "default cluster-admin binding" in judged.exempt_reason()


def test_a_control_that_cannot_be_judged_is_never_a_pass(monkeypatch):
    real = privileges.assess

    def blind_to_secrets(control, *args):
        if control == "5.1.2":
            raise NotVerified("the role could not be read")
        return real(control, *args)

    monkeypatch.setattr(privileges, "assess", blind_to_secrets)
    binding = crb("quiet", "quiet", user("alice"))
    with pytest.raises(NotVerified, match="CIS 5.1.2: the role could not be read"):
        judge_binding(binding, clusterrole("quiet", rule(verbs=["get"], resources=["configmaps"])))
    # A finding elsewhere still fails the binding, and the evidence says what was not judged.
    judged, findings = judge_binding(binding, clusterrole("quiet", GRANTS["5.1.9"][0]))
    assert [f.controls for f in findings] == [("5.1.9",)] and judged.facts()["not_verified"] == {"5.1.2": "the role could not be read"}
    assert judged.exempt_reason() is None


@SMALL_PROPERTY
@given(mangled(GOOD_BINDING))
def test_malformed_bindings_are_judged_or_not_verified_under_every_control(binding):
    try:
        judged = privileges.assess_binding(binding, policy([GOOD_ROLE], clusterrolebindings=[binding]), DEFAULT)
        privileges.confirmed_binding_findings(judged, {key: {"allowed": True} for key, _ in judged.reviews()})
    except NotVerified as error:
        assert error.reason
