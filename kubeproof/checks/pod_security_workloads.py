"""Pod Security Standards per workload: each controller's pod template, and each bare pod, judged once
by kubeproof.pod_security against the level the baseline requires for its namespace, at the policy
version that namespace pins with its enforce-version label.

This is glue: the evaluator decides, this module names what it found in the audit's terms (CIS ids,
field path, what to change). The namespace-level view (labels and the admission chain) lives in
pod_security_admission; this one also sees templates whose pods do not exist yet."""

from __future__ import annotations

import re

from kubeproof import pod_security
from kubeproof.checks._shape import mapping, metadata, text
from kubeproof.checks._workload import pod_template
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Pod Security Standards"
MARKER = "pod_security"

ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
LATEST = "latest"
_VERSION = re.compile(r"v1\.(0|[1-9][0-9]*)")

# The upstream check ids, in the evaluator's order; a test that runs them all carries them all.
CHECK_IDS = tuple(pod_security.CHECKS)

# CIS 1.12 section 5.2 names one control per host-facing setting; 5.6.2 is seccomp and 5.6.3 the
# security context in general, which is where the remaining node-protecting settings live.
# restrictedVolumes is the allow-list of volume types that, among others, keeps hostPath out (5.2.11).
CIS_BY_CHECK = {
    "hostNamespaces": ("5.2.3", "5.2.4", "5.2.5"),  # narrowed per violation below
    "privileged": ("5.2.2",),
    "capabilities_baseline": ("5.2.9",),  # and 5.2.8 when NET_RAW is the capability added
    "hostPathVolumes": ("5.2.11",),
    "hostPorts": ("5.2.12",),
    "appArmorProfile": ("5.6.3",),
    "seLinuxOptions": ("5.6.3",),
    "procMount": ("5.6.3",),
    "seccompProfile_baseline": ("5.6.2",),
    "sysctls": ("5.6.3",),
    "windowsHostProcess": ("5.2.10",),
    "hostProbesAndHostLifecycle": ("5.6.3",),
    "restrictedVolumes": ("5.2.11",),
    "allowPrivilegeEscalation": ("5.2.6",),
    "runAsNonRoot": ("5.2.7",),
    "runAsUser": ("5.2.7",),
    "seccompProfile_restricted": ("5.6.2",),
    "capabilities_restricted": ("5.2.8", "5.2.9"),
    "procMount_restricted": ("5.6.3",),
}
CIS_CONTROLS = tuple(sorted({c for ids in CIS_BY_CHECK.values() for c in ids}, key=lambda c: tuple(map(int, c.split(".")))))
# The CIS ids each test of tests_cluster/test_pod_security_workloads.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {"test_workload_meets_the_required_pod_security_level": CIS_CONTROLS}
_HOST_NAMESPACE_CONTROLS = {"hostPID": "5.2.3", "hostIPC": "5.2.4", "hostNetwork": "5.2.5"}

