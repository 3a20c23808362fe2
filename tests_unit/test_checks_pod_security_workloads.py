"""Unit tests for kubeproof.checks.pod_security_workloads: Pod Security Standards judged per workload, with
the level from the baseline and the version from the namespace's enforce-version label."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled, never_passes, outcome, protect_prefixes
from workloads import KINDS, container, pod_spec, spec_of, spec_path, with_container, workload, workloads

from kubeproof import cis, pod_security
from kubeproof.checks import pod_security_workloads as ws
from kubeproof.results import Finding, NotVerified, ObjectRef

CIS_IDS = cis.ids()


def namespace(name="team", labels=None) -> dict:
    return {"kind": "Namespace", "metadata": {"name": name, **({"labels": labels} if labels is not None else {})}}


def check_ids(findings: list[Finding]) -> set[str]:
    return {f.observed.split(":", 1)[0] for f in findings}


# -- the mapping -------------------------------------------------------------------------------------
def test_every_upstream_check_has_cis_controls_that_exist():
    assert set(ws.CIS_BY_CHECK) == set(pod_security.CHECKS) == set(ws.CHECK_IDS)
    for check_id, controls in ws.CIS_BY_CHECK.items():
        assert controls and set(controls) <= CIS_IDS, check_id
        assert ws.REMEDIATION[check_id]
    assert set(ws.CIS_CONTROLS) == {c for ids in ws.CIS_BY_CHECK.values() for c in ids}


# -- the policy version ------------------------------------------------------------------------------
@pytest.mark.parametrize("labels, expected", [
    (None, "latest"),
    ({}, "latest"),
    ({ws.ENFORCE_VERSION: "v1.22"}, "v1.22"),
    ({ws.ENFORCE_VERSION: "latest"}, "latest"),
    ({ws.ENFORCE_VERSION: "v1.99"}, "v1.99"),  # newer than the evaluator knows: it applies its latest
    ({ws.ENFORCE_VERSION: "1.22"}, "latest"),
    ({ws.ENFORCE_VERSION: "v2.0"}, "latest"),
    ({ws.ENFORCE_VERSION: "v1.022"}, "latest"),
    ({ws.ENFORCE_VERSION: 22}, "latest"),
    ({ws.ENFORCE_VERSION: ""}, "latest"),
])
def test_policy_version_honours_a_valid_label_and_falls_back_to_latest(labels, expected):
    assert ws.policy_version(namespace(labels=labels)) == expected


def test_unknown_namespace_is_judged_at_latest():
    assert ws.policy_version(None) == "latest"


@pytest.mark.parametrize("bad", ["text", 5, {"metadata": "x"}, {"metadata": {"name": "a", "labels": ["x"]}}])
def test_unreadable_namespace_is_not_verified(bad):
    with pytest.raises(NotVerified):
        ws.policy_version(bad)


def test_namespaces_by_name_skips_unreadable_entries():
    good = namespace("a")
    assert ws.namespaces_by_name([good, "x", {"metadata": 5}, {"metadata": {"name": ""}}]) == {"a": good}


# -- findings ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_restricted_template_passes_for_every_kind(kind):
    assert ws.pod_security_findings(workload(kind), "restricted", "latest") == []


def test_privileged_container_is_reported_with_check_id_path_and_control():
    obj = workload(spec=pod_spec([container(securityContext={"privileged": True})]))
    findings = ws.pod_security_findings(obj, "baseline", "latest")
    [finding] = findings
    assert finding.controls == ("5.2.2",)
    assert finding.object == ObjectRef("Deployment", "web", "team", "uid-web")
    assert finding.path == "spec.template.spec.containers[0].securityContext.privileged"
    assert finding.observed.startswith("privileged: ")
    assert "baseline" in finding.expected and "latest" in finding.expected
    assert finding.remediation == ws.REMEDIATION["privileged"]


@pytest.mark.parametrize("key, control", [("hostPID", "5.2.3"), ("hostIPC", "5.2.4"), ("hostNetwork", "5.2.5")])
def test_each_host_namespace_maps_to_its_own_control(key, control):
    obj = workload(spec=pod_spec(**{key: True}))
    [finding] = ws.pod_security_findings(obj, "baseline", "latest")
    assert finding.controls == (control,)
    assert finding.observed.startswith("hostNamespaces: ")


def test_all_host_namespaces_together_name_all_three_controls():
    obj = workload(spec=pod_spec(hostPID=True, hostIPC=True, hostNetwork=True))
    [finding] = ws.pod_security_findings(obj, "baseline", "latest")
    assert set(finding.controls) == {"5.2.3", "5.2.4", "5.2.5"}


def test_added_net_raw_is_5_2_8_and_other_capabilities_5_2_9():
    raw = container(securityContext={"capabilities": {"add": ["NET_RAW"]}})
    [finding] = ws.pod_security_findings(workload(spec=pod_spec([raw])), "baseline", "latest")
    assert finding.controls == ("5.2.8", "5.2.9")
    admin = container(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}})
    [finding] = ws.pod_security_findings(workload(spec=pod_spec([admin])), "baseline", "latest")
    assert finding.controls == ("5.2.9",)


def test_restricted_violations_pass_at_baseline_and_fail_at_restricted():
    loose = workload(spec={"containers": [{"name": "app", "image": "nginx:1.25"}]})
    assert ws.pod_security_findings(loose, "baseline", "latest") == []
    findings = ws.pod_security_findings(loose, "restricted", "latest")
    assert check_ids(findings) == {"allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile_restricted",
                                   "capabilities_restricted"}
    assert {c for f in findings for c in f.controls} == {"5.2.6", "5.2.7", "5.6.2", "5.2.8", "5.2.9"}


def test_the_namespace_version_decides_which_checks_apply():
    # runAsUser: 0 is a restricted violation only from policy v1.23 on.
    obj = workload(spec=pod_spec(securityContext={"runAsNonRoot": True, "runAsUser": 0,
                                                  "seccompProfile": {"type": "RuntimeDefault"}}))
    assert ws.pod_security_findings(obj, "restricted", "v1.22") == []
    [finding] = ws.pod_security_findings(obj, "restricted", "latest")
    assert finding.observed.startswith("runAsUser: ") and finding.controls == ("5.2.7",)


def test_cronjob_paths_lead_into_the_job_template():
    obj = workload("CronJob", spec=pod_spec(hostNetwork=True))
    [finding] = ws.pod_security_findings(obj, "baseline", "latest")
    assert finding.path == "spec.jobTemplate.spec.template.spec.hostNetwork"


def test_privileged_level_allows_everything():
    obj = workload(spec=pod_spec([container(securityContext={"privileged": True})], hostPID=True))
    assert ws.pod_security_findings(obj, "privileged", "latest") == []


def test_uninterpretable_field_is_a_finding_not_a_pass():
    obj = workload(spec=pod_spec(hostNetwork="yes"))
    [finding] = ws.pod_security_findings(obj, "baseline", "latest")
    assert "could not interpret" in finding.observed
    broken = {"kind": "Deployment", "metadata": {"name": "x", "namespace": "n"}, "spec": {"template": "oops"}}
    assert all("could not interpret spec.template" in f.observed for f in never_passes(
        ws.pod_security_findings, broken, "baseline", "latest"))


@pytest.mark.parametrize("bad", [
    "text", 5, None, {"kind": "Deployment"}, {"kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"}},
    workload(spec={"containers": []}),
    workload(spec={}),
])
def test_unjudgeable_workloads_are_not_verified(bad):
    with pytest.raises(NotVerified):
        ws.pod_security_findings(bad, "restricted", "latest")


@pytest.mark.parametrize("level, version", [("strict", "latest"), ("restricted", "v2"), (None, "latest")])
def test_bad_level_or_version_is_not_verified(level, version):
    with pytest.raises(NotVerified):
        ws.pod_security_findings(workload(), level, version)


# -- properties ------------------------------------------------------------------------------------
LEVELS = st.sampled_from(["baseline", "restricted"])
VERSIONS = st.sampled_from(["latest", "v1.0", "v1.22", "v1.25", "v1.35"])


@PROPERTY
@given(st.data(), LEVELS, VERSIONS)
def test_malformed_workloads_give_findings_or_not_verified(data, level, version):
    obj = data.draw(mangled(data.draw(workloads())))
    result = outcome(ws.pod_security_findings, obj, level, version)
    if isinstance(result, list):
        assert all(set(f.controls) <= set(ws.CIS_CONTROLS) for f in result)


@PROPERTY
@given(JSON, LEVELS, VERSIONS)
def test_arbitrary_values_give_findings_or_not_verified(value, level, version):
    outcome(ws.pod_security_findings, value, level, version)


@PROPERTY
@given(st.data(), LEVELS, VERSIONS)
def test_a_privileged_container_anywhere_is_never_passed(data, level, version):
    obj = data.draw(workloads())
    lists = ["initContainers", "containers"] + (["ephemeralContainers"] if obj["kind"] == "Pod" else [])
    bad = container("intruder", securityContext={"privileged": True})
    obj, where = with_container(obj, data.draw(st.sampled_from(lists)), data.draw(st.integers(0, 3)), bad)
    findings = never_passes(ws.pod_security_findings, obj, level, version)
    assert "privileged" in check_ids(findings)
    keep = protect_prefixes(where, ("kind",), ("metadata",))
    never_passes(ws.pod_security_findings, data.draw(mangled(obj, keep, root=False)), level, version)


@PROPERTY
@given(workloads(), VERSIONS)
def test_host_network_is_never_passed_and_always_5_2_5(obj, version):
    spec_of(obj)["hostNetwork"] = True
    findings = never_passes(ws.pod_security_findings, obj, "baseline", version)
    [host] = [f for f in findings if f.observed.startswith("hostNamespaces")]
    assert host.controls == ("5.2.5",) and host.path == f"{spec_path(obj['kind'])}.hostNetwork"
