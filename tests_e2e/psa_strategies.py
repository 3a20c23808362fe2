"""Hypothesis strategies for Pods, workload pod templates and ephemeral containers that the API
server accepts, spread over every field the Pod Security Standards read.

Used by tests_e2e/test_pod_security_differential.py and bench/psa_differential.py to compare
`kubeproof.pod_security.evaluate` with the PodSecurity admission of a real API server. An object
the API server rejects for its own validation (422) says nothing about PodSecurity and is thrown
away, so the strategies keep to what validation accepts: the rules they honour are written next to
the field they constrain. Odd but valid values (lower-case or CAP_-prefixed capabilities, slash
sysctl names, empty SELinux types, explicit hostPort 0, annotations next to fields) are drawn on
purpose, since that is where an evaluator and the admission plugin drift apart.

Every field is drawn "compliant" (meets the restricted level) or "deviating"; a per-pod strictness
sets how often fields deviate, so restricted sees both allowed and denied pods and baseline sees
both too. Integer rolls shrink towards 0, which is always the compliant or simplest choice, so a
shrunk counterexample keeps only the fields that matter.
"""

from __future__ import annotations

import copy

from hypothesis import strategies as st

IMAGE = "registry.example.com/app:1.0"
LABELS = {"app": "psa"}

# How often (in %) a field deviates from the restricted-compliant value, by strictness.
DEVIATION_PERCENT = (1, 4, 15, 40, 75)

APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"

# Real capability names, the default set among them, and spellings the standards do not accept
# as equal (the API server stores any string). CAP_SYS_ADMIN is only drawn where validation
# allows it (see _capabilities).
CAPABILITIES = ("NET_BIND_SERVICE", "CHOWN", "KILL", "SETUID", "MKNOD", "AUDIT_WRITE", "SYS_CHROOT",
                "NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN", "BPF", "SYS_TIME", "ALL")
ODD_CAPABILITIES = ("chown", "net_bind_service", "CAP_CHOWN", "CAP_NET_RAW", "all", "Net_Raw", "SYS-ADMIN",
                    "CAP_SYS_ADMIN", "")
DROPS = (("ALL",), (), ("all",), ("NET_RAW",), ("ALL", "NET_RAW"), ("CAP_ALL",), ("NET_RAW", "ALL"), ("Al",))

# container_engine_t (allowed from 1.31 on) is listed three times: values that change meaning at a
# policy version are drawn more often, as that is where an evaluator is off by one.
SELINUX_TYPES = ("container_t", "container_engine_t", "container_init_t", "container_engine_t", "container_kvm_t",
                 "container_engine_t", "", "spc_t", "unconfined_t", "container_logreader_t", "Container_t")

# Sysctls: every name the standards allowed at some version, names they never allowed, and the
# slash spelling the API also accepts. Which ones a pod may carry depends on the host namespaces
# it shares (validation refuses a net.* sysctl with hostNetwork, an IPC one with hostIPC).
SAFE_SYSCTLS = (
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat",
)
# The names upstream added to the safe set at 1.27, 1.29, 1.32 and 1.37, drawn more often for the
# same reason.
RECENTLY_SAFE_SYSCTLS = SAFE_SYSCTLS[5:]
UNSAFE_SYSCTLS = ("kernel.msgmax", "kernel.sem", "net.core.somaxconn", "net.ipv4.ip_forward",
                  "net/ipv4/tcp_syncookies", "net.ipv4.tcp_syncookies.x", "kernel/shm_rmid_forced")
UNNAMESPACED_SYSCTLS = ("vm.swappiness", "kernel.panic", "fs.file-max")
IPC_SYSCTL_PREFIXES = ("kernel.shm", "kernel/shm", "kernel.msg", "kernel/msg", "kernel.sem", "kernel/sem", "fs.mqueue.")
NET_SYSCTL_PREFIXES = ("net.", "net/")

PROBE_HOSTS = ("127.0.0.1", "localhost", "example.com", "10.1.2.3", "")