REMEDIATION = {
    "hostNamespaces": "Remove hostNetwork, hostPID and hostIPC from the pod spec; a pod sharing the node's "
                      "namespaces can see and reach the node's processes, IPC and network interfaces.",
    "privileged": "Drop securityContext.privileged; grant the one capability the container really needs instead.",
    "capabilities_baseline": "Remove the added capabilities outside Kubernetes' default set (NET_RAW, SYS_ADMIN "
                             "and the like) from securityContext.capabilities.add.",
    "hostPathVolumes": "Replace the hostPath volume with a persistent volume claim, configMap, secret or "
                       "emptyDir; a hostPath exposes the node's file system to the container.",
    "hostPorts": "Remove hostPort from the container ports and expose the workload through a Service.",
    "appArmorProfile": "Use the RuntimeDefault or a Localhost AppArmor profile, never Unconfined.",
    "seLinuxOptions": "Leave seLinuxOptions.type unset or use one of the container types the standard allows; "
                      "do not set a custom SELinux user or role.",
    "procMount": "Remove procMount (or set it to Default) so /proc stays masked inside the container.",
    "seccompProfile_baseline": "Do not set the seccomp profile to Unconfined; use RuntimeDefault or a Localhost profile.",
    "sysctls": "Set only the namespaced sysctls the standard lists as safe, or none.",
    "windowsHostProcess": "Do not run Windows HostProcess containers in this namespace.",
    "hostProbesAndHostLifecycle": "Remove the host field from probes and lifecycle handlers so they target the pod itself.",
    "restrictedVolumes": "Use only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, "
                         "projected or secret volumes.",
    "allowPrivilegeEscalation": "Set securityContext.allowPrivilegeEscalation: false on every container.",
    "runAsNonRoot": "Set securityContext.runAsNonRoot: true on the pod (or every container) and run the image as a "
                    "non-zero user.",
    "runAsUser": "Do not set runAsUser to 0; pick a non-zero user id.",
    "seccompProfile_restricted": "Set securityContext.seccompProfile.type: RuntimeDefault (or Localhost) on the pod "
                                 "or on every container.",
    "capabilities_restricted": "Set securityContext.capabilities.drop: [ALL] on every container and add back at "
                               "most NET_BIND_SERVICE.",
    "procMount_restricted": "Remove procMount (or set it to Default); the restricted level allows no unmasked /proc.",
}


def policy_version(namespace) -> str:
    """The policy version the namespace pins with its enforce-version label; "latest" when the label is
    absent, malformed or the namespace is unknown, as PodSecurity admission itself falls back to it."""
    if namespace is None:
        return LATEST
    labels = mapping(metadata(namespace, "namespace").get("labels"), "namespace metadata.labels")
    value = labels.get(ENFORCE_VERSION)
    if isinstance(value, str) and (value == LATEST or _VERSION.fullmatch(value)):
        return value
    return LATEST


def controls_of(violation: pod_security.Violation) -> tuple[str, ...]:
    if violation.check_id == "hostNamespaces":
        said = f"{violation.path} {violation.detail}"
        named = tuple(cis for key, cis in _HOST_NAMESPACE_CONTROLS.items() if key in said)
        return named or CIS_BY_CHECK["hostNamespaces"]
    if violation.check_id == "capabilities_baseline" and '"NET_RAW"' in violation.detail:
        return ("5.2.8", "5.2.9")
    # A check id we have no mapping for (a newer evaluator) still fails the test under the PSS id itself.
    return CIS_BY_CHECK.get(violation.check_id, ())


def pod_security_findings(workload, level: str, version: str) -> list[Finding]:
    """One finding per Pod Security check the workload's pod template breaks at `level`/`version`."""
    meta = metadata(workload, "workload")
    kind = text(workload.get("kind"), "workload kind")
    try:
        violations = pod_security.evaluate(workload, level, version)
    except ValueError as error:
        raise NotVerified(f"{kind} {meta['name']} could not be evaluated against the Pod Security Standards: {error}") from None
    if not violations:
        # The evaluator reads a missing template as an empty pod; an unreadable one must not pass.
        pod_template(workload)
        return []
    ref = ObjectRef.of(workload, kind)
    expected = f"allowed by the Pod Security Standard {level} (policy version {version})"
    return [
        Finding(controls_of(v), ref, v.path, f"{v.check_id}: {v.detail}", expected,
                REMEDIATION.get(v.check_id, "Change the pod template so it meets the level."))
        for v in violations
    ]


def namespaces_by_name(namespaces: list) -> dict[str, dict]:
    """Namespaces keyed by name, for looking up each workload's; unreadable entries are left out (a
    workload whose namespace is not found is judged at "latest", the version with every check)."""
    found = {}
    for namespace in namespaces:
        meta = namespace.get("metadata") if isinstance(namespace, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if isinstance(name, str) and name:
            found[name] = namespace
    return found
