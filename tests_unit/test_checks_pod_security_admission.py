"""Unit tests for kubeproof.checks.pod_security_admission: the enforce label, and the interpretation
of the server-side dry-runs (label patch warnings, privileged pod create)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, NAMES, PROPERTY, mangled, never_passes, outcome

from kubeproof.checks import pod_security_admission as psa
from kubeproof.results import NotVerified, ObjectRef

LEVELS = ["privileged", "baseline", "restricted"]
LABEL_PATH = "metadata.labels[pod-security.kubernetes.io/enforce]"
NS_REF = ObjectRef("Namespace", "shop")
HEADER = 'existing pods in namespace "shop" violate the new PodSecurity enforce level "restricted:latest"'
POD_LINE = "web-7d4b9 (and 2 other pods): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true"
POD_LINE_2 = 'debug: host namespaces (hostNetwork=true), privileged (container "debug" must not set securityContext.privileged=true)'
LIMITED = "new PodSecurity enforce level only checked against the first 3000 of 4000 existing pods"
TIMED_OUT = "new PodSecurity enforce level timed out evaluating existing pods, 10 of 40 evaluated"


def ns(labels=None, name="shop") -> dict:
    metadata = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    return {"kind": "Namespace", "metadata": metadata}


def enforcing(level) -> dict:
    return ns({psa.ENFORCE: level, "kubernetes.io/metadata.name": "shop"})


# -- the label -------------------------------------------------------------------------------------
def test_absent_label_with_privileged_required_passes():
    assert psa.enforced_level(ns()) is None
    assert psa.label_findings(ns(), "privileged") == []
    assert psa.label_findings(ns({"team": "a"}), "privileged") == []


@pytest.mark.parametrize("required", ["baseline", "restricted"])
def test_absent_label_with_a_stricter_level_required_is_a_finding(required):
    [finding] = psa.label_findings(ns(), required)
    assert finding.controls == ("5.2.1",)
    assert finding.object == NS_REF
    assert finding.path == LABEL_PATH
    assert finding.observed == "absent (privileged)"
    assert required in finding.expected


@pytest.mark.parametrize("observed", LEVELS)
@pytest.mark.parametrize("required", LEVELS)
def test_every_level_against_every_requirement(observed, required):
    findings = psa.label_findings(enforcing(observed), required)
    if LEVELS.index(observed) >= LEVELS.index(required):
        assert findings == []
    else:
        [finding] = findings
        assert (finding.path, finding.observed, finding.expected) == (LABEL_PATH, observed, f"{required} or stricter")


@pytest.mark.parametrize("value", ["strict", "Restricted", "", "restricted ", "latest"])
@pytest.mark.parametrize("required", LEVELS)
def test_an_invalid_label_value_is_a_finding_even_when_privileged_is_required(value, required):
    [finding] = psa.label_findings(enforcing(value), required)
    assert finding.observed == value
    assert finding.expected == "one of privileged, baseline, restricted"


@pytest.mark.parametrize("bad", [
    enforcing(3), enforcing(["restricted"]), enforcing({"level": "restricted"}), enforcing(True),
    ns(["pod-security.kubernetes.io/enforce=restricted"]), ns(name=""), {"metadata": None}, None, "shop",
], ids=repr)
def test_uninterpretable_namespaces_are_not_verified(bad):
    with pytest.raises(NotVerified):
        psa.label_findings(bad, "restricted")


def test_namespace_name():
    assert psa.namespace_name(ns()) == "shop"
    with pytest.raises(NotVerified):
        psa.namespace_name({"metadata": {}})


def test_dry_run_label_patch_switches_the_version_so_pods_are_evaluated():
    patch = psa.dry_run_label_patch(ns(), "restricted", "v1.31")
    assert patch == {"metadata": {"labels": {psa.ENFORCE: "restricted", psa.ENFORCE_VERSION: "v1.31"}}}
    pinned = ns({psa.ENFORCE: "restricted", psa.ENFORCE_VERSION: "v1.31"})
    assert psa.dry_run_label_patch(pinned, "restricted", "v1.31")["metadata"]["labels"][psa.ENFORCE_VERSION] == "latest"
    latest = ns({psa.ENFORCE: "restricted", psa.ENFORCE_VERSION: "latest"})
    assert psa.dry_run_label_patch(latest, "baseline", "v1.31")["metadata"]["labels"] == {
        psa.ENFORCE: "baseline", psa.ENFORCE_VERSION: "v1.31"}


# -- the dry-run of the label: warnings about existing pods ----------------------------------------
def test_no_warnings_pass():
    assert psa.existing_pod_findings(ns(), 200, [], "restricted") == []


def test_the_header_line_is_not_a_finding_the_pod_lines_are():
    findings = psa.existing_pod_findings(ns(), 200, [HEADER, POD_LINE, POD_LINE_2], "restricted")
    assert [f.observed for f in findings] == [POD_LINE, POD_LINE_2]
    assert all(f.controls == ("5.2.1", "5.2.2") and f.object == NS_REF and f.path == "existing pods" for f in findings)
    assert findings[0].expected == "pods that meet restricted"


def test_a_header_alone_is_not_a_finding():
    assert psa.existing_pod_findings(ns(), 200, [HEADER], "baseline") == []


@pytest.mark.parametrize("incomplete", [LIMITED, TIMED_OUT, "PodSecurity evaluation timeout"])
def test_an_incomplete_evaluation_alone_is_not_verified(incomplete):
    with pytest.raises(NotVerified) as raised:
        psa.existing_pod_findings(ns(), 200, [HEADER, incomplete], "restricted")
    assert incomplete in raised.value.reason


def test_an_incomplete_evaluation_with_pod_lines_reports_the_pods():
    findings = psa.existing_pod_findings(ns(), 200, [HEADER, POD_LINE, LIMITED], "restricted")
    assert [f.observed for f in findings] == [POD_LINE]


@pytest.mark.parametrize("status", [0, 199, 300, 403, 404, 409, 422, 500])
def test_a_refused_dry_run_is_not_verified(status):
    with pytest.raises(NotVerified):
        psa.existing_pod_findings(ns(), status, [HEADER, POD_LINE], "restricted")


def test_a_warning_that_is_not_text_is_not_verified():
    with pytest.raises(NotVerified):
        psa.existing_pod_findings(ns(), 200, [HEADER, None], "restricted")
    with pytest.raises(NotVerified):
        psa.existing_pod_findings(ns(), 200, [b"web: privileged"], "restricted")


def test_pod_security_answered():
    message = f'namespaces "shop" is invalid: metadata.labels[{psa.ENFORCE}]: Invalid value: "kubeproof-not-a-level"'
    assert psa.pod_security_answered(422, message)
    assert not psa.pod_security_answered(200, message)
    assert not psa.pod_security_answered(422, "some other validation error")
    assert not psa.pod_security_answered(422, None)


# -- the privileged probe --------------------------------------------------------------------------
VIOLATES = 'pods "kubeproof-privileged-probe" is forbidden: violates PodSecurity "restricted:latest": privileged'


def test_the_probe_pod_is_privileged_and_in_the_namespace():
    pod = psa.privileged_probe_pod("shop")
    assert pod["metadata"]["namespace"] == "shop" and pod["metadata"]["name"] == psa.PROBE_POD_NAME
    assert pod["spec"]["containers"][0]["securityContext"]["privileged"] is True


@pytest.mark.parametrize("status", [200, 201])
def test_an_admitted_privileged_pod_is_a_finding(status):
    [finding] = psa.privileged_probe_findings(ns(), status, "", "baseline")
    assert finding.controls == ("5.2.1", "5.2.2")
    assert finding.object == NS_REF
    assert finding.path == "server-side dry-run create of a privileged pod"
    assert finding.observed == f"admitted (HTTP {status})"
    assert "baseline" in finding.expected


def test_a_pod_security_rejection_passes():
    assert psa.probe_rejected_by_pod_security(403, VIOLATES) is True
    assert psa.privileged_probe_findings(ns(), 403, VIOLATES, "restricted") == []


@pytest.mark.parametrize("status, message", [
    (403, 'pods is forbidden: User "auditor" cannot create resource "pods" in API group "" in the namespace "shop"'),
    (403, ""),
    (403, None),
    (422, VIOLATES),
    (404, 'namespaces "shop" not found'),
    (500, "internal error"),
    (0, ""),
])
def test_a_refusal_for_another_reason_is_not_verified(status, message):
    assert psa.probe_rejected_by_pod_security(status, message) is None
    with pytest.raises(NotVerified):
        psa.privileged_probe_findings(ns(), status, message, "restricted")


# -- properties ------------------------------------------------------------------------------------
LABEL_VALUES = st.one_of(st.sampled_from(LEVELS), st.text(max_size=10))
NAMESPACES = st.builds(
    lambda name, level, extra: ns({**extra, **({} if level is None else {psa.ENFORCE: level})}, name),
    NAMES, st.none() | LABEL_VALUES, st.dictionaries(NAMES, NAMES, max_size=2),
)


@PROPERTY
@given(NAMESPACES, st.sampled_from(LEVELS))
def test_the_label_passes_only_at_or_above_the_required_level(namespace_object, required):
    # No label admits privileged pods; any other value must be a known level.
    level = namespace_object["metadata"]["labels"].get(psa.ENFORCE, "privileged")
    result = psa.label_findings(namespace_object, required)
    compliant = level in LEVELS and LEVELS.index(level) >= LEVELS.index(required)
    assert (result == []) == compliant


@PROPERTY
@given(st.data(), st.sampled_from(LEVELS))
def test_malformed_namespaces_give_findings_or_not_verified(data, required):
    outcome(psa.label_findings, data.draw(mangled(data.draw(NAMESPACES))), required)


@PROPERTY
@given(JSON, st.sampled_from(LEVELS))
def test_arbitrary_values_as_namespaces_give_findings_or_not_verified(value, required):
    outcome(psa.label_findings, value, required)


STATUSES = st.one_of(st.integers(min_value=-1, max_value=600), st.sampled_from([200, 201, 403, 422]), JSON)
WARNINGS = st.lists(st.one_of(st.sampled_from([HEADER, POD_LINE, POD_LINE_2, LIMITED, TIMED_OUT]), st.text(max_size=20), JSON),
                    max_size=5)


@PROPERTY
@given(STATUSES, WARNINGS)
def test_any_dry_run_answer_gives_findings_or_not_verified(status, warnings):
    result = outcome(psa.existing_pod_findings, ns(), status, warnings, "restricted")
    if isinstance(result, list):
        assert type(status) is int and 200 <= status < 300
        assert all(isinstance(w, str) for w in warnings)


@PROPERTY
@given(st.sampled_from([200, 201]), WARNINGS, st.integers(min_value=0, max_value=5))
def test_a_pod_line_is_never_passed(status, warnings, position):
    warnings.insert(min(position, len(warnings)), POD_LINE)
    never_passes(psa.existing_pod_findings, ns(), status, warnings, "restricted")


@PROPERTY
@given(STATUSES, st.one_of(st.sampled_from([VIOLATES, "", "forbidden"]), st.text(max_size=20), JSON))
def test_any_probe_answer_gives_findings_or_not_verified(status, message):
    result = outcome(psa.privileged_probe_findings, ns(), status, message, "restricted")
    if result == []:
        assert status == 403 and type(status) is int
        assert isinstance(message, str) and "violates PodSecurity" in message
