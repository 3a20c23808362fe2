"""assessment-results.json, the run as OSCAL 1.1 assessment results: each control's finding from the
results under it (satisfied only when proven; failed, not verified, waived, accepted and exempt-only
controls are not satisfied and say why), the document valid by compliance-trestle's OSCAL models
(and a broken one refused by them), every reference resolving, no evidence copied, and through the
real plugin on a fake cluster: the file in the run folder, in SHA256SUMS, pointing into results.json."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic.v1 import ValidationError as ValidationErrorV1
from strategies import PROPERTY
from test_plugin import WAIVER, _baseline, suite  # noqa: F401  (the fixture: a tiny suite through the real plugin)
from trestle.oscal.assessment_results import AssessmentResults

from kubeproof import oscal
from kubeproof.artifacts import SUMS
from kubeproof.evidence import STATUSES, Record

pytest_plugins = ["pytester"]

DESCRIBED = {
    "cluster": "prod", "cluster fingerprint": "kube-system uid ks-1", "API server": "https://prod.invalid:6443",
    "baseline": "baselines/prod.yaml", "baseline sha256": "ab" * 32, "kubeproof version": "0.1.0",
    "kubeproof commit": "0123abcd", "started (UTC)": "2026-01-02T03:04:05+00:00", "finished (UTC)": "2026-01-02T03:05:00+00:00",
}
ROLE = {"kind": "ClusterRole", "name": "wildcard", "namespace": None, "uid": "uid-wildcard"}


def finding(*controls: str, obj: dict = ROLE) -> dict:
    return {"controls": list(controls), "object": obj, "path": "rules[0].verbs", "observed": ["*"],
            "expected": "explicit verbs", "remediation": "Name the verbs."}


def record(status: str, cis: list[str], *, name: str = "wildcard", reason: str = "", findings=(), nsa=(), **extra) -> Record:
    obj = dict(ROLE, name=name, uid=f"uid-{name}")
    return Record(f"tests_cluster/test_rbac.py::test_role_grants_no_wildcards[{name}-{status}]", "test_role_grants_no_wildcards",
                  "rbac", {"cis": cis, "nsa": list(nsa), "pss": []}, obj, status, reason, list(findings), **extra)


FAILING = record("failed", ["5.1.3"], name="wildcard", findings=[finding("5.1.3")])
PASSING = record("passed", ["5.1.1"], name="reader")
UNPROVEN = Record("tests_cluster/test_etcd_encryption.py::test_every_stored_secret_is_encrypted",
                  "test_every_stored_secret_is_encrypted", "etcd_encryption", {"cis": ["1.2.28"]}, None,
                  "not_verified", "etcd is not reachable from here")
WAIVED = record("waived", ["5.1.5"], name="vendor-operator", findings=[finding("5.1.5")],
                reason="waived by ClusterRole/vendor-operator (5.1.5): the vendor operator needs it until v2")


def document(records, described=DESCRIBED, run_name="prod-20260102T030405Z") -> dict:
    """As it is written to the file, and read back."""
    return json.loads(oscal.dumps(oscal.assessment_results(records, described, run_name)))


def findings_by_target(doc: dict) -> dict[str, dict]:
    return {f["target"]["target-id"]: f for f in doc["assessment-results"]["results"][0].get("findings", [])}


# trestle 3 validates through pydantic's v1 API; either kind of error is a refusal.
REFUSED = (ValidationError, ValidationErrorV1)


def validate(doc: dict) -> AssessmentResults:
    return AssessmentResults.parse_obj(doc["assessment-results"])


# -- each control's finding -------------------------------------------------------------------------
def test_a_failing_passing_not_verified_and_waived_result_give_their_controls_the_right_state():
    doc = document([FAILING, PASSING, UNPROVEN, WAIVED])
    found = findings_by_target(doc)
    assert set(found) == {"cis-5.1.3", "cis-5.1.1", "cis-1.2.28", "cis-5.1.5"}
    status = {target: f["target"]["status"] for target, f in found.items()}
    assert status["cis-5.1.1"]["state"] == "satisfied" and status["cis-5.1.1"]["reason"] == "pass"
    assert status["cis-5.1.3"] == {"state": "not-satisfied", "reason": "fail", "remarks": status["cis-5.1.3"]["remarks"]}
    assert "ClusterRole/wildcard: rules[0].verbs is ['*']" in status["cis-5.1.3"]["remarks"]
    # Not verified is never satisfied, and the reason travels with it.
    assert status["cis-1.2.28"]["state"] == "not-satisfied" and status["cis-1.2.28"]["reason"] == "other"
    assert "Not verified" in status["cis-1.2.28"]["remarks"] and "etcd is not reachable from here" in status["cis-1.2.28"]["remarks"]
    # A waived finding is a known risk, not a met control: it says it is waived, and why.
    assert status["cis-5.1.5"]["state"] == "not-satisfied"
    assert "Waived" in status["cis-5.1.5"]["remarks"] and "the vendor operator needs it until v2" in status["cis-5.1.5"]["remarks"]
    for target, f in found.items():
        assert f["target"]["type"] == "objective-id" and f["title"].endswith(f["target"]["status"]["state"]), target
    validate(doc)


def test_a_control_is_satisfied_only_when_some_result_proved_it():
    exempt = record("skipped", ["5.1.3"], reason="stale: the waiver matched nothing")
    accepted = record("accepted", ["5.1.6"], name="old", findings=[finding("5.1.6")], reason="recorded in baseline.accepted.yaml")
    errored = record("error", ["5.1.7"], name="broken", reason="KeyError: 'rules'")
    status = {t: f["target"]["status"] for t, f in findings_by_target(document([exempt, accepted, errored])).items()}
    assert status["cis-5.1.3"]["state"] == "not-satisfied" and "every result under it was exempt" in status["cis-5.1.3"]["remarks"]
    assert "stale: the waiver matched nothing" in status["cis-5.1.3"]["remarks"]
    assert status["cis-5.1.6"]["state"] == "not-satisfied" and "Accepted" in status["cis-5.1.6"]["remarks"]
    assert status["cis-5.1.7"]["state"] == "not-satisfied" and "KeyError" in status["cis-5.1.7"]["remarks"]
    # Exempt results beside a proven one leave it satisfied, and are named.
    status = findings_by_target(document([exempt, record("passed", ["5.1.3"], name="reader")]))["cis-5.1.3"]["target"]["status"]
    assert status["state"] == "satisfied" and "stale: the waiver matched nothing" in status["remarks"]


def test_a_result_fails_only_the_controls_its_findings_name_and_frameworks_are_kept_apart():
    several = record("failed", ["5.1.1", "5.1.3"], findings=[finding("5.1.3")], nsa=["Authentication and authorization"])
    found = findings_by_target(document([several]))
    assert found["cis-5.1.1"]["target"]["status"]["state"] == "satisfied"
    assert found["cis-5.1.3"]["target"]["status"]["state"] == "not-satisfied"
    nsa = found["nsa-authentication-and-authorization"]
    assert nsa["target"]["status"]["state"] == "not-satisfied" and "NSA/CISA" in nsa["title"]
    selections = document([several])["assessment-results"]["results"][0]["reviewed-controls"]["control-selections"]
    assert [[c["control-id"] for c in s["include-controls"]] for s in selections] == \
        [["cis-5.1.1", "cis-5.1.3"], ["nsa-authentication-and-authorization"]]


@PROPERTY
@given(st.lists(st.sampled_from(STATUSES), min_size=1, max_size=8))
def test_satisfied_exactly_when_proven_and_nothing_else_stands(statuses):
    records = [record(s, ["5.1.3"], name=f"r{i}", findings=[finding("5.1.3")] if s in ("failed", "waived", "accepted") else [],
                      reason="" if s in ("passed", "failed") else f"why {i}") for i, s in enumerate(statuses)]
    state = findings_by_target(document(records))["cis-5.1.3"]["target"]["status"]["state"]
    assert (state == "satisfied") == ("passed" in statuses and set(statuses) <= {"passed", "skipped"})


def test_target_ids_are_oscal_tokens():
    assert oscal.target_id("cis", "1.2.27") == "cis-1.2.27"
    assert oscal.target_id("nsa", "Kubernetes Pod security: node hardening") == "nsa-kubernetes-pod-security-node-hardening"
    assert oscal.target_id("pss", "capabilities_baseline") == "pss-capabilities_baseline"


# -- the document -----------------------------------------------------------------------------------
def test_observations_name_their_object_their_evidence_and_what_was_found():
    doc = document([FAILING, PASSING, UNPROVEN, WAIVED])
    result = doc["assessment-results"]["results"][0]
    observations = result["observations"]
    assert len(observations) == 4
    for index, observation in enumerate(observations):
        assert observation["methods"] == ["TEST"] and observation["collected"] == DESCRIBED["finished (UTC)"]
        assert observation["relevant-evidence"] == [{"href": f"results.json#/results/{index}",
                                                    "description": observation["relevant-evidence"][0]["description"]}]
    assert "ClusterRole/wildcard: rules[0].verbs is ['*']; expected explicit verbs" in observations[0]["description"]
    assert "not verified: etcd is not reachable from here" in observations[2]["description"]
    assert "waived: waived by ClusterRole/vendor-operator" in observations[3]["description"]
    items = {i["uuid"]: i for i in result["local-definitions"]["inventory-items"]}
    assert "ClusterRole/wildcard, uid uid-wildcard" in items[observations[0]["subjects"][0]["subject-uuid"]]["description"]
    # A result about the cluster as a whole has the cluster as its subject.
    assert "audited Kubernetes cluster prod" in items[observations[2]["subjects"][0]["subject-uuid"]]["description"]
    assert result["start"] == DESCRIBED["started (UTC)"] and result["end"] == DESCRIBED["finished (UTC)"]
    metadata = doc["assessment-results"]["metadata"]
    assert metadata["oscal-version"] == oscal.OSCAL_VERSION and metadata["last-modified"] == DESCRIBED["finished (UTC)"]


def test_every_reference_resolves_and_every_uuid_is_unique():
    doc = document([FAILING, PASSING, UNPROVEN, WAIVED])["assessment-results"]
    text = json.dumps(doc)
    defined = [v for k, v in _pairs(doc) if k == "uuid"]
    assert len(defined) == len(set(defined))
    assert all(uuid.UUID(u).version == 5 for u in defined)
    for key in ("subject-uuid", "observation-uuid", "actor-uuid", "component-uuid"):
        for value in (v for k, v in _pairs(doc) if k == key):
            assert value in defined, (key, value)
    plan = doc["import-ap"]["href"]
    assert plan.startswith("#") and plan[1:] in [r["uuid"] for r in doc["back-matter"]["resources"]]
    assert "no separate OSCAL assessment plan" in doc["back-matter"]["resources"][0]["description"]
    assert "0123abcd" in text and DESCRIBED["baseline sha256"] in text


def _pairs(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _pairs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _pairs(item)


def test_uuids_are_the_same_for_the_same_run_and_differ_between_runs():
    records = [FAILING, PASSING]
    assert document(records) == document(records)
    other = document(records, run_name="prod-20260102T030405Z-2")
    assert other["assessment-results"]["uuid"] != document(records)["assessment-results"]["uuid"]


def test_the_evidence_a_test_read_is_never_copied():
    secretive = record("failed", ["5.1.3"], findings=[finding("5.1.3")], facts={"token": "s3cr3t-evidence-value"})
    assert "s3cr3t-evidence-value" not in oscal.dumps(oscal.assessment_results([secretive], DESCRIBED, "r"))


def test_the_document_validates_with_trestle_and_a_broken_one_is_refused():
    doc = document([FAILING, PASSING, UNPROVEN, WAIVED])
    validate(doc)
    broken = json.loads(json.dumps(doc))
    broken["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] = "probably"
    with pytest.raises(REFUSED):
        validate(broken)
    # A CIS id is not an OSCAL token on its own: the framework prefix is what makes it valid.
    bare = json.loads(json.dumps(doc))
    bare["assessment-results"]["results"][0]["findings"][0]["target"]["target-id"] = "1.2.28"
    with pytest.raises(REFUSED):
        validate(bare)
    missing = json.loads(json.dumps(doc))
    del missing["assessment-results"]["import-ap"]
    with pytest.raises(REFUSED):
        validate(missing)


def test_a_run_with_no_results_is_still_a_valid_document_that_claims_no_control():
    doc = document([])
    result = doc["assessment-results"]["results"][0]
    assert "observations" not in result and "findings" not in result
    assert result["reviewed-controls"]["control-selections"] == [{"description": "This run judged no control."}]
    validate(doc)


def test_the_writer_streams_observations_one_per_line_and_matches_json():
    records = [record("passed", ["5.1.3"], name=f"role-{i}") for i in range(50)]
    text = oscal.dumps(oscal.assessment_results(records, DESCRIBED, "r"))
    assert sum(1 for line in text.splitlines() if line.lstrip().startswith('{"uuid"')) >= 50
    assert json.loads(text) == document(records, run_name="r")


# -- through the plugin ---------------------------------------------------------------------------
def test_the_run_folder_holds_the_document_covered_by_sha256sums(suite, tmp_path):  # noqa: F811
    run = suite.run(f"--baseline={_baseline(tmp_path, waivers=WAIVER)}")
    assert run.returncode == 1, run.output
    path = run.folder / oscal.NAME
    sums = dict(reversed(line.split("  ", 1)) for line in (run.folder / SUMS).read_text().splitlines())
    assert sums[oscal.NAME] == hashlib.sha256(path.read_bytes()).hexdigest()
    doc = json.loads(path.read_text())
    validate(doc)
    found = findings_by_target(doc)
    assert found["cis-5.1.3"]["target"]["status"]["reason"] == "fail"
    assert "the vendor operator needs it until v2" in found["cis-5.1.3"]["target"]["status"]["remarks"]
    unproven = found["cis-1.2.28"]["target"]["status"]
    assert unproven["state"] == "not-satisfied" and "etcd" in unproven["remarks"]
    # Each observation's evidence is the record at its JSON Pointer in results.json.
    for observation in doc["assessment-results"]["results"][0]["observations"]:
        index = int(observation["relevant-evidence"][0]["href"].rpartition("/")[2])
        assert run.records()[index]["nodeid"] in observation["relevant-evidence"][0]["description"]
