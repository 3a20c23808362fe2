"""Unit tests for kubeproof.checks.audit_logging: the sink and rotation flags, the policy walked in
order (the first matching rule decides a request's level), and the proof read back from the log.
Neither policy text nor log content may reach a finding or the evidence beyond levels and positions."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled, never_passes, outcome

from kubeproof.checks import audit_logging as audit
from kubeproof.checks import control_plane as cp
from kubeproof.results import NotVerified

POLICY = "/etc/kubernetes/audit-policy.yaml"
FLAGS = {"audit-policy-file": POLICY, "audit-log-path": "/var/log/kubernetes/audit.log",
         "audit-log-maxage": "30", "audit-log-maxbackup": "10", "audit-log-maxsize": "100"}
ROWS = {row.id: row for row in audit.ROWS}
SECRET_LOOKING = "c3VwZXItc2VjcmV0LXRva2Vu"  # must never be shown

SENSITIVE_RULE = {"level": "Metadata", "resources": [
    {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
    {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
]}
CATCH_ALL_METADATA = {"level": "Metadata"}
CATCH_ALL_FULL = {"level": "RequestResponse"}


def policy(*rules) -> dict:
    return {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [copy.deepcopy(r) for r in rules]}


def files(document) -> dict:
    return {POLICY: document if isinstance(document, str) else yaml.safe_dump(document)}


GOOD = policy(SENSITIVE_RULE, CATCH_ALL_METADATA)


def levels(document, target):
    return [(i, level, scope) for i, level, scope in audit.levels_for(document["rules"], target)]


# -- the sink and rotation (CIS 1.2.16-1.2.19) -----------------------------------------------------
def test_configured_log_passes_every_row():
    for row in audit.ROWS:
        assert cp.findings(row, FLAGS) == [], row.id


def test_no_sink_fails_every_row():
    for row in audit.ROWS:
        [finding] = cp.findings(row, {})
        assert finding.controls == (row.id,) and finding.path == "--audit-log-path"
        assert finding.observed


def test_webhook_is_a_sink_and_rotation_does_not_apply():
    flags = {"audit-webhook-config-file": "/etc/kubernetes/audit-webhook.kubeconfig", "audit-policy-file": POLICY}
    assert cp.findings(ROWS["1.2.16"], flags) == []
    assert "webhook" in audit.rotation_not_applicable(flags)
    assert "standard output" in audit.rotation_not_applicable({**FLAGS, "audit-log-path": "-"})
    assert audit.rotation_not_applicable(FLAGS) is None
    assert audit.rotation_not_applicable({}) is None  # no sink at all is a finding, not an exemption


@pytest.mark.parametrize("control_id, flag, value, passes", [
    ("1.2.17", "audit-log-maxage", "29", False), ("1.2.17", "audit-log-maxage", "0", True),
    ("1.2.17", "audit-log-maxage", "366", True), ("1.2.18", "audit-log-maxbackup", "9", False),
    ("1.2.18", "audit-log-maxbackup", "0", True), ("1.2.19", "audit-log-maxsize", "0", False),
    ("1.2.19", "audit-log-maxsize", "99", False), ("1.2.19", "audit-log-maxsize", "200", True),
    ("1.2.17", "audit-log-maxage", None, False),  # the default differs between versions: set it
])
def test_rotation_values(control_id, flag, value, passes):
    flags = {k: v for k, v in {**FLAGS, flag: value}.items() if v is not None}
    assert (cp.findings(ROWS[control_id], flags) == []) == passes


def test_rotation_value_that_is_not_a_number_is_not_verified():
    with pytest.raises(NotVerified):
        cp.findings(ROWS["1.2.18"], {**FLAGS, "audit-log-maxbackup": "ten"})


# -- the policy (CIS 3.2.1, 3.2.2) -----------------------------------------------------------------
def test_good_policy_passes():
    assert audit.minimal_policy_findings(FLAGS, files(GOOD)) == []
    assert audit.sensitive_findings(FLAGS, files(GOOD)) == []


def test_embedded_clusters_policy_passes(tmp_path):
    from kubeproof.controlplane.embedded import EmbeddedCluster

    path = EmbeddedCluster._write_audit_policy(SimpleNamespace(workdir=tmp_path))
    flags = {**FLAGS, "audit-policy-file": str(path)}
    texts = {str(path): path.read_text()}
    assert audit.minimal_policy_findings(flags, texts) == [] and audit.sensitive_findings(flags, texts) == []


def test_metadata_rule_after_a_request_response_catch_all_does_nothing():
    document = policy(CATCH_ALL_FULL, SENSITIVE_RULE)  # first match wins: the catch-all
    found = audit.sensitive_findings(FLAGS, files(document))
    assert {f.observed for f in found} == {
        f"{t} recorded at RequestResponse for every request (with the payload)" for t in audit.SENSITIVE}
    assert all(f.path == f"{POLICY}: rules[0]" and f.controls == ("3.2.2",) for f in found)
    assert audit.minimal_policy_findings(FLAGS, files(document)) == []  # it does record everything


def test_metadata_rule_before_the_catch_all_wins():
    assert audit.sensitive_findings(FLAGS, files(policy(SENSITIVE_RULE, CATCH_ALL_FULL))) == []


def test_a_rule_for_some_requests_is_remembered_and_the_walk_goes_on():
    partial = {"level": "RequestResponse", "users": ["admin"], "resources": [{"group": "", "resources": ["secrets"]}]}
    document = policy(partial, SENSITIVE_RULE, CATCH_ALL_METADATA)
    assert levels(document, audit.Resource("", "secrets")) == [(0, "RequestResponse", "some"), (1, "Metadata", "all")]
    [finding] = audit.sensitive_findings(FLAGS, files(document))
    assert finding.observed == "secrets recorded at RequestResponse for some requests (with the payload)"


@pytest.mark.parametrize("resources, target, matches", [
    (["*"], audit.Resource("", "secrets"), "all"),
    (["secrets"], audit.Resource("", "secrets"), "all"),
    (["serviceaccounts"], audit.Resource("", "serviceaccounts", "token"), None),  # not the subresource
    (["*/token"], audit.Resource("", "serviceaccounts", "token"), "all"),
    (["serviceaccounts/*"], audit.Resource("", "serviceaccounts", "token"), "all"),
    (["pods"], audit.Resource("", "secrets"), None),
])
def test_resource_matching(resources, target, matches):
    rule = {"level": "Request", "resources": [{"group": "", "resources": resources}]}
    assert audit.rule_scope(rule, target) == matches


def test_group_resource_names_and_restrictions():
    secrets = audit.Resource("", "secrets")
    assert audit.rule_scope({"level": "Request", "resources": [{"group": "apps"}]}, secrets) is None
    assert audit.rule_scope({"level": "Request", "resources": [{"group": ""}]}, secrets) == "all"  # whole group
    named = {"level": "Request", "resources": [{"group": "", "resources": ["secrets"], "resourceNames": ["x"]}]}
    assert audit.rule_scope(named, secrets) == "some"
    for key in ("users", "userGroups", "verbs", "namespaces"):
        assert audit.rule_scope({"level": "Request", key: ["a"]}, secrets) == "some"
    assert audit.rule_scope({"level": "Request", "nonResourceURLs": ["/healthz*"]}, secrets) is None


def test_none_catch_all_records_nothing():
    document = policy({"level": "None"})
    [minimal] = audit.minimal_policy_findings(FLAGS, files(document))
    assert minimal.path == f"{POLICY}: rules[0].level" and minimal.controls == ("3.2.1",)
    found = audit.sensitive_findings(FLAGS, files(document))
    assert {f.observed for f in found} == {f"{t} not recorded" for t in audit.SENSITIVE}


def test_no_catch_all_is_a_finding_and_unmatched_requests_are_not_recorded():
    document = policy({"level": "Metadata", "resources": [{"group": "", "resources": ["pods"]}]})
    [minimal] = audit.minimal_policy_findings(FLAGS, files(document))
    assert minimal.observed == "no rule matches every request"
    assert levels(document, audit.Resource("", "secrets")) == [(None, "None", "all")]
    assert len(audit.sensitive_findings(FLAGS, files(document))) == len(audit.SENSITIVE)


def test_no_policy_flag_is_a_finding():
    flags = {k: v for k, v in FLAGS.items() if k != "audit-policy-file"}
    assert audit.minimal_policy_findings(flags, {})[0].observed == "not set (no event is recorded)"
    assert audit.sensitive_findings(flags, {})[0].path == "--audit-policy-file"
    assert audit.policy_evidence(flags, {}) == {"policy": "not set"}


@pytest.mark.parametrize("text", [None, "rules: [", "- just a list", "kind: EncryptionConfiguration\n",
                                  "rules: {}", "rules:\n- level: Everything\n", "rules:\n- users: me\n  level: None\n"])
def test_unreadable_or_malformed_policy_is_not_verified(text):
    given_files = {} if text is None else {POLICY: text}
    with pytest.raises(NotVerified):
        audit.sensitive_findings(FLAGS, given_files, "mirror pod kube-system/kube-apiserver-cp")


def test_policy_text_never_reaches_findings_or_evidence():
    document = policy({"level": "RequestResponse", "users": [SECRET_LOOKING],
                       "resources": [{"group": "", "resources": ["secrets"], "resourceNames": [SECRET_LOOKING]}]},
                      CATCH_ALL_METADATA)
    shown = json.dumps([f.to_dict() for f in audit.sensitive_findings(FLAGS, files(document))]
                       + [audit.policy_evidence(FLAGS, files(document))], default=str)
    assert SECRET_LOOKING not in shown and "RequestResponse" in shown


# -- proof from the log ----------------------------------------------------------------------------
PATH = "/api/v1/namespaces/default/secrets/kubeproof-audit-proof-abc"


def event(**overrides) -> dict:
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "1",
            "stage": "ResponseComplete", "requestURI": PATH, "verb": "get", "user": {"username": "admin"},
            "responseStatus": {"code": 404}, **overrides}


def test_proof_found_at_metadata_passes():
    assert audit.proof_findings([event()], PATH, audit.Resource("", "secrets")) == []
    assert audit.proof_findings([event(requestURI=PATH + "?timeout=5s")], PATH, audit.Resource("", "secrets")) == []


def test_proof_missing_is_a_sink_finding():
    [finding] = audit.proof_findings([event(requestURI=PATH + "-other")], PATH, audit.Resource("", "secrets"))
    assert finding.controls == ("1.2.16",) and PATH in finding.observed


def test_proof_with_bodies_is_a_finding_and_the_summary_hides_them():
    leaked = event(level="RequestResponse", responseObject={"data": {"token": SECRET_LOOKING}})
    [finding] = audit.proof_findings([leaked], PATH, audit.Resource("", "secrets"))
    assert finding.controls == ("3.2.2",) and finding.observed == "secrets recorded at RequestResponse with bodies"
    summary = audit.proof_summary(leaked)
    assert summary["response body recorded"] is True and SECRET_LOOKING not in json.dumps(summary)


# -- properties ------------------------------------------------------------------------------------
RULES = st.lists(st.fixed_dictionaries(
    {"level": st.sampled_from(audit.LEVELS)},
    optional={
        "users": st.lists(st.sampled_from(["admin", "system:kube-proxy"]), min_size=1, max_size=2),
        "verbs": st.lists(st.sampled_from(["get", "list", "create"]), min_size=1, max_size=2),
        "resources": st.lists(st.fixed_dictionaries(
            {"group": st.sampled_from(["", "apps", "authentication.k8s.io"])},
            optional={"resources": st.lists(st.sampled_from(
                ["secrets", "configmaps", "*", "serviceaccounts/token", "*/token", "pods", "tokenreviews"]),
                max_size=3)}), min_size=1, max_size=2),
        "nonResourceURLs": st.lists(st.sampled_from(["/healthz*", "/version"]), min_size=1, max_size=1),
    }), max_size=5)


@PROPERTY
@given(rules=RULES)
def test_a_payload_catch_all_first_never_passes(rules):
    document = policy(CATCH_ALL_FULL, *rules)
    never_passes(audit.sensitive_findings, FLAGS, files(document))


@PROPERTY
@given(rules=RULES)
def test_sensitive_rule_first_always_passes_and_walk_stops_at_it(rules):
    document = policy(SENSITIVE_RULE, *rules, CATCH_ALL_METADATA)
    assert audit.sensitive_findings(FLAGS, files(document)) == []
    for target in audit.SENSITIVE:
        assert levels(document, target) == [(0, "Metadata", "all")]


@PROPERTY
@given(rules=RULES)
def test_walk_ends_at_the_first_rule_matching_everything(rules):
    for target in audit.SENSITIVE:
        walked = audit.levels_for(rules, target)
        assert all(scope == "some" for _, _, scope in walked[:-1]) and walked[-1][2] == "all"
        indices = [i for i, _, _ in walked if i is not None]
        assert indices == sorted(indices)


@PROPERTY
@given(document=mangled(GOOD))
def test_mangled_policy_gives_findings_or_not_verified(document):
    outcome(audit.sensitive_findings, FLAGS, files(document))
    outcome(audit.minimal_policy_findings, FLAGS, files(document))


@PROPERTY
@given(flags=JSON, files_=JSON)
def test_malformed_input_only_raises_not_verified(flags, files_):
    outcome(audit.sensitive_findings, flags, files_)
    outcome(audit.minimal_policy_findings, flags, files_)
    outcome(audit.proof_findings, flags, PATH, audit.Resource("", "secrets"))