# One small valid source per volume type of core/v1; hostPath comes in a few shapes.
VOLUME_SOURCES: dict[str, dict] = {
    "emptyDir": {},
    "hostPath": {"path": "/var/lib/psa"},
    "gcePersistentDisk": {"pdName": "disk-1"},
    "awsElasticBlockStore": {"volumeID": "vol-0123"},
    "gitRepo": {"repository": "https://example.com/repo.git"},
    "secret": {"secretName": "app-secret"},
    "nfs": {"server": "nfs.example.com", "path": "/exports"},
    "iscsi": {"targetPortal": "10.0.0.2:3260", "iqn": "iqn.2001-04.com.example:storage", "lun": 0},
    "glusterfs": {"endpoints": "gluster", "path": "vol"},
    "persistentVolumeClaim": {"claimName": "claim"},
    "rbd": {"monitors": ["10.0.0.3:6789"], "image": "img"},
    "flexVolume": {"driver": "example.com/flex"},
    "cinder": {"volumeID": "cinder-1"},
    "cephfs": {"monitors": ["10.0.0.3:6789"]},
    "flocker": {"datasetName": "dataset"},
    "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
    "fc": {"wwids": ["3600508b400105e210000900000490000"]},
    "azureFile": {"secretName": "azure", "shareName": "share"},
    "configMap": {"name": "app-config"},
    "vsphereVolume": {"volumePath": "[datastore] volumes/v.vmdk"},
    "quobyte": {"registry": "quobyte.example.com:7861", "volume": "vol"},
    "azureDisk": {"diskName": "disk", "diskURI": "https://example.blob.core.windows.net/vhds/disk.vhd"},
    "photonPersistentDisk": {"pdID": "photon-1"},
    "projected": {"sources": [{"configMap": {"name": "app-config"}}, {"serviceAccountToken": {"path": "token"}}]},
    "portworxVolume": {"volumeID": "px-1"},
    "scaleIO": {"gateway": "https://scaleio.example.com", "system": "sys", "secretRef": {"name": "scaleio"},
                "volumeName": "vol"},
    "storageos": {"volumeName": "vol"},
    "csi": {"driver": "csi.example.com"},
    "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"],
                                                   "resources": {"requests": {"storage": "1Gi"}}}}},
    "image": {"reference": "registry.example.com/data:1.0"},
}
RESTRICTED_VOLUME_TYPES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                           "persistentVolumeClaim", "projected", "secret")
HOST_PATH_SHAPES = ({"path": "/var/lib/psa"}, {"path": "/", "type": "Directory"},
                    {"path": "/var/run/docker.sock", "type": "Socket"}, {"path": "/tmp/x", "type": ""})

OS_CHOICES = (None, "linux", "windows")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


class _Context:
    """What the pod decided first and every container must respect to stay valid."""

    def __init__(self, deviation: int, os_name: str | None, host_users: bool | None,
                 host_network: bool, host_process: bool | None):
        self.deviation = deviation
        self.os_name = os_name
        self.host_users = host_users
        self.host_network = host_network
        self.host_process = host_process  # None: no hostProcess anywhere; else every container's value

    @property
    def windows(self) -> bool:
        return self.os_name == "windows"


def _deviates(draw, context: _Context) -> bool:
    return draw(st.integers(0, 99)) >= 100 - context.deviation


def _pick(draw, options):
    """The first option when shrunk; options may hold any value, None meaning "leave unset"."""
    return options[draw(st.integers(0, len(options) - 1))]


def _set(target: dict, key: str, value) -> None:
    if value is not None:
        target[key] = value


# -- securityContext pieces ------------------------------------------------------------------------


def _seccomp(draw, context: _Context, compliant_unset: bool):
    if context.windows:
        return None
    if _deviates(draw, context):
        return _pick(draw, (None, {"type": "Unconfined"}, {"type": "RuntimeDefault"},
                            {"type": "Localhost", "localhostProfile": "profiles/audit.json"}))
    if compliant_unset:
        return _pick(draw, (None, {"type": "RuntimeDefault"}))
    return _pick(draw, ({"type": "RuntimeDefault"}, {"type": "Localhost", "localhostProfile": "profiles/ok.json"}))


def _apparmor(draw, context: _Context):
    if context.windows:
        return None
    if _deviates(draw, context):
        return _pick(draw, ({"type": "Unconfined"}, {"type": "RuntimeDefault"},
                            {"type": "Localhost", "localhostProfile": "k8s-apparmor-example"}))
    return _pick(draw, (None, {"type": "RuntimeDefault"}, {"type": "Localhost", "localhostProfile": "psa-profile"}))


