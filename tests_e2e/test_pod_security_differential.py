"""`kubeproof.pod_security.evaluate` against the PodSecurity admission of a real API server.

One hardened embedded cluster; a namespace per level (baseline, restricted) and policy version
(v1.0 to v1.37 and latest), labelled enforce=<level>, enforce-version=<version> and the same for
warn. Hypothesis generates Pods, workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
CronJob) and ephemeral containers (tests_e2e/psa_strategies.py); each one is dry-run at the pinned
versions v1.24, v1.28, v1.31, v1.35 and latest, at one version it draws, and on both sides of every
upstream policy boundary (1.8 ... 1.37) its fields concern. PodSecurity's answer must match the
evaluator's: the same allow/deny, and the same set of check ids (PodSecurity's reason phrases
mapped to ids, tests_e2e/psa_lab.py). Zero disagreements allowed.

What counts as PodSecurity's answer (details and reasons in psa_lab.py): for Pods, a dry-run create
refused with 403 "violates PodSecurity" (deny) or accepted (allow); for workloads, the
"would violate PodSecurity" warning of the dry-run create, because upstream judges pod templates in
warn/audit mode only and never refuses a workload (test_podsecurity_judges_templates_only_in_warn_mode
pins that down); for ephemeral containers, a dry-run patch of the pods/ephemeralcontainers
subresource of a base pod, which PodSecurity judges in enforce mode as an update of the whole pod.
An object the API server's validation refuses (422) is discarded and counted; the discard rate must
stay under 20 %, or the strategies are generating the wrong things.

Generation is derandomized (the same objects every run, reproducible in CI). Counterexamples found
by hypothesis are kept below as explicit examples; so are the policy boundaries chosen by hand.
KUBEPROOF_PSA_EXAMPLES sets the number of pods per level (default 300; workloads and ephemeral
containers get a third of it each). bench/psa_differential.py runs the same comparison at scale.
"""

from __future__ import annotations

import os

import psa_lab
import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from psa_lab import ALL_VERSIONS, LEVELS, Discard, Lab, namespace_for
from psa_strategies import IMAGE, LABELS, ephemeral_cases, pods, workload, workloads

from kubeproof.controlplane import EmbeddedCluster
from kubeproof.pod_security import CHECKS

EXAMPLES = int(os.environ.get("KUBEPROOF_PSA_EXAMPLES", "300"))
SIDE_EXAMPLES = max(EXAMPLES // 3, 20)
MAX_DISCARD_RATE = 0.20


# Each example is checked at the pinned versions, at one version it draws and on both sides of
# every upstream policy boundary that concerns its fields (psa_lab.boundary_versions).
VERSIONS = {"version": st.sampled_from(ALL_VERSIONS)}


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def lab():
    with EmbeddedCluster(profile="hardened") as cluster:
        prepared = Lab(cluster).prepare()
        yield prepared
        summary = {level: {kind: stats.summary() for kind, stats in kinds.items()}
                   for level, kinds in prepared.stats.items()}
        print(f"\nPod Security differential: {summary}")


def _pod(spec: dict, annotations: dict | None = None) -> dict:
    metadata = {"name": "psa", "labels": dict(LABELS)}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _container(name: str = "app0", **fields) -> dict:
    return {"name": name, "image": IMAGE, **fields}


RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}

