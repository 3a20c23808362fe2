"""Versioned evaluator of the Kubernetes Pod Security Standards.

`evaluate(obj, level, version)` answers the question the PodSecurity admission
plugin answers for a namespace labelled
``pod-security.kubernetes.io/enforce: <level>`` and
``pod-security.kubernetes.io/enforce-version: <version>``: which controls of the
standard does this Pod (or the pod template of a workload) break?

Design notes
------------
* Every control is one check with the upstream check id, the level it belongs
  to and the policy versions at which its behaviour changed (`CHECKS`).  A
  policy version selects, per check, the newest behaviour whose minimum version
  is not above it; checks whose first version is newer do not apply.
* Restricted runs every baseline check as well.  Upstream lets a few
  restricted checks *replace* their baseline twin (e.g. restrictedVolumes
  replaces hostPathVolumes); we keep both, so a violation is always reported
  under the control it breaks.  For pods that pass API validation the
  allow/deny outcome is the same, because the only pods the replacement would
  let through are Windows pods carrying Linux-only fields, which the API
  server rejects anyway.
* The evaluator fails closed.  Input is a plain dict parsed from YAML/JSON and
  may be malformed.  ``None`` is read as "field not set", exactly as the API
  server's decoder would; any other unexpected type in a field a check reads
  makes that check report a violation saying the value could not be
  interpreted, instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubeproof.pod_security_pod import (  # the pod as the checks read it
    _POD_TEMPLATE_LOCATIONS,
    _CheckImplementation,
    _child,
    _child_mapping,
    _Container,
    _Finding,
    _items,
    _join_path,
    _locate_pod,
    _Located,
    _Pod,
    _quote,
    _read_bool,
    _read_int,
    _read_list,
    _read_mapping,
    _read_str,
    _require_mapping_object,
    _Uninterpretable,
    pod_spec_of,
)

__all__ = [
    "CHECKS",
    "CheckDefinition",
    "LATEST",
    "LEVELS",
    "Violation",
    "evaluate",
    "pod_spec_of",
]

LEVELS = ("privileged", "baseline", "restricted")
LATEST = "v1.37"

_LATEST_MINOR = 37
# Same grammar as the enforce-version namespace label: "latest" or "v1.<minor>".
_VERSION_PATTERN = re.compile(r"v1\.(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class Violation:
    check_id: str
    level: str
    path: str
    detail: str


# --------------------------------------------------------------------------
# Baseline checks
# --------------------------------------------------------------------------


def _host_namespaces(pod: _Pod) -> list[_Finding]:
    findings = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        located = pod.spec_child(key)
        if _read_bool(located):
            findings.append(_Finding(located.path, f"pod shares the host namespace ({key}=true)"))
    return findings


def _privileged(pod: _Pod) -> list[_Finding]:
    findings = []
    for container in pod.containers():
        context, context_path = container.security_context()
        located = _child(context, context_path, "privileged")
        if _read_bool(located):
            findings.append(_Finding(located.path, f"{container.label} runs privileged"))
    return findings


_BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})


def _added_capabilities(container: _Container) -> Iterator[tuple[str, str]]:
    """(capability, path) for every entry of securityContext.capabilities.add."""
    context, context_path = container.security_context()
    capabilities, capabilities_path = _child_mapping(context, context_path, "capabilities")
    added = _child(capabilities, capabilities_path, "add")
    for located in _items(_read_list(added), added.path):
        capability = _read_str(located)
        if capability is None:
            raise _Uninterpretable(located.path, "a capability name", None)
        yield capability, located.path


def _capabilities_baseline(pod: _Pod) -> list[_Finding]:
    # Names are compared exactly: "chown" or "CAP_CHOWN" are not the default CHOWN.
    return [
        _Finding(path, f"{container.label} adds capability {_quote(capability)} beyond the default set")
        for container in pod.containers()
        for capability, path in _added_capabilities(container)
        if capability not in _BASELINE_CAPABILITIES
    ]


def _host_path_volumes(pod: _Pod) -> list[_Finding]:
    return [
        _Finding(_join_path(path, "hostPath"), f"{label} mounts a hostPath")
        for fields, path, label in pod.volumes()
        if fields.get("hostPath") is not None
    ]


def _host_ports(pod: _Pod) -> list[_Finding]:
    findings = []
    for container in pod.containers():
        ports = _child(container.fields, container.path, "ports")
        for located in _items(_read_list(ports), ports.path):
            host_port = _child(_read_mapping(located), located.path, "hostPort")
            number = _read_int(host_port)
            if number:
                findings.append(_Finding(host_port.path, f"{container.label} binds host port {number}"))
    return findings


_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _apparmor_annotation_allowed(profile: str) -> bool:
    return profile == "" or profile == "runtime/default" or profile.startswith("localhost/")


def _apparmor_field_finding(context: Mapping, context_path: str, owner: str) -> _Finding | None:
    if context.get("appArmorProfile") is None:
        return None
    profile, profile_path = _child_mapping(context, context_path, "appArmorProfile")
    located = _child(profile, profile_path, "type")
    profile_type = _read_str(located) or ""
    if profile_type in _APPARMOR_PROFILE_TYPES:
        return None
    return _Finding(located.path, f"{owner} sets AppArmor profile type {_quote(profile_type)}")


def _app_armor_profile(pod: _Pod) -> list[_Finding]:
    # Upstream checks the field and the legacy annotation at every policy
    # version (the field check was folded into the 1.0 behaviour), so do we.
    findings = []
    context, context_path = pod.security_context()
    owners = [(context, context_path, "pod")]
    owners += [(*container.security_context(), container.label) for container in pod.containers()]
    for owner_context, owner_path, owner in owners:
        finding = _apparmor_field_finding(owner_context, owner_path, owner)
        if finding:
            findings.append(finding)
    annotations, annotations_path = pod.annotations()
    for key, value in annotations.items():
        if not (isinstance(key, str) and key.startswith(_APPARMOR_ANNOTATION_PREFIX)):
            continue
        path = f"{annotations_path}[{key!r}]"
        profile = _read_str(_Located(path, value)) or ""
        if not _apparmor_annotation_allowed(profile):
            findings.append(_Finding(path, f"annotation requests AppArmor profile {_quote(profile)}"))
    return findings


_SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
_SELINUX_TYPES_1_31 = _SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux_findings(context: Mapping, context_path: str, owner: str, allowed_types: frozenset) -> list[_Finding]:
    options, options_path = _child_mapping(context, context_path, "seLinuxOptions")
    findings = []
    selinux_type = _child(options, options_path, "type")
    type_name = _read_str(selinux_type) or ""
    if type_name not in allowed_types:
        findings.append(_Finding(selinux_type.path, f"{owner} uses SELinux type {_quote(type_name)}"))
    for key in ("user", "role"):
        located = _child(options, options_path, key)
        if _read_str(located):
            findings.append(_Finding(located.path, f"{owner} sets a custom SELinux {key}"))
    return findings


def _selinux_options(allowed_types: frozenset) -> _CheckImplementation:
    def check(pod: _Pod) -> list[_Finding]:
        context, context_path = pod.security_context()
        findings = _selinux_findings(context, context_path, "pod", allowed_types)
        for container in pod.containers():
            findings += _selinux_findings(*container.security_context(), container.label, allowed_types)
        return findings

    return check


def _proc_mount(pod: _Pod) -> list[_Finding]:
    findings = []
    for container in pod.containers():
        context, context_path = container.security_context()
        located = _child(context, context_path, "procMount")
        proc_mount = _read_str(located)
        if proc_mount is not None and proc_mount != "Default":
            findings.append(_Finding(located.path, f"{container.label} uses procMount {_quote(proc_mount)}"))
    return findings


_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
_SECCOMP_PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _seccomp_annotation_allowed(profile: str) -> bool:
    return profile in ("runtime/default", "docker/default") or profile.startswith("localhost/")


def _seccomp_annotation_finding(annotations: Mapping, annotations_path: str, key: str) -> _Finding | None:
    if key not in annotations:
        return None
    path = f"{annotations_path}[{key!r}]"
    profile = _read_str(_Located(path, annotations[key])) or ""
    if _seccomp_annotation_allowed(profile):
        return None
    return _Finding(path, f"annotation requests seccomp profile {_quote(profile)}")


def _seccomp_baseline_annotations(pod: _Pod) -> list[_Finding]:
    # Before 1.19 seccomp was configured through alpha annotations, one for
    # the pod and one per container name.
    annotations, annotations_path = pod.annotations()
    keys = [_SECCOMP_POD_ANNOTATION]
    for container in pod.containers():
        name = _read_str(_child(container.fields, container.path, "name"))
        keys.append(_SECCOMP_CONTAINER_ANNOTATION_PREFIX + (name or ""))
    findings = [_seccomp_annotation_finding(annotations, annotations_path, key) for key in keys]
    return [finding for finding in findings if finding]


def _explicit_seccomp_type(context: Mapping, context_path: str) -> tuple[str | None, str]:
    """(profile type, path); the type is None when no seccompProfile is set."""
    profile, profile_path = _child_mapping(context, context_path, "seccompProfile")
    located = _child(profile, profile_path, "type")
    if context.get("seccompProfile") is None:
        return None, located.path  # the path still names where the profile belongs
    return _read_str(located) or "", located.path


def _seccomp_baseline_fields(pod: _Pod) -> list[_Finding]:
    owners = [(*pod.security_context(), "pod")]
    owners += [(*container.security_context(), container.label) for container in pod.containers()]
    findings = []
    for context, context_path, owner in owners:
        profile_type, path = _explicit_seccomp_type(context, context_path)
        if profile_type is not None and profile_type not in _SECCOMP_PROFILE_TYPES:
            findings.append(_Finding(path, f"{owner} sets seccomp profile type {_quote(profile_type)}"))
    return findings


_SYSCTLS_1_0 = frozenset({
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
})
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
_SYSCTLS_1_37 = _SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def _sysctls(allowed_names: frozenset) -> _CheckImplementation:
    def check(pod: _Pod) -> list[_Finding]:
        context, context_path = pod.security_context()
        sysctls = _child(context, context_path, "sysctls")
        findings = []
        for located in _items(_read_list(sysctls), sysctls.path):
            name = _child(_read_mapping(located), located.path, "name")
            sysctl_name = _read_str(name)
            if sysctl_name is None:
                raise _Uninterpretable(name.path, "a sysctl name", None)
            if sysctl_name not in allowed_names:
                # Only the name is reported; sysctl values stay out of reports.
                findings.append(_Finding(name.path, f"sysctl {_quote(sysctl_name)} is not in the safe set"))
        return findings

    return check


def _windows_host_process(pod: _Pod) -> list[_Finding]:
    owners = [(*pod.security_context(), "pod")]
    owners += [(*container.security_context(), container.label) for container in pod.containers()]
    findings = []
    for context, context_path, owner in owners:
        options, options_path = _child_mapping(context, context_path, "windowsOptions")
        located = _child(options, options_path, "hostProcess")
        if _read_bool(located):
            findings.append(_Finding(located.path, f"{owner} requests a Windows HostProcess container"))
    return findings


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_LIFECYCLE_HANDLERS = ("postStart", "preStop")


def _handler_host_findings(handler: Mapping, handler_path: str, owner: str) -> list[_Finding]:
    findings = []
    for action in ("httpGet", "tcpSocket"):
        action_fields, action_path = _child_mapping(handler, handler_path, action)
        located = _child(action_fields, action_path, "host")
        host = _read_str(located)
        if host:
            findings.append(_Finding(located.path, f"{owner} points a probe or lifecycle hook at host {_quote(host)}"))
    return findings


def _host_probes_and_host_lifecycle(pod: _Pod) -> list[_Finding]:
    findings = []
    for container in pod.containers():
        handlers = [_child_mapping(container.fields, container.path, probe) for probe in _PROBES]
        lifecycle, lifecycle_path = _child_mapping(container.fields, container.path, "lifecycle")
        handlers += [_child_mapping(lifecycle, lifecycle_path, hook) for hook in _LIFECYCLE_HANDLERS]
        for handler, handler_path in handlers:
            findings += _handler_host_findings(handler, handler_path, container.label)
    return findings


# --------------------------------------------------------------------------
# Restricted checks
# --------------------------------------------------------------------------

_RESTRICTED_ALLOWED_VOLUME_SOURCES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
    "persistentVolumeClaim", "projected", "secret",
})


def _restricted_volumes(pod: _Pod) -> list[_Finding]:
    # A volume naming no source is defaulted to emptyDir by the API server.
    # Unlike upstream, a volume that also names a forbidden source is not
    # excused by an allowed one: the API rejects it and we fail closed.
    # Any key besides "name" is a source; unknown keys count as forbidden.
    findings = []
    for fields, path, label in pod.volumes():
        for key, value in fields.items():
            if key == "name" or value is None:
                continue
            source_path = _join_path(path, str(key))
            if key in _RESTRICTED_ALLOWED_VOLUME_SOURCES:
                _read_mapping(_Located(source_path, value))
                continue
            findings.append(_Finding(source_path, f"{label} uses restricted volume type {_quote(str(key))}"))
    return findings


def _allow_privilege_escalation(pod: _Pod) -> list[_Finding]:
    findings = []
    for container in pod.containers():
        context, context_path = container.security_context()
        located = _child(context, context_path, "allowPrivilegeEscalation")
        if _read_bool(located) is not False:
            findings.append(_Finding(located.path, f"{container.label} does not set allowPrivilegeEscalation=false"))
    return findings


def _run_as_non_root(pod: _Pod) -> list[_Finding]:
    context, context_path = pod.security_context()
    pod_setting = _child(context, context_path, "runAsNonRoot")
    pod_value = _read_bool(pod_setting)
    findings = []
    if pod_value is False:
        findings.append(_Finding(pod_setting.path, "pod sets runAsNonRoot=false"))
    for container in pod.containers():
        container_context, container_context_path = container.security_context()
        located = _child(container_context, container_context_path, "runAsNonRoot")
        value = _read_bool(located)
        if value is False:
            findings.append(_Finding(located.path, f"{container.label} sets runAsNonRoot=false"))
        elif value is None and pod_value is not True:
            findings.append(_Finding(located.path, f"neither the pod nor {container.label} sets runAsNonRoot=true"))
    return findings


def _run_as_user(pod: _Pod) -> list[_Finding]:
    owners = [(*pod.security_context(), "pod")]
    owners += [(*container.security_context(), container.label) for container in pod.containers()]
    findings = []
    for context, context_path, owner in owners:
        located = _child(context, context_path, "runAsUser")
        if _read_int(located) == 0:
            findings.append(_Finding(located.path, f"{owner} runs as root (runAsUser=0)"))
    return findings


def _seccomp_restricted(pod: _Pod) -> list[_Finding]:
    pod_type, pod_path = _explicit_seccomp_type(*pod.security_context())
    findings = []
    if pod_type is not None and pod_type not in _SECCOMP_PROFILE_TYPES:
        findings.append(_Finding(pod_path, f"pod sets seccomp profile type {_quote(pod_type)}"))
    pod_covers_containers = pod_type in _SECCOMP_PROFILE_TYPES
    for container in pod.containers():
        container_type, path = _explicit_seccomp_type(*container.security_context())
        if container_type is None:
            if not pod_covers_containers:
                findings.append(_Finding(
                    path, f"neither the pod nor {container.label} sets seccomp profile RuntimeDefault or Localhost"
                ))
        elif container_type not in _SECCOMP_PROFILE_TYPES:
            findings.append(_Finding(path, f"{container.label} sets seccomp profile type {_quote(container_type)}"))
    return findings


def _capabilities_restricted(pod: _Pod) -> list[_Finding]:
    findings = []
    for container in pod.containers():
        context, context_path = container.security_context()
        capabilities, capabilities_path = _child_mapping(context, context_path, "capabilities")
        dropped = _child(capabilities, capabilities_path, "drop")
        dropped_names = [_read_str(located) for located in _items(_read_list(dropped), dropped.path)]
        if "ALL" not in dropped_names:
            findings.append(_Finding(dropped.path, f"{container.label} does not drop ALL capabilities"))
        findings += [
            _Finding(
                path, f"{container.label} adds capability {_quote(capability)}; only NET_BIND_SERVICE may be added"
            )
            for capability, path in _added_capabilities(container)
            if capability != "NET_BIND_SERVICE"
        ]
    return findings


# --------------------------------------------------------------------------
# Version relaxations
# --------------------------------------------------------------------------


def _exempt_when(is_exempt: Callable[[_Pod], bool], check: _CheckImplementation) -> _CheckImplementation:
    """Skip `check` for pods that `is_exempt` says the standard relaxes.

    If the field deciding the exemption cannot be read, the pod is not
    exempted, and the unreadable field is reported only when it would have
    excused a real finding.
    """

    def relaxed(pod: _Pod) -> list[_Finding]:
        try:
            exempt = is_exempt(pod)
        except _Uninterpretable:
            if check(pod):
                raise
            return []
        return [] if exempt else check(pod)

    return relaxed


def _unless_windows(check: _CheckImplementation) -> _CheckImplementation:
    """Since 1.25, spec.os.name=windows exempts Linux-only restricted controls."""
    return _exempt_when(_Pod.is_windows, check)


def _unless_user_namespace(check: _CheckImplementation) -> _CheckImplementation:
    """Since 1.35, a pod with hostUsers=false (own user namespace) is exempt."""
    return _exempt_when(_Pod.in_user_namespace, check)


# --------------------------------------------------------------------------
# The check table
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckDefinition:
    level: str
    # (minimum policy minor version, behaviour from that version on), ascending.
    behaviours: tuple[tuple[int, _CheckImplementation], ...]

    @property
    def minimum_version(self) -> str:
        return f"v1.{self.behaviours[0][0]}"

    def behaviour_at(self, minor: int) -> _CheckImplementation | None:
        selected = None
        for since, behaviour in self.behaviours:
            if since <= minor:
                selected = behaviour
        return selected


CHECKS: dict[str, CheckDefinition] = {
    # Baseline
    "hostNamespaces": CheckDefinition("baseline", ((0, _host_namespaces),)),
    "privileged": CheckDefinition("baseline", ((0, _privileged),)),
    "capabilities_baseline": CheckDefinition("baseline", ((0, _capabilities_baseline),)),
    "hostPathVolumes": CheckDefinition("baseline", ((0, _host_path_volumes),)),
    "hostPorts": CheckDefinition("baseline", ((0, _host_ports),)),
    "appArmorProfile": CheckDefinition("baseline", ((0, _app_armor_profile),)),
    "seLinuxOptions": CheckDefinition("baseline", (
        (0, _selinux_options(_SELINUX_TYPES_1_0)),
        (31, _selinux_options(_SELINUX_TYPES_1_31)),
    )),
    "procMount": CheckDefinition("baseline", (
        (0, _proc_mount),
        (35, _unless_user_namespace(_proc_mount)),
    )),
    "seccompProfile_baseline": CheckDefinition("baseline", (
        (0, _seccomp_baseline_annotations),
        (19, _seccomp_baseline_fields),
    )),
    "sysctls": CheckDefinition("baseline", (
        (0, _sysctls(_SYSCTLS_1_0)),
        (27, _sysctls(_SYSCTLS_1_27)),
        (29, _sysctls(_SYSCTLS_1_29)),
        (32, _sysctls(_SYSCTLS_1_32)),
        (37, _sysctls(_SYSCTLS_1_37)),
    )),
    "windowsHostProcess": CheckDefinition("baseline", ((0, _windows_host_process),)),
    "hostProbesAndHostLifecycle": CheckDefinition("baseline", ((34, _host_probes_and_host_lifecycle),)),
    # Restricted
    "restrictedVolumes": CheckDefinition("restricted", ((0, _restricted_volumes),)),
    "allowPrivilegeEscalation": CheckDefinition("restricted", (
        (8, _allow_privilege_escalation),
        (25, _unless_windows(_allow_privilege_escalation)),
    )),
    "runAsNonRoot": CheckDefinition("restricted", (
        (0, _run_as_non_root),
        (35, _unless_user_namespace(_run_as_non_root)),
    )),
    "runAsUser": CheckDefinition("restricted", (
        (23, _run_as_user),
        (35, _unless_user_namespace(_run_as_user)),
    )),
    "seccompProfile_restricted": CheckDefinition("restricted", (
        (19, _seccomp_restricted),
        (25, _unless_windows(_seccomp_restricted)),
    )),
    "capabilities_restricted": CheckDefinition("restricted", (
        (22, _capabilities_restricted),
        (25, _unless_windows(_capabilities_restricted)),
    )),
    "procMount_restricted": CheckDefinition("restricted", ((35, _proc_mount),)),
}


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

_MAX_PHRASES_IN_DETAIL = 3


def _parse_level(level: Any) -> str:
    if not isinstance(level, str) or level not in LEVELS:
        raise ValueError(f"unknown Pod Security level {level!r}; expected one of {', '.join(LEVELS)}")
    return level


def _parse_version(version: Any) -> int:
    """The policy minor version to apply; anything newer than we know is latest."""
    if version == "latest":
        return _LATEST_MINOR
    match = _VERSION_PATTERN.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise ValueError(
            f"malformed Pod Security version {version!r}; expected 'latest' or 'v1.<minor>' such as {LATEST!r}"
        )
    return min(int(match.group(1)), _LATEST_MINOR)


def _levels_in_force(level: str) -> tuple[str, ...]:
    return {"privileged": (), "baseline": ("baseline",), "restricted": ("baseline", "restricted")}[level]


def _summarise(findings: list[_Finding]) -> str:
    phrases = list(dict.fromkeys(finding.text for finding in findings))
    shown = "; ".join(phrases[:_MAX_PHRASES_IN_DETAIL])
    hidden = len(phrases) - _MAX_PHRASES_IN_DETAIL
    return f"{shown}; and {hidden} more" if hidden > 0 else shown


def _run_check(
    check_id: str, definition: CheckDefinition, behaviour: _CheckImplementation, pod: _Pod
) -> Violation | None:
    try:
        findings = behaviour(pod)
    except _Uninterpretable as problem:
        return Violation(check_id, definition.level, problem.path, problem.detail)
    except Exception as error:  # noqa: BLE001 - fail closed on anything unforeseen
        detail = f"evaluation failed unexpectedly ({type(error).__name__}); treated as a violation"
        return Violation(check_id, definition.level, pod.spec.path, detail)
    if not findings:
        return None
    return Violation(check_id, definition.level, findings[0].path, _summarise(findings))


def evaluate(obj: dict, level: str, version: str = "latest") -> list[Violation]:
    """Violations of the Pod Security Standard `level` at policy `version`.

    `obj` is a Pod or a workload (Deployment, StatefulSet, DaemonSet,
    ReplicaSet, ReplicationController, Job, CronJob, PodTemplate) whose pod
    template is evaluated once; paths are relative to `obj`.  Raises
    ValueError for an unknown level, a malformed version, a non-dict object or
    a kind without a pod template.  An empty list means the pod is allowed.
    """
    level = _parse_level(level)
    minor = _parse_version(version)
    _require_mapping_object(obj)
    located = _locate_pod(obj)
    if located is None:
        supported = ", ".join(_POD_TEMPLATE_LOCATIONS)
        raise ValueError(f"kind {obj.get('kind')!r} carries no pod template; supported kinds: {supported}")
    metadata, spec, _prefix = located
    pod = _Pod(metadata, spec)
    levels = _levels_in_force(level)
    violations = []
    for check_id, definition in CHECKS.items():
        behaviour = definition.behaviour_at(minor)
        if definition.level not in levels or behaviour is None:
            continue
        violation = _run_check(check_id, definition, behaviour, pod)
        if violation:
            violations.append(violation)
    return violations