def _selinux(draw, context: _Context):
    if context.windows:
        return None
    if _deviates(draw, context):
        options = {"type": _pick(draw, SELINUX_TYPES)}
        if draw(st.integers(0, 3)) == 0:
            options["user"] = _pick(draw, ("system_u", "user_u", ""))
        if draw(st.integers(0, 3)) == 0:
            options["role"] = _pick(draw, ("system_r", "object_r", ""))
        if draw(st.booleans()):
            options["level"] = "s0:c123,c456"
        if not draw(st.booleans()):
            del options["type"]  # type unset is allowed
        return options
    return _pick(draw, (None, {"type": "container_t"}, {"level": "s0:c1,c2"}, {"type": "container_init_t"}))


def _windows_options(draw, context: _Context, pod_level: bool):
    if context.os_name == "linux":
        return None  # validation: windows options cannot be set for a linux pod
    options = {}
    if context.host_process is not None and (pod_level or draw(st.booleans())):
        options["hostProcess"] = context.host_process
    if context.windows and draw(st.integers(0, 3)) == 0:
        options["runAsUserName"] = _pick(draw, ("ContainerUser", "NT AUTHORITY\\SYSTEM"))
    return options or None


def _capabilities(draw, context: _Context, allow_privilege_escalation):
    if context.windows:
        return None
    capabilities = {}
    if _deviates(draw, context):
        drop = list(_pick(draw, DROPS))
        if drop or draw(st.booleans()):
            capabilities["drop"] = drop
    else:
        capabilities["drop"] = ["ALL"]
    if _deviates(draw, context):
        names = draw(st.lists(st.one_of(st.sampled_from(CAPABILITIES), st.sampled_from(ODD_CAPABILITIES)),
                              min_size=1, max_size=3, unique=True))
        if allow_privilege_escalation is False:
            # validation: allowPrivilegeEscalation=false forbids adding CAP_SYS_ADMIN
            names = [name for name in names if name != "CAP_SYS_ADMIN"]
        if names:
            capabilities["add"] = names
    elif draw(st.integers(0, 3)) == 0:
        capabilities["add"] = ["NET_BIND_SERVICE"]
    return capabilities or None


def _container_security_context(draw, context: _Context, pod_context: dict) -> dict | None:
    if draw(st.integers(0, 99)) < context.deviation // 4:
        return None  # no securityContext at all
    sc: dict = {}
    linux = not context.windows
    if linux:
        privileged = _pick(draw, (True, False)) if _deviates(draw, context) else _pick(draw, (None, False))
        _set(sc, "privileged", privileged)
        if _deviates(draw, context):
            escalation = _pick(draw, (None, True, False))
        else:
            escalation = False
        if privileged and escalation is False:
            escalation = None  # validation: allowPrivilegeEscalation=false and privileged=true conflict
        _set(sc, "allowPrivilegeEscalation", escalation)
        _set(sc, "capabilities", _capabilities(draw, context, escalation))
        if _deviates(draw, context):
            user = _pick(draw, (0, 1000, 65534))
        else:
            user = _pick(draw, (None, 1000))
        _set(sc, "runAsUser", user)
        if context.host_users is False and _deviates(draw, context):
            sc["procMount"] = "Unmasked"  # validation: Unmasked needs hostUsers=false
        elif draw(st.integers(0, 4)) == 0:
            sc["procMount"] = "Default"
        _set(sc, "seLinuxOptions", _selinux(draw, context))
        _set(sc, "seccompProfile", _seccomp(draw, context, compliant_unset="seccompProfile" in pod_context))
        _set(sc, "appArmorProfile", _apparmor(draw, context))
    pod_non_root = pod_context.get("runAsNonRoot") is True
    if _deviates(draw, context):
        _set(sc, "runAsNonRoot", _pick(draw, (False, None, True)))
    elif not pod_non_root or draw(st.booleans()):
        sc["runAsNonRoot"] = True
    _set(sc, "windowsOptions", _windows_options(draw, context, pod_level=False))
    return sc


# -- probes, lifecycle hooks, ports ----------------------------------------------------------------


def _handler(draw, context: _Context, lifecycle: bool) -> dict:
    kinds = ["exec", "httpGet", "tcpSocket", "sleep" if lifecycle else "grpc"]
    kind = kinds[draw(st.integers(0, 3))]
    if kind == "exec":
        return {"exec": {"command": ["true"]}}
    if kind == "grpc":
        return {"grpc": {"port": 9090}}
    if kind == "sleep":
        return {"sleep": {"seconds": 1}}
    action = {"port": 8080}
    if kind == "httpGet":
        action["path"] = "/healthz"
    if _deviates(draw, context):
        action["host"] = _pick(draw, PROBE_HOSTS)
    return {kind: action}