# Cases chosen by hand: (object, drawn version); each is also checked at the pinned versions and
# around the boundaries its fields concern. Counterexamples hypothesis finds are appended here.
POD_EXAMPLES = [
    # Windows pods are exempt from the Linux-only restricted controls from 1.25 on.
    (_pod({"os": {"name": "windows"}, "containers": [_container()]}), "v1.0"),
    # Under hostNetwork the API server defaults hostPort to containerPort: PodSecurity sees a hostPort.
    (_pod({"hostNetwork": True, "containers": [_container(ports=[{"containerPort": 8080}])]}), "v1.0"),
    # A pod in its own user namespace is relaxed for runAsNonRoot, runAsUser and baseline procMount
    # from 1.35 on; restricted's own procMount check is not relaxed.
    (_pod({"hostUsers": False, "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
           "containers": [_container(securityContext={"allowPrivilegeEscalation": False, "procMount": "Unmasked",
                                                      "capabilities": {"drop": ["ALL"]}})]}), "v1.23"),
    # Capability names are compared exactly: lower case and CAP_ prefixes are not the default set.
    (_pod({"containers": [_container(securityContext={"capabilities": {"add": ["chown", "CAP_NET_RAW"],
                                                                        "drop": ["all"]}})]}), "v1.0"),
    # Sysctls: the slash spelling is not the safe name; two names joined the safe set in 1.37.
    (_pod({"securityContext": {"sysctls": [{"name": "net/ipv4/tcp_syncookies", "value": "1"},
                                           {"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"}]},
           "containers": [_container()]}), "v1.26"),
    # Before 1.19 seccomp was judged by annotations only.
    (_pod({"containers": [_container(securityContext=RESTRICTED_CONTAINER)]},
          {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}), "v1.0"),
    # The AppArmor annotation alone: the API server copies it into the container's field.
    (_pod({"containers": [_container(securityContext=RESTRICTED_CONTAINER)]},
          {"container.apparmor.security.beta.kubernetes.io/app0": "unconfined"}), "v1.0"),
    # A volume with no source becomes an emptyDir; hostPath is baseline's and restricted's.
    (_pod({"volumes": [{"name": "v0"}, {"name": "v1", "hostPath": {"path": "/"}}],
           "containers": [_container(securityContext=RESTRICTED_CONTAINER)]}), "v1.0"),
    # Probe and lifecycle hosts are judged from 1.34; an empty host is no host.
    (_pod({"containers": [_container(
        readinessProbe={"httpGet": {"port": 8080, "host": "localhost"}},
        livenessProbe={"tcpSocket": {"port": 8080, "host": ""}},
        lifecycle={"preStop": {"tcpSocket": {"port": 8080, "host": "10.1.2.3"}}})]}), "v1.0"),
    # container_engine_t joined the allowed SELinux types in 1.31; user and role never are.
    (_pod({"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}},
           "containers": [_container(securityContext={"seLinuxOptions": {"role": "system_r", "level": "s0"}})]}),
     "v1.0"),
    # allowPrivilegeEscalation is a restricted control from 1.8 on only.
    (_pod({"securityContext": {"runAsNonRoot": True},
           "initContainers": [_container("init0", restartPolicy="Always",
                                         securityContext={"windowsOptions": {"hostProcess": False}})],
           "containers": [_container()]}), "v1.0"),
]

WORKLOAD_EXAMPLES = [
    # A template's own annotations are what PodSecurity reads (no copy into fields for templates).
    (workload("CronJob", {"metadata": {"labels": dict(LABELS), "annotations": {
        "container.apparmor.security.beta.kubernetes.io/app0": "unconfined"}},
        "spec": {"restartPolicy": "Never", "containers": [_container(securityContext=RESTRICTED_CONTAINER)]}}),
     "v1.0"),
    (workload("StatefulSet", {"metadata": {"labels": dict(LABELS)}, "spec": {
        "hostNetwork": True, "containers": [_container(ports=[{"containerPort": 8080}])]}}), "v1.0"),
]

EPHEMERAL_EXAMPLES = [
    (("windows", [_container("debug0")]), "v1.0"),
    (("user-namespace", [_container("debug0", securityContext={"procMount": "Unmasked", "runAsUser": 0})]),
     "v1.0"),
    (("restricted", [_container("debug0", securityContext={"privileged": True})]), "v1.0"),
]


def _agree(disagreements: list[dict], obj) -> None:
    assert not disagreements, f"PodSecurity and kubeproof disagree on {obj}:\n{disagreements}"


def _with_examples(test, cases, name: str):
    for obj, version in reversed(cases):
        test = example(**{name: obj, "version": version})(test)
    return test


def _assert_sample(stats: psa_lab.Stats, examples: int) -> None:
    assert stats.examples >= examples, stats.summary()
    assert stats.discard_rate < MAX_DISCARD_RATE, (
        f"{stats.discard_rate:.1%} of generated objects were refused by validation: {stats.summary()}")
    assert stats.disagreements == 0, stats.failures[:3]


