"""Unit tests for kubeproof.checks.kubelet_probes: each live probe read both ways; a conclusive probe
decides its control whatever /configz says (and the finding or the evidence records the
disagreement); an inconclusive one leaves the control to the configuration; without a configuration
only conclusive probes judge; and a serving certificate the cluster's CA does not verify fails 4.2.9
even when the configuration names certificate files."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from test_checks_kubelet import GOOD, changed

from kubeproof.checks import kubelet
from kubeproof.checks import kubelet_probes as kp
from kubeproof.checks.kubelet_probes import OFF, ON, Outcome
from kubeproof.kubelets import Reply
from kubeproof.results import ObjectRef

NODE = "worker-7"


@dataclass(frozen=True)
class Probe:
    control: str
    argument: str  # judge's keyword for this probe
    compliant: Outcome
    violating: Outcome
    inconclusive: tuple  # answers that prove nothing either way
    misconfigured: dict  # changes to GOOD that break the control in /configz
    answer: str  # how the violating answer is named in the finding


PROBES = (
    Probe("4.2.1", "anonymous", Outcome(401), Outcome(200),
          (None, Outcome(None), Outcome(404), Outcome(500), Outcome(None, refused=True)),
          {"authentication.anonymous.enabled": True}, "HTTP 200"),
    Probe("4.2.2", "no_rights", Outcome(403), Outcome(200),
          (None, Outcome(None), Outcome(404), Outcome(500), Outcome(401)),
          {"authorization.mode": "AlwaysAllow"}, "HTTP 200"),
    Probe("4.2.3", "client_certificate", Outcome(200, verified=True), Outcome(401, verified=True),
          (None, Outcome(None), Outcome(None, verified=True), Outcome(401, verified=False),
           Outcome(401, verified=None), Outcome(200, verified=None)),
          {"authentication.x509.clientCAFile": ""}, "HTTP 401"),
    # Any HTTP answer on the read-only port proves it open, so only the absence of one is inconclusive.
    Probe("4.2.4", "read_only", Outcome(None, refused=True), Outcome(200),
          (None, Outcome(None)),
          {"readOnlyPort": 10255}, "HTTP 200"),
)
IDS = [probe.control for probe in PROBES]


def judge(configz, **probes):
    arguments = {"anonymous": None, "no_rights": None, "read_only": None, "serving": None}
    arguments.update(probes)
    return kp.judge(NODE, configz, **arguments)


def of(control, found):
    return [finding for finding in found if finding.controls == (control,)]


def configured(control, configz):
    return kubelet.findings(kubelet.row(control), configz, None, NODE)


def test_every_probed_control_is_a_kubelet_row():
    assert set(kp.PROBED) == {probe.control for probe in PROBES} | {"4.2.9"}
    assert {row.id for row in kubelet.ROWS} >= set(kp.PROBED)


# -- each probe's reading ------------------------------------------------------------------------
@pytest.mark.parametrize("outcome, verdict", [
    (None, None), (Outcome(None), None), (Outcome(None, refused=True), None),
    (Outcome(401), OFF), (Outcome(200), ON), (Outcome(403), ON),
    (Outcome(404), None), (Outcome(500), None), (Outcome(302), None),
])
def test_anonymous_requests(outcome, verdict):
    assert kp.anonymous_requests(outcome) == verdict


@pytest.mark.parametrize("outcome, verdict", [
    (None, None), (Outcome(None), None), (Outcome(403), ON), (Outcome(200), OFF),
    (Outcome(401), None), (Outcome(404), None), (Outcome(500), None),
])
def test_authorization_enforced(outcome, verdict):
    assert kp.authorization_enforced(outcome) == verdict


@pytest.mark.parametrize("outcome, verdict", [
    (None, None), (Outcome(None, verified=True), None),
    (Outcome(200, verified=True), ON), (Outcome(403, verified=True), ON), (Outcome(401, verified=True), OFF),
    # Without a verified serving certificate no client certificate was presented to this kubelet.
    (Outcome(401, verified=False), None), (Outcome(401), None), (Outcome(200), None),
])
def test_client_certificates_accepted(outcome, verdict):
    assert kp.client_certificates_accepted(outcome) == verdict


@pytest.mark.parametrize("outcome, verdict", [
    (None, None), (Outcome(None), None), (Outcome(None, refused=True), OFF),
    (Outcome(200), ON), (Outcome(404), ON), (Outcome(500), ON),
])
def test_read_only_port(outcome, verdict):
    assert kp.read_only_port(outcome) == verdict


def test_outcome_of_a_reply_keeps_what_the_probes_read():
    assert Outcome.of(None) is None
    reply = Reply("GET https://10.0.0.1:10250/pods", status=401, verified=True)
    assert Outcome.of(reply) == Outcome(401, False, True)
    refused = Reply("GET http://10.0.0.1:10255/healthz", error="connection refused", refused=True)
    assert Outcome.of(refused) == Outcome(None, True, None)


# -- a probe both ways, with a compliant configuration ---------------------------------------------
@pytest.mark.parametrize("probe", PROBES, ids=IDS)
def test_compliant_answer_gives_no_finding(probe):
    found, shown = judge(GOOD, **{probe.argument: probe.compliant})
    assert found == []
    assert shown[probe.control]["proves"] in (ON, OFF)
    assert shown[probe.control]["configuration"] == "compliant"
    assert "disagreement" not in shown[probe.control]


@pytest.mark.parametrize("probe", PROBES, ids=IDS)
def test_violating_answer_wins_over_a_compliant_configuration(probe):
    found, shown = judge(GOOD, **{probe.argument: probe.violating})
    [finding] = found
    row = kubelet.row(probe.control)
    assert finding.controls == (probe.control,)
    assert finding.object == ObjectRef("Node", NODE)
    assert finding.path == row.path
    assert probe.answer in finding.observed
    assert "the configuration claims otherwise" in finding.observed
    assert finding.expected == row.expected and finding.remediation == row.remediation
    assert shown[probe.control]["answer"] == probe.answer
    assert shown[probe.control]["configuration"] == "compliant"


# -- a probe against a configuration that falls short ----------------------------------------------
@pytest.mark.parametrize("probe", PROBES, ids=IDS)
def test_violating_answer_and_configuration_agree(probe):
    bad = changed(probe.misconfigured)
    assert configured(probe.control, bad), "the change must break the control in /configz"
    found, shown = judge(bad, **{probe.argument: probe.violating})
    [finding] = of(probe.control, found)
    assert probe.answer in finding.observed
    assert "the configuration says the same" in finding.observed
    assert shown[probe.control]["configuration"] == "falls short"


@pytest.mark.parametrize("probe", PROBES, ids=IDS)
def test_setting_in_force_wins_over_a_configuration_that_falls_short(probe):
    bad = changed(probe.misconfigured)
    found, shown = judge(bad, **{probe.argument: probe.compliant})
    assert of(probe.control, found) == []
    assert "disagreement" in shown[probe.control]
    assert shown[probe.control]["configuration"] == "falls short"


# -- inconclusive answers fall back to the configuration ---------------------------------------------
@pytest.mark.parametrize("probe, answer", [(p, a) for p in PROBES for a in p.inconclusive],
                         ids=[f"{p.control}-{kp._answer(a).replace(' ', '_')}-{i}"
                              for p in PROBES for i, a in enumerate(p.inconclusive)])
def test_inconclusive_answer_leaves_the_control_to_the_configuration(probe, answer):
    found, shown = judge(GOOD, **{probe.argument: answer})
    assert found == []
    assert shown[probe.control]["proves"] == "nothing conclusive"
    bad = changed(probe.misconfigured)
    found, shown = judge(bad, **{probe.argument: answer})
    assert of(probe.control, found) == configured(probe.control, bad) != []
    assert "disagreement" not in shown[probe.control]


# -- no configuration: only conclusive probes judge ------------------------------------------------
@pytest.mark.parametrize("probe", PROBES, ids=IDS)
def test_without_configuration_a_conclusive_probe_still_judges(probe):
    found, shown = judge(None, **{probe.argument: probe.violating})
    [finding] = found
    assert finding.controls == (probe.control,)
    assert finding.observed.endswith(probe.answer)  # no claim about a configuration nobody read
    assert shown[probe.control]["configuration"] == "not readable"
    assert judge(None, **{probe.argument: probe.compliant})[0] == []
    for answer in probe.inconclusive:
        assert judge(None, **{probe.argument: answer})[0] == []


def test_without_configuration_or_probes_nothing_is_found():
    found, shown = judge(None)
    assert found == []
    assert all(shown[control]["answer"] == "not asked" for control in ("4.2.1", "4.2.2", "4.2.3", "4.2.4"))
    assert "4.2.9" not in shown


def test_all_probes_at_once_each_finding_names_its_own_control():
    found, _ = judge(GOOD, **{probe.argument: probe.violating for probe in PROBES},
                     serving=Outcome(200, verified=False))
    assert sorted(finding.controls[0] for finding in found) == ["4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.9"]
    found, _ = judge(GOOD, **{probe.argument: probe.compliant for probe in PROBES},
                     serving=Outcome(200, verified=True))
    assert found == []


def test_answers_are_named_for_the_evidence():
    assert kp._answer(None) == "not asked"
    assert kp._answer(Outcome(None, refused=True)) == "connection refused"
    assert kp._answer(Outcome(None)) == "no HTTP answer"
    assert kp._answer(Outcome(403)) == "HTTP 403"


# -- 4.2.9: the serving certificate ---------------------------------------------------------------------
NO_SERVING_CERTIFICATE = {"serverTLSBootstrap": False, "tlsCertFile": "", "tlsPrivateKeyFile": ""}


def test_unverified_serving_certificate_fails_even_with_a_compliant_configuration():
    assert configured("4.2.9", GOOD) == []
    found, shown = judge(GOOD, serving=Outcome(None, verified=False))
    [finding] = found
    assert finding.controls == ("4.2.9",)
    assert finding.object == ObjectRef("Node", NODE)
    assert finding.path == "tlsCertFile"
    assert "does not verify" in finding.observed
    assert "the configuration names a certificate file" in finding.observed
    assert shown["4.2.9"]["answer"] == "not verified"


def test_unverified_serving_certificate_with_no_certificate_configured_is_one_finding():
    bad = changed(NO_SERVING_CERTIFICATE)
    assert len(configured("4.2.9", bad)) == 2  # tlsCertFile and tlsPrivateKeyFile
    found, _ = judge(bad, serving=Outcome(401, verified=False))
    [finding] = of("4.2.9", found)
    assert "does not verify" in finding.observed
    assert "the configuration names" not in finding.observed


def test_unverified_serving_certificate_without_configuration():
    [finding] = judge(None, serving=Outcome(None, verified=False))[0]
    assert finding.controls == ("4.2.9",)
    assert finding.observed == "a serving certificate the cluster's CA does not verify"


@pytest.mark.parametrize("serving", [None, Outcome(200, verified=True), Outcome(None, verified=None)])
def test_verified_or_untried_serving_certificate_leaves_4_2_9_to_the_configuration(serving):
    assert judge(GOOD, serving=serving)[0] == []
    bad = changed(NO_SERVING_CERTIFICATE)
    found, shown = judge(bad, serving=serving)
    assert of("4.2.9", found) == configured("4.2.9", bad)
    assert judge(None, serving=serving)[0] == []
    if serving is not None and serving.verified:
        assert shown["4.2.9"]["answer"] == "verified"
    else:
        assert "4.2.9" not in shown