def _probes_and_hooks(draw, context: _Context, container: dict, probes: bool) -> None:
    if probes:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if draw(st.integers(0, 3)) == 0:
                container[probe] = _handler(draw, context, lifecycle=False)
    lifecycle = {}
    for hook in ("postStart", "preStop"):
        if draw(st.integers(0, 4)) == 0:
            lifecycle[hook] = _handler(draw, context, lifecycle=True)
    if lifecycle:
        container["lifecycle"] = lifecycle


class _Ports:
    """Container and host ports unique within the pod, as validation demands."""

    def __init__(self):
        self.next = 8000

    def draw_ports(self, draw, context: _Context) -> list[dict]:
        ports = []
        for _ in range(draw(st.integers(0, 2))):
            self.next += 1
            port = {"containerPort": self.next}
            if _deviates(draw, context):
                # validation: with hostNetwork the hostPort, if given, must equal containerPort
                port["hostPort"] = self.next if context.host_network else _pick(draw, (self.next + 1000, 0))
            elif draw(st.integers(0, 5)) == 0:
                port["hostPort"] = 0 if not context.host_network else self.next
            if draw(st.integers(0, 4)) == 0:
                port["protocol"] = _pick(draw, ("UDP", "TCP", "SCTP"))
            ports.append(port)
        return ports


def _container(draw, context: _Context, pod_context: dict, name: str, kind: str, ports: _Ports) -> dict:
    """kind: "container", "init", "sidecar" (init with restartPolicy Always) or "ephemeral"."""
    container: dict = {"name": name, "image": IMAGE}
    if kind == "sidecar":
        container["restartPolicy"] = "Always"
    if kind != "ephemeral":  # validation: ephemeral containers may not have ports, probes or hooks
        port_list = ports.draw_ports(draw, context)
        if port_list:
            container["ports"] = port_list
        if kind != "init":  # validation: plain init containers may not have probes or hooks
            _probes_and_hooks(draw, context, container, probes=True)
    _set(container, "securityContext", _container_security_context(draw, context, pod_context))
    return container


# -- pod-level fields ------------------------------------------------------------------------------


def _sysctls(draw, context: _Context, host_ipc: bool) -> list[dict] | None:
    if context.windows or draw(st.booleans()):
        return None
    pool = list(SAFE_SYSCTLS) + list(RECENTLY_SAFE_SYSCTLS)
    if _deviates(draw, context):
        pool += list(UNSAFE_SYSCTLS) + list(UNNAMESPACED_SYSCTLS)
    if context.host_network:
        pool = [name for name in pool if not name.startswith(NET_SYSCTL_PREFIXES)]
    if host_ipc:
        pool = [name for name in pool if not name.startswith(IPC_SYSCTL_PREFIXES)]
    if not pool:
        return None
    # The pool repeats names to weight them; a pod lists each name once (validation).
    names = list(dict.fromkeys(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))))
    return [{"name": name, "value": "1"} for name in names]


def _pod_security_context(draw, context: _Context, host_ipc: bool) -> dict:
    sc: dict = {}
    if _deviates(draw, context):
        _set(sc, "runAsNonRoot", _pick(draw, (None, False, True)))
    else:
        _set(sc, "runAsNonRoot", _pick(draw, (True, None)))
    if not context.windows:
        if _deviates(draw, context):
            _set(sc, "runAsUser", _pick(draw, (0, 1000)))
        elif draw(st.booleans()):
            sc["runAsUser"] = 1000
        _set(sc, "seLinuxOptions", _selinux(draw, context))
        _set(sc, "seccompProfile", _seccomp(draw, context, compliant_unset=False))
        _set(sc, "appArmorProfile", _apparmor(draw, context))
        _set(sc, "sysctls", _sysctls(draw, context, host_ipc))
    _set(sc, "windowsOptions", _windows_options(draw, context, pod_level=True))
    return sc


