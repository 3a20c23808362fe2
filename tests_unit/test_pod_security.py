"""Focused and property tests for kubeproof.pod_security."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeproof.pod_security import CHECKS, LATEST, LEVELS, Violation, evaluate, pod_spec_of

# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


def restricted_container(name: str = "app", **security_context) -> dict:
    context = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    context.update(security_context)
    return {"name": name, "image": "registry.k8s.io/pause", "securityContext": context}


def restricted_pod_spec(**fields) -> dict:
    spec = {
        "containers": [restricted_container()],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    spec.update(fields)
    return spec


def pod(spec: dict | None = None, annotations: dict | None = None) -> dict:
    metadata = {"name": "demo"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": restricted_pod_spec() if spec is None else spec}


def check_ids(violations: list[Violation]) -> set[str]:
    return {violation.check_id for violation in violations}


def windows_pod_without_linux_fields() -> dict:
    return pod({
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": True},
        "containers": [{"name": "app", "image": "mcr.microsoft.com/windows/nanoserver"}],
    })


# Workload kind -> how to wrap a pod template into it, and the expected path prefix.
WORKLOADS = {
    "Deployment": (lambda template: {"apiVersion": "apps/v1", "spec": {"template": template}}, "spec.template."),
    "StatefulSet": (lambda template: {"apiVersion": "apps/v1", "spec": {"template": template}}, "spec.template."),
    "DaemonSet": (lambda template: {"apiVersion": "apps/v1", "spec": {"template": template}}, "spec.template."),
    "ReplicaSet": (lambda template: {"apiVersion": "apps/v1", "spec": {"template": template}}, "spec.template."),
    "ReplicationController": (lambda template: {"apiVersion": "v1", "spec": {"template": template}}, "spec.template."),
    "Job": (lambda template: {"apiVersion": "batch/v1", "spec": {"template": template}}, "spec.template."),
    "CronJob": (
        lambda template: {"apiVersion": "batch/v1", "spec": {"jobTemplate": {"spec": {"template": template}}}},
        "spec.jobTemplate.spec.template.",
    ),
    "PodTemplate": (lambda template: {"apiVersion": "v1", "template": template}, "template."),
}


def workload(kind: str, spec: dict, annotations: dict | None = None) -> dict:
    wrap, _prefix = WORKLOADS[kind]
    template = {"metadata": {"labels": {"app": "demo"}}, "spec": spec}
    if annotations is not None:
        template["metadata"]["annotations"] = annotations
    return {"kind": kind, "metadata": {"name": "demo"}, **wrap(template)}


# ---------------------------------------------------------------------------
# Public surface
# ---------------------------------------------------------------------------


def test_public_constants():
    assert LEVELS == ("privileged", "baseline", "restricted")
    assert LATEST == "v1.37"


def test_compliant_pod_passes_every_level():
    for level in LEVELS:
        assert evaluate(pod(), level) == []


def test_privileged_level_reports_nothing():
    spec = restricted_pod_spec(hostNetwork=True, containers=[restricted_container(privileged=True)])
    assert evaluate(pod(spec), "privileged") == []


def test_violation_carries_check_level_path_and_detail():
    spec = restricted_pod_spec(containers=[restricted_container(privileged=True)])
    [violation] = evaluate(pod(spec), "baseline")
    assert violation == Violation(
        check_id="privileged",
        level="baseline",
        path="spec.containers[0].securityContext.privileged",
        detail=violation.detail,
    )
    assert '"app"' in violation.detail


def test_restricted_reports_baseline_checks_with_their_own_level():
    spec = restricted_pod_spec(hostPID=True)
    [violation] = evaluate(pod(spec), "restricted")
    assert (violation.check_id, violation.level, violation.path) == ("hostNamespaces", "baseline", "spec.hostPID")


def test_check_table_levels():
    assert {definition.level for definition in CHECKS.values()} == {"baseline", "restricted"}
    assert CHECKS["runAsUser"].minimum_version == "v1.23"
    assert CHECKS["hostProbesAndHostLifecycle"].minimum_version == "v1.34"


# ---------------------------------------------------------------------------
# Workload templates
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_workload_template_is_evaluated_once_with_object_relative_paths(kind):
    spec = restricted_pod_spec(
        initContainers=[restricted_container("init", privileged=True)],
        containers=[restricted_container("app", privileged=True)],
    )
    violations = evaluate(workload(kind, spec), "restricted")
    _wrap, prefix = WORKLOADS[kind]
    assert [(v.check_id, v.path) for v in violations] == [
        ("privileged", prefix + "spec.initContainers[0].securityContext.privileged"),
    ]
    assert '"init"' in violations[0].detail and '"app"' in violations[0].detail


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_workload_template_annotations_are_read(kind):
    annotations = {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
    [violation] = evaluate(workload(kind, restricted_pod_spec(), annotations), "baseline")
    _wrap, prefix = WORKLOADS[kind]
    assert violation.check_id == "appArmorProfile"
    assert violation.path == prefix + "metadata.annotations['container.apparmor.security.beta.kubernetes.io/app']"


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_pod_spec_of_workloads(kind):
    spec = restricted_pod_spec()
    obj = workload(kind, spec)
    metadata, found_spec, prefix = pod_spec_of(obj)
    assert found_spec is spec
    assert metadata == {"labels": {"app": "demo"}}
    assert prefix == WORKLOADS[kind][1]


def test_pod_spec_of_pod_and_other_kinds():
    obj = pod()
    assert pod_spec_of(obj) == (obj["metadata"], obj["spec"], "")
    assert pod_spec_of({"kind": "Service", "spec": {}}) is None
    assert pod_spec_of({"spec": {}}) is None
    assert pod_spec_of({"kind": "Deployment"}) == ({}, {}, "spec.template.")


def test_pod_spec_of_rejects_malformed_input():
    with pytest.raises(ValueError, match="dict"):
        pod_spec_of(["not", "an", "object"])
    with pytest.raises(ValueError, match="spec.template"):
        pod_spec_of({"kind": "Deployment", "spec": {"template": "oops"}})


def test_broken_template_fails_every_check_closed():
    violations = evaluate({"kind": "Deployment", "spec": {"template": ["oops"]}}, "baseline")
    assert check_ids(violations) == {cid for cid, d in CHECKS.items() if d.level == "baseline"}
    assert all(v.path == "spec.template" and "could not interpret" in v.detail for v in violations)


# ---------------------------------------------------------------------------
# Argument validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["", "Baseline", "strict", None, 1])
def test_unknown_level_is_rejected(level):
    with pytest.raises(ValueError, match="level"):
        evaluate(pod(), level)


@pytest.mark.parametrize("version", ["", "1.23", "v1", "v1.", "v2.0", "v1.023", "v1.23.0", "LATEST", None, 1.23])
def test_malformed_version_is_rejected(version):
    with pytest.raises(ValueError, match="version"):
        evaluate(pod(), "baseline", version)


@pytest.mark.parametrize("obj", [None, "Pod", ["kind", "Pod"], 42])
def test_non_dict_object_is_rejected(obj):
    with pytest.raises(ValueError, match="dict"):
        evaluate(obj, "baseline")


@pytest.mark.parametrize("kind", [None, "Service", "pod", 7])
def test_kind_without_pod_template_is_rejected(kind):
    with pytest.raises(ValueError, match="kind"):
        evaluate({"kind": kind, "spec": restricted_pod_spec()}, "baseline")


def test_versions_newer_than_known_behave_as_latest():
    spec = restricted_pod_spec(securityContext={
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "sysctls": [{"name": "net.ipv4.tcp_notsent_lowat", "value": "16384"}, {"name": "bogus", "value": "1"}],
    })
    latest = evaluate(pod(spec), "baseline", "latest")
    assert evaluate(pod(spec), "baseline", "v1.99") == latest == evaluate(pod(spec), "baseline", LATEST)


# ---------------------------------------------------------------------------
# Version behaviour
# ---------------------------------------------------------------------------


def _sysctl_pod(name: str) -> dict:
    return pod(restricted_pod_spec(securityContext={
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "sysctls": [{"name": name, "value": "secret-looking-value"}],
    }))


@pytest.mark.parametrize(("sysctl", "first_allowed"), [
    ("kernel.shm_rmid_forced", "v1.0"),
    ("net.ipv4.ip_local_reserved_ports", "v1.27"),
    ("net.ipv4.tcp_keepalive_time", "v1.29"),
    ("net.ipv4.tcp_rmem", "v1.32"),
    ("net.ipv4.tcp_slow_start_after_idle", "v1.37"),
])
def test_sysctl_allow_list_grows_by_version(sysctl, first_allowed):
    minor = int(first_allowed.split(".")[1])
    assert evaluate(_sysctl_pod(sysctl), "baseline", first_allowed) == []
    if minor > 0:
        [violation] = evaluate(_sysctl_pod(sysctl), "baseline", f"v1.{minor - 1}")
        assert violation.check_id == "sysctls"
        assert violation.path == "spec.securityContext.sysctls[0].name"
        assert "secret-looking-value" not in violation.detail


def test_run_as_user_exists_from_1_23():
    spec = restricted_pod_spec(containers=[restricted_container(runAsUser=0)])
    assert "runAsUser" not in check_ids(evaluate(pod(spec), "restricted", "v1.22"))
    assert "runAsUser" in check_ids(evaluate(pod(spec), "restricted", "v1.23"))


def test_allow_privilege_escalation_exists_from_1_8():
    spec = restricted_pod_spec(containers=[{"name": "app", "securityContext": {"capabilities": {"drop": ["ALL"]}}}])
    assert "allowPrivilegeEscalation" not in check_ids(evaluate(pod(spec), "restricted", "v1.7"))
    assert "allowPrivilegeEscalation" in check_ids(evaluate(pod(spec), "restricted", "v1.8"))


def test_capabilities_restricted_exists_from_1_22():
    spec = restricted_pod_spec(containers=[{"name": "app", "securityContext": {"allowPrivilegeEscalation": False}}])
    assert "capabilities_restricted" not in check_ids(evaluate(pod(spec), "restricted", "v1.21"))
    assert "capabilities_restricted" in check_ids(evaluate(pod(spec), "restricted", "v1.22"))


def test_seccomp_moves_from_annotations_to_fields_at_1_19():
    annotated = pod(restricted_pod_spec(securityContext={"runAsNonRoot": True}),
                    annotations={"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})
    assert check_ids(evaluate(annotated, "baseline", "v1.18")) == {"seccompProfile_baseline"}
    assert evaluate(annotated, "baseline", "v1.19") == []

    unconfined_field = pod(restricted_pod_spec(securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}}))
    assert evaluate(unconfined_field, "baseline", "v1.18") == []
    [violation] = evaluate(unconfined_field, "baseline", "v1.19")
    assert violation.path == "spec.securityContext.seccompProfile.type"


def test_seccomp_restricted_requires_an_explicit_profile_from_1_19():
    spec = restricted_pod_spec(securityContext={"runAsNonRoot": True})
    assert "seccompProfile_restricted" not in check_ids(evaluate(pod(spec), "restricted", "v1.18"))
    [violation] = evaluate(pod(spec), "restricted", "v1.19")
    assert violation.check_id == "seccompProfile_restricted"
    assert violation.path == "spec.containers[0].securityContext.seccompProfile.type"


def test_container_level_seccomp_satisfies_restricted():
    spec = restricted_pod_spec(
        securityContext={"runAsNonRoot": True},
        containers=[restricted_container(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})],
    )
    assert evaluate(pod(spec), "restricted") == []


def test_windows_pods_are_exempt_from_linux_only_restricted_checks_since_1_25():
    windows = windows_pod_without_linux_fields()
    assert check_ids(evaluate(windows, "restricted", "v1.24")) == {
        "allowPrivilegeEscalation", "capabilities_restricted", "seccompProfile_restricted",
    }
    assert evaluate(windows, "restricted", "v1.25") == []
    # runAsNonRoot is not Linux-only and still applies.
    del windows["spec"]["securityContext"]
    assert check_ids(evaluate(windows, "restricted", "v1.25")) == {"runAsNonRoot"}


def test_unreadable_os_name_blocks_the_windows_exemption():
    windows = windows_pod_without_linux_fields()
    windows["spec"]["os"] = {"name": ["windows"]}
    violations = evaluate(windows, "restricted")
    assert check_ids(violations) == {"allowPrivilegeEscalation", "capabilities_restricted", "seccompProfile_restricted"}
    assert all(v.path == "spec.os.name" and "could not interpret" in v.detail for v in violations)
    # When nothing would need excusing, the unreadable field is not a violation.
    linux_pod = pod(restricted_pod_spec(os={"name": 5}))
    assert evaluate(linux_pod, "restricted") == []


def _unmasked_pod(host_users) -> dict:
    return pod(restricted_pod_spec(hostUsers=host_users, containers=[restricted_container(procMount="Unmasked")]))


def test_proc_mount_user_namespace_relaxation_is_baseline_only_since_1_35():
    in_user_namespace = _unmasked_pod(False)
    assert check_ids(evaluate(in_user_namespace, "baseline", "v1.34")) == {"procMount"}
    assert evaluate(in_user_namespace, "baseline", "v1.35") == []
    assert check_ids(evaluate(in_user_namespace, "restricted", "v1.35")) == {"procMount_restricted"}
    assert check_ids(evaluate(_unmasked_pod(True), "baseline", "v1.35")) == {"procMount"}
    assert check_ids(evaluate(_unmasked_pod(True), "restricted", "v1.35")) == {"procMount", "procMount_restricted"}


def test_run_as_root_relaxed_for_user_namespace_pods_since_1_35():
    spec = restricted_pod_spec(hostUsers=False, securityContext={"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}})
    assert check_ids(evaluate(pod(spec), "restricted", "v1.34")) == {"runAsNonRoot", "runAsUser"}
    assert evaluate(pod(spec), "restricted", "v1.35") == []


def test_malformed_host_users_never_grants_the_relaxation():
    violations = evaluate(_unmasked_pod("false"), "baseline", "v1.35")
    assert [(v.check_id, v.path) for v in violations] == [("procMount", "spec.hostUsers")]
    assert "could not interpret" in violations[0].detail


def test_host_probe_and_lifecycle_hosts_are_checked_from_1_34():
    container = restricted_container()
    container["lifecycle"] = {"preStop": {"httpGet": {"host": "10.0.0.1", "port": 80}}}
    spec = restricted_pod_spec(containers=[container])
    assert evaluate(pod(spec), "baseline", "v1.33") == []
    [violation] = evaluate(pod(spec), "baseline", "v1.34")
    assert violation.check_id == "hostProbesAndHostLifecycle"
    assert violation.path == "spec.containers[0].lifecycle.preStop.httpGet.host"


def test_selinux_container_engine_type_allowed_from_1_31():
    spec = restricted_pod_spec(securityContext={
        "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
        "seLinuxOptions": {"type": "container_engine_t"},
    })
    assert check_ids(evaluate(pod(spec), "baseline", "v1.30")) == {"seLinuxOptions"}
    assert evaluate(pod(spec), "baseline", "v1.31") == []


def test_apparmor_field_and_annotation_are_checked_at_every_version():
    field_pod = pod(restricted_pod_spec(containers=[restricted_container(appArmorProfile={"type": "Unconfined"})]))
    annotated = pod(annotations={"container.apparmor.security.beta.kubernetes.io/app": "unconfined"})
    allowed = pod(
        restricted_pod_spec(securityContext={
            "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
            "appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-apparmor"},
        }),
        annotations={"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"},
    )
    for version in ("v1.0", "v1.29", "v1.30", "latest"):
        assert check_ids(evaluate(field_pod, "baseline", version)) == {"appArmorProfile"}
        assert check_ids(evaluate(annotated, "baseline", version)) == {"appArmorProfile"}
        assert evaluate(allowed, "baseline", version) == []


def test_restricted_volumes_allow_list():
    allowed_volumes = [
        {"name": "implicit-empty-dir"},
        {"name": "scratch", "emptyDir": {}},
        {"name": "tokens", "projected": {"sources": []}},
        {"name": "oci", "image": {"reference": "registry.k8s.io/pause"}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
    ]
    assert evaluate(pod(restricted_pod_spec(volumes=allowed_volumes)), "restricted") == []
    nfs = restricted_pod_spec(volumes=[{"name": "share", "nfs": {"server": "nfs", "path": "/"}}])
    [violation] = evaluate(pod(nfs), "restricted")
    assert (violation.check_id, violation.path) == ("restrictedVolumes", "spec.volumes[0].nfs")
    assert evaluate(pod(nfs), "baseline") == []


def test_volume_mixing_allowed_and_forbidden_sources_fails_closed():
    spec = restricted_pod_spec(volumes=[{"name": "sneaky", "secret": {"secretName": "s"}, "hostPath": {"path": "/"}}])
    assert check_ids(evaluate(pod(spec), "restricted")) == {"hostPathVolumes", "restrictedVolumes"}


def test_capability_names_are_matched_exactly():
    for capability in ("chown", "CAP_CHOWN", "NET_RAW"):
        spec = restricted_pod_spec(containers=[restricted_container(capabilities={"add": [capability]})])
        assert "capabilities_baseline" in check_ids(evaluate(pod(spec), "baseline"))
    spec = restricted_pod_spec(containers=[restricted_container(capabilities={"add": ["CHOWN"], "drop": ["ALL"]})])
    assert evaluate(pod(spec), "baseline") == []
    assert check_ids(evaluate(pod(spec), "restricted")) == {"capabilities_restricted"}


def test_ephemeral_containers_are_checked():
    spec = restricted_pod_spec(ephemeralContainers=[{"name": "debug", "securityContext": {"privileged": True}}])
    violations = evaluate(pod(spec), "baseline")
    assert [(v.check_id, v.path) for v in violations] == [
        ("privileged", "spec.ephemeralContainers[0].securityContext.privileged"),
    ]


def test_detail_never_echoes_environment_values():
    container = restricted_container(privileged=True)
    container["env"] = [{"name": "TOKEN", "value": "hunter2-very-secret"}]
    violations = evaluate(pod(restricted_pod_spec(containers=[container])), "restricted")
    assert violations and all("hunter2" not in v.detail for v in violations)


def test_long_values_are_truncated_in_detail():
    spec = restricted_pod_spec(containers=[restricted_container(procMount="X" * 500)])
    [violation] = evaluate(pod(spec), "baseline")
    assert len(violation.detail) < 160


# ---------------------------------------------------------------------------
# Fail-closed examples
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "check_id", "path"), [
    (restricted_pod_spec(containers="app"), "privileged", "spec.containers"),
    (restricted_pod_spec(containers=[["app"]]), "privileged", "spec.containers[0]"),
    (restricted_pod_spec(containers=[restricted_container(privileged="true")]), "privileged",
     "spec.containers[0].securityContext.privileged"),
    (restricted_pod_spec(containers=[restricted_container(privileged=1)]), "privileged",
     "spec.containers[0].securityContext.privileged"),
    (restricted_pod_spec(hostNetwork="yes"), "hostNamespaces", "spec.hostNetwork"),
    (restricted_pod_spec(volumes={"name": "x"}), "hostPathVolumes", "spec.volumes"),
    (restricted_pod_spec(containers=[{**restricted_container(), "ports": [{"hostPort": "80"}]}]), "hostPorts",
     "spec.containers[0].ports[0].hostPort"),
    (restricted_pod_spec(containers=[restricted_container(capabilities={"add": "NET_ADMIN", "drop": ["ALL"]})]),
     "capabilities_baseline", "spec.containers[0].securityContext.capabilities.add"),
    (restricted_pod_spec(securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
                                          "sysctls": "kernel.shm_rmid_forced"}), "sysctls",
     "spec.securityContext.sysctls"),
    (restricted_pod_spec(containers=[restricted_container(allowPrivilegeEscalation="false")]),
     "allowPrivilegeEscalation", "spec.containers[0].securityContext.allowPrivilegeEscalation"),
    (restricted_pod_spec(securityContext={"runAsNonRoot": "true", "seccompProfile": {"type": "RuntimeDefault"}}),
     "runAsNonRoot", "spec.securityContext.runAsNonRoot"),
    (restricted_pod_spec(containers=[restricted_container(runAsUser="0")]), "runAsUser",
     "spec.containers[0].securityContext.runAsUser"),
    (restricted_pod_spec(securityContext=["runAsNonRoot"]), "seccompProfile_restricted", "spec.securityContext"),
])
def test_uninterpretable_fields_are_reported_not_ignored(spec, check_id, path):
    violations = {v.check_id: v for v in evaluate(pod(spec), "restricted")}
    assert check_id in violations
    assert violations[check_id].path == path
    assert "could not interpret" in violations[check_id].detail


def test_null_means_not_set():
    spec = restricted_pod_spec(hostNetwork=None, volumes=None, initContainers=None,
                               containers=[restricted_container(privileged=None, procMount=None)])
    assert evaluate(pod(spec), "restricted") == []


def test_malformed_annotations_are_reported_by_annotation_checks():
    obj = pod()
    obj["metadata"]["annotations"] = "container.apparmor.security.beta.kubernetes.io/app=unconfined"
    assert check_ids(evaluate(obj, "baseline", "v1.18")) == {"appArmorProfile", "seccompProfile_baseline"}
    obj["metadata"]["annotations"] = {"container.apparmor.security.beta.kubernetes.io/app": ["unconfined"]}
    assert check_ids(evaluate(obj, "baseline")) == {"appArmorProfile"}


def test_missing_spec_is_an_empty_pod():
    assert evaluate({"kind": "Pod"}, "restricted") == []


# ---------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------

FIELD_NAMES = sorted({
    "containers", "initContainers", "ephemeralContainers", "securityContext", "privileged", "capabilities",
    "add", "drop", "hostNetwork", "hostPID", "hostIPC", "hostUsers", "volumes", "hostPath", "emptyDir", "nfs",
    "secret", "ports", "hostPort", "procMount", "seccompProfile", "type", "appArmorProfile", "seLinuxOptions",
    "user", "role", "sysctls", "name", "windowsOptions", "hostProcess", "livenessProbe", "readinessProbe",
    "startupProbe", "httpGet", "tcpSocket", "host", "lifecycle", "postStart", "preStop", "os", "runAsUser",
    "runAsNonRoot", "allowPrivilegeEscalation", "metadata", "annotations", "spec", "template",
    "seccomp.security.alpha.kubernetes.io/pod", "container.apparmor.security.beta.kubernetes.io/app",
})
SCALARS = (
    st.none() | st.booleans() | st.integers(min_value=-2, max_value=70000) | st.floats(allow_nan=True)
    | st.sampled_from(["", "ALL", "Default", "Unmasked", "RuntimeDefault", "Unconfined", "windows", "app",
                       "unconfined", "localhost/x", "container_t", "NET_RAW", "kernel.shm_rmid_forced"])
    | st.text(max_size=6)
)
KEYS = st.sampled_from(FIELD_NAMES) | st.text(max_size=6)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)
VERSIONS = st.sampled_from(["latest", LATEST, "v1.99"]) | st.integers(0, 37).map(lambda minor: f"v1.{minor}")
LEVEL = st.sampled_from(LEVELS)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_well_formed(violations, level):
    assert isinstance(violations, list)
    for violation in violations:
        assert isinstance(violation, Violation)
        assert violation.check_id in CHECKS
        assert violation.level == CHECKS[violation.check_id].level
        assert level == "restricted" or violation.level == "baseline"
        assert isinstance(violation.path, str) and violation.path
        assert isinstance(violation.detail, str) and violation.detail
        assert "evaluation failed unexpectedly" not in violation.detail


@PROPERTY_SETTINGS
@given(spec=JSON_LIKE, metadata=JSON_LIKE, level=LEVEL, version=VERSIONS)
def test_never_raises_on_arbitrary_pod(spec, metadata, level, version):
    obj = {"kind": "Pod", "metadata": metadata, "spec": spec}
    _assert_well_formed(evaluate(obj, level, version), level)


@PROPERTY_SETTINGS
@given(template=JSON_LIKE, kind=st.sampled_from(sorted(WORKLOADS)), level=LEVEL, version=VERSIONS)
def test_never_raises_on_arbitrary_workload_template(template, kind, level, version):
    wrap, prefix = WORKLOADS[kind]
    violations = evaluate({"kind": kind, **wrap(template)}, level, version)
    _assert_well_formed(violations, level)
    assert all(v.path.startswith(prefix.rstrip(".")) for v in violations)


@PROPERTY_SETTINGS
@given(containers=st.lists(st.dictionaries(KEYS, JSON_LIKE, max_size=4), max_size=3),
       pod_context=JSON_LIKE, level=LEVEL, version=VERSIONS)
def test_never_raises_on_pod_shaped_garbage(containers, pod_context, level, version):
    spec = {"containers": containers, "initContainers": containers[::-1], "securityContext": pod_context,
            "volumes": containers, "os": pod_context, "hostUsers": pod_context}
    _assert_well_formed(evaluate(pod(spec), level, version), level)


@PROPERTY_SETTINGS
@given(privileged=JSON_LIKE, position=st.integers(0, 2), kind=st.sampled_from(["Pod", *sorted(WORKLOADS)]),
       version=VERSIONS)
def test_anything_but_false_or_unset_privileged_is_rejected(privileged, position, kind, version):
    containers = [restricted_container(f"c{index}") for index in range(3)]
    containers[position]["securityContext"]["privileged"] = privileged
    spec = restricted_pod_spec(containers=containers)
    obj = pod(spec) if kind == "Pod" else workload(kind, spec)
    for level in ("baseline", "restricted"):
        reported = check_ids(evaluate(obj, level, version))
        assert ("privileged" in reported) == (privileged is not False and privileged is not None)


@PROPERTY_SETTINGS
@given(field=st.sampled_from(["hostNetwork", "hostPID", "hostIPC"]), value=JSON_LIKE, version=VERSIONS)
def test_anything_but_false_or_unset_host_namespace_is_rejected(field, value, version):
    obj = pod(restricted_pod_spec(**{field: value}))
    reported = check_ids(evaluate(obj, "restricted", version))
    assert ("hostNamespaces" in reported) == (value is not False and value is not None)


@PROPERTY_SETTINGS
@given(value=JSON_LIKE)
def test_anything_but_false_allow_privilege_escalation_is_rejected_at_restricted(value):
    spec = restricted_pod_spec(containers=[restricted_container(allowPrivilegeEscalation=value)])
    assert (evaluate(pod(spec), "restricted") == []) == (value is False)


@PROPERTY_SETTINGS
@given(spec=JSON_LIKE, metadata=JSON_LIKE, version=VERSIONS)
def test_restricted_reports_everything_baseline_reports(spec, metadata, version):
    obj = {"kind": "Pod", "metadata": metadata, "spec": spec}
    baseline = evaluate(obj, "baseline", version)
    restricted = evaluate(obj, "restricted", version)
    assert [v for v in restricted if v.level == "baseline"] == baseline


@PROPERTY_SETTINGS
@given(labels=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4), version=VERSIONS)
def test_irrelevant_fields_do_not_affect_a_compliant_pod(labels, version):
    obj = pod()
    obj["metadata"]["labels"] = labels
    obj["spec"]["containers"][0]["env"] = [{"name": key or "K", "value": value} for key, value in labels.items()]
    assert evaluate(obj, "restricted", version) == []


@PROPERTY_SETTINGS
@given(spec=JSON_LIKE, level=LEVEL, version=VERSIONS)
def test_evaluate_does_not_mutate_its_input(spec, level, version):
    obj = {"kind": "Pod", "spec": spec}
    before = copy.deepcopy(obj)
    evaluate(obj, level, version)
    assert repr(obj) == repr(before)