def _expected_checks(level: str) -> set[str]:
    """Every check that can deny at `level` over the versions drawn."""
    ids = {check_id for check_id, definition in CHECKS.items() if level == "restricted" or definition.level == level}
    # Restricted always replaces hostPathVolumes by restrictedVolumes.
    return ids - {"hostPathVolumes"} if level == "restricted" else ids


@pytest.mark.parametrize("level", LEVELS)
def test_pods_agree_with_podsecurity(lab, level):
    def agree(pod, version):
        try:
            _agree(lab.compare(pod, level, version), pod)
        except Discard:
            reject()

    run = _settings(EXAMPLES)(given(pod=pods(), **VERSIONS)(
        _with_examples(agree, POD_EXAMPLES, "pod")))
    run()
    stats = lab.stats[level]["Pod"]
    _assert_sample(stats, EXAMPLES)
    # The strategies reach every control: each one denied some generated pod.
    assert _expected_checks(level) <= set(stats.checks_seen), sorted(_expected_checks(level) - set(stats.checks_seen))
    assert 0.2 < stats.denied / stats.comparisons < 0.95, stats.summary()


@pytest.mark.parametrize("level", LEVELS)
def test_workload_templates_agree_with_podsecurity(lab, level):
    def agree(obj, version):
        try:
            _agree(lab.compare(obj, level, version), obj)
        except Discard:
            reject()

    run = _settings(SIDE_EXAMPLES)(given(obj=workloads(), **VERSIONS)(
        _with_examples(agree, WORKLOAD_EXAMPLES, "obj")))
    run()
    _assert_sample(lab.stats[level]["workload"], SIDE_EXAMPLES)


@pytest.mark.parametrize("level", LEVELS)
def test_ephemeral_containers_agree_with_podsecurity(lab, level):
    def agree(case, version):
        base, containers = case
        try:
            _agree(lab.compare_ephemeral(base, containers, level, version), case)
        except Discard:
            reject()

    run = _settings(SIDE_EXAMPLES)(given(case=ephemeral_cases(), **VERSIONS)(
        _with_examples(agree, EPHEMERAL_EXAMPLES, "case")))
    run()
    _assert_sample(lab.stats[level]["ephemeral"], SIDE_EXAMPLES)


def test_podsecurity_judges_templates_only_in_warn_mode(lab):
    """Why workloads are compared on warnings: the same privileged template is refused as a Pod
    and admitted, with a warning, as a Deployment in an enforce=restricted namespace."""
    template = {"metadata": {"labels": dict(LABELS)},
                "spec": {"containers": [_container(securityContext={"privileged": True})]}}
    namespace = namespace_for("restricted", "latest")
    as_pod = lab.backend.dry_run("POST", f"/api/v1/namespaces/{namespace}/pods",
                                 _pod(template["spec"]))
    as_deployment = lab.backend.dry_run("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments",
                                        workload("Deployment", template))
    assert as_pod.status == 403 and "violates PodSecurity" in as_pod.message, as_pod.summary()
    assert as_deployment.status == 201, as_deployment.summary()
    assert any(w.startswith('would violate PodSecurity "restricted:latest": ') and "privileged" in w
               for w in as_deployment.warnings), as_deployment.summary()


def test_reason_phrases_split_outside_parentheses():
    detail = ('unrestricted capabilities (container "a" must not include "SYS_ADMIN", "chown" in '
              'securityContext.capabilities.add), hostPort (container "a" uses hostPort 80), '
              'seccompProfile (forbidden annotations a="x, y (z)", b="u")')
    assert psa_lab.split_reasons(detail) == ["unrestricted capabilities", "hostPort", "seccompProfile"]
    assert psa_lab._check_for_reason("seccompProfile", "restricted", 18) == "seccompProfile_baseline"
    assert psa_lab._check_for_reason("seccompProfile", "restricted", 19) == "seccompProfile_restricted"
    assert psa_lab._check_for_reason("procMount", "baseline", 37) == "procMount"
    with pytest.raises(psa_lab.UnexpectedAnswer):
        psa_lab._check_for_reason("something new", "baseline", 37)