def _volumes(draw, context: _Context) -> list[dict]:
    volumes = []
    for index in range(draw(st.integers(0, 3))):
        if _deviates(draw, context):
            # hostPath is the one baseline forbids: drawn as often as all other types together.
            kind = "hostPath" if draw(st.booleans()) else _pick(draw, (None,) + tuple(sorted(VOLUME_SOURCES)))
        else:
            kind = _pick(draw, RESTRICTED_VOLUME_TYPES)
        volume = {"name": f"v{index}"}
        if kind == "hostPath":
            volume["hostPath"] = dict(_pick(draw, HOST_PATH_SHAPES))
        elif kind is not None:  # no source at all: the API server makes it an emptyDir
            volume[kind] = VOLUME_SOURCES[kind]
        volumes.append(volume)
    return volumes


def _annotations(draw, context: _Context, spec: dict) -> dict:
    """The deprecated AppArmor and seccomp annotations, kept consistent with the fields as
    validation requires: where a container has a profile field, its annotation matches it."""
    if context.windows or draw(st.integers(0, 2)) != 0:
        return {}
    annotations = {}
    pod_sc = spec.get("securityContext", {})
    containers = [c for key in ("initContainers", "containers") for c in spec.get(key, [])]
    for container in containers:
        sc = container.get("securityContext") or {}
        if draw(st.integers(0, 2)) == 0:
            profile = sc.get("appArmorProfile") or pod_sc.get("appArmorProfile")
            value = _apparmor_annotation_for(profile) if profile else _pick(
                draw, ("runtime/default", "unconfined", "localhost/psa-profile", ""))
            annotations[APPARMOR_ANNOTATION_PREFIX + container["name"]] = value
        if draw(st.integers(0, 3)) == 0:
            profile = sc.get("seccompProfile")
            value = _seccomp_annotation_for(profile) if profile else _pick(
                draw, ("runtime/default", "unconfined", "docker/default", "localhost/profiles/a.json"))
            annotations[SECCOMP_CONTAINER_ANNOTATION_PREFIX + container["name"]] = value
    if draw(st.integers(0, 3)) == 0:
        profile = pod_sc.get("seccompProfile")
        value = _seccomp_annotation_for(profile) if profile else _pick(
            draw, ("runtime/default", "unconfined", "docker/default", "localhost/profiles/a.json"))
        annotations[SECCOMP_POD_ANNOTATION] = value
    if draw(st.integers(0, 5)) == 0:
        # A seccomp annotation naming no container of the pod: the API accepts it.
        annotations[SECCOMP_CONTAINER_ANNOTATION_PREFIX + "ghost"] = _pick(draw, ("unconfined", "runtime/default"))
    return annotations


def _apparmor_annotation_for(profile: dict) -> str:
    return {"RuntimeDefault": "runtime/default", "Unconfined": "unconfined"}.get(
        profile["type"], "localhost/" + str(profile.get("localhostProfile")))


def _seccomp_annotation_for(profile: dict) -> str:
    return {"RuntimeDefault": "runtime/default", "Unconfined": "unconfined"}.get(
        profile["type"], "localhost/" + str(profile.get("localhostProfile")))


@st.composite
def _context(draw) -> _Context:
    deviation = DEVIATION_PERCENT[draw(st.integers(0, len(DEVIATION_PERCENT) - 1))]
    os_name = _pick(draw, OS_CHOICES)
    probe = _Context(deviation, os_name, None, False, None)
    host_network = _deviates(draw, probe) and draw(st.booleans())
    host_process = None
    if os_name != "linux" and draw(st.integers(0, 5)) == 0:
        # validation: hostProcess needs hostNetwork and the same value on every container
        host_process = draw(st.booleans())
        host_network = host_network or host_process
    host_users = None
    if not os_name == "windows" and not host_network and draw(st.booleans()):
        host_users = _pick(draw, (True, False))  # validation: hostUsers=false excludes host namespaces
    return _Context(deviation, os_name, host_users, host_network, host_process)


@st.composite
def pod_templates(draw, restart_policy: str | None = None) -> dict:
    """A pod template ({"metadata", "spec"}); restart_policy is what the owner demands."""
    context = draw(_context())
    spec: dict = {}
    if context.os_name:
        spec["os"] = {"name": context.os_name}
    host_ipc = host_pid = False
    if not context.windows and context.host_users is not False:
        host_pid = _deviates(draw, context) and draw(st.booleans())
        host_ipc = _deviates(draw, context) and draw(st.booleans())
    for key, value in (("hostNetwork", context.host_network), ("hostPID", host_pid), ("hostIPC", host_ipc)):
        if value or draw(st.integers(0, 5)) == 0:
            spec[key] = value
    if context.host_users is not None:
        spec["hostUsers"] = context.host_users
    pod_context = _pod_security_context(draw, context, host_ipc)
    if pod_context or draw(st.booleans()):
        spec["securityContext"] = pod_context
    ports = _Ports()
    init = []
    for index in range(draw(st.integers(0, 2))):
        kind = _pick(draw, ("init", "sidecar"))
        init.append(_container(draw, context, pod_context, f"init{index}", kind, ports))
    if init:
        spec["initContainers"] = init
    spec["containers"] = [
        _container(draw, context, pod_context, f"app{index}", "container", ports)
        for index in range(draw(st.integers(1, 2)))
    ]
    volumes = _volumes(draw, context)
    if volumes:
        spec["volumes"] = volumes
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    metadata: dict = {"labels": dict(LABELS)}
    annotations = _annotations(draw, context, spec)
    if annotations:
        metadata["annotations"] = annotations
    # Field values are shared constants; each template gets copies of its own.
    return copy.deepcopy({"metadata": metadata, "spec": spec})


@st.composite
def pods(draw) -> dict:
    template = draw(pod_templates(restart_policy=draw(st.sampled_from((None, "Always", "OnFailure", "Never")))))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "psa", **template["metadata"]},
            "spec": template["spec"]}


def workload(kind: str, template: dict) -> dict:
    """The smallest valid `kind` around `template`."""
    metadata = {"name": "psa"}
    selector = {"matchLabels": dict(LABELS)}
    if kind == "Deployment":
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata,
                "spec": {"selector": selector, "template": template}}
    if kind == "StatefulSet":
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata,
                "spec": {"selector": selector, "serviceName": "psa", "template": template}}
    if kind in ("DaemonSet", "ReplicaSet"):
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata,
                "spec": {"selector": selector, "template": template}}
    if kind == "Job":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata, "spec": {"template": template}}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": metadata,
                "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}}
    raise ValueError(f"no pod template in {kind}")


@st.composite
def workloads(draw) -> dict:
    kind = draw(st.sampled_from(WORKLOAD_KINDS))
    # validation: a Job's pods restart OnFailure or Never; the other controllers' pods Always.
    restart = draw(st.sampled_from(("OnFailure", "Never"))) if kind in ("Job", "CronJob") else _pick(
        draw, (None, "Always"))
    return workload(kind, draw(pod_templates(restart_policy=restart)))


# -- ephemeral containers --------------------------------------------------------------------------

# Ephemeral containers cannot be set when a pod is created; they are added to an existing pod
# through its pods/ephemeralcontainers subresource, which PodSecurity evaluates as an update of the
# whole pod. The base pods below are created before the namespace gets its labels (a label change
# only warns about existing pods), so a base pod may itself break the level under test.
BASE_PODS: dict[str, dict] = {
    "restricted": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": IMAGE, "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    },
    "bare": {"containers": [{"name": "app", "image": IMAGE}]},
    "user-namespace": {
        "hostUsers": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": IMAGE, "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    },
    "windows": {
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": True},
        "containers": [{"name": "app", "image": IMAGE}],
    },
    "host-network": {
        "hostNetwork": True,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": IMAGE, "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    },
}


def base_pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"base-{name}", "labels": dict(LABELS)},
            "spec": copy.deepcopy(BASE_PODS[name])}


@st.composite
def ephemeral_cases(draw) -> tuple[str, list[dict]]:
    """(base pod name, ephemeral containers to add to it); at least one, or nothing is evaluated."""
    base = draw(st.sampled_from(sorted(BASE_PODS)))
    spec = BASE_PODS[base]
    deviation = DEVIATION_PERCENT[draw(st.integers(0, len(DEVIATION_PERCENT) - 1))]
    os_name = (spec.get("os") or {}).get("name")
    context = _Context(deviation, os_name, spec.get("hostUsers"), bool(spec.get("hostNetwork")), None)
    pod_context = spec.get("securityContext", {})
    containers = [
        _container(draw, context, pod_context, f"debug{index}", "ephemeral", _Ports())
        for index in range(draw(st.integers(1, 2)))
    ]
    for container in containers:
        if draw(st.integers(0, 3)) == 0:
            container["targetContainerName"] = "app"
    return base, copy.deepcopy(containers)
