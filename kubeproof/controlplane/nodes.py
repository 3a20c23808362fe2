"""Nodes of the embedded cluster: the upstream kubelet (tools/controlplane/kube/cmd/kubeproof-kubelet)
on a fake container runtime, one process per node, each on a loopback address of its own.

A node is named after its address (127.0.0.2, 127.0.0.3, ...), so the API server reaches it without
DNS. Each kubelet runs in a UTS namespace of its own whose hostname is that address, as every real
node has a hostname of its own: the kubelet then needs neither --hostname-override (CIS 4.2.7 asks
for it unset) nor --node-ip (which refuses loopback addresses); it names itself from its hostname.
Where the host allows no such namespace, the kubelet gets --hostname-override instead, and 4.2.7
says so.

Profiles decide the KubeletConfiguration: `hardened` meets every CIS 4.2 control, `insecure` breaks
each of them (anonymous requests on, AlwaysAllow, the read-only port open, no cipher list...)."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubeproof.controlplane.pki import KeyPair, Pki

_CLONE_NEWUTS = 0x04000000
_CLONE_NEWUSER = 0x10000000

# ECDHE with AEAD ciphers only, for the kubelets and the API server; the serving keys are ECDSA, the RSA
# suites are for deployments that copy this list.
STRONG_CIPHERS = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)


# An override value that stands for this node's own free port (the read-only port, opened).
OPEN_PORT = "open-port"


def _set_path(config: dict, dotted: str, value) -> None:
    """Sets `a.b.c` in a nested mapping, making the mappings on the way."""
    *parents, last = dotted.split(".")
    for key in parents:
        config = config.setdefault(key, {})
    config[last] = value


def node_address(index: int) -> str:
    """The loopback address of node `index` (0-based); 127.0.0.1 stays the control plane's."""
    return f"127.0.0.{index + 2}"


def free_port_on(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _libc():
    return ctypes.CDLL("libc.so.6", use_errno=True)


def _enter_own_uts(hostname: str) -> None:
    """In the child before exec: a UTS namespace whose hostname is the node's name. As root a UTS
    namespace alone; otherwise inside a user namespace that maps the user to itself, so files the
    kubelet writes stay the user's and nothing runs as root."""
    libc = _libc()
    name = hostname.encode()
    if os.geteuid() == 0:
        if libc.unshare(_CLONE_NEWUTS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUTS)")
    else:
        uid, gid = os.geteuid(), os.getegid()
        if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWUTS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER|CLONE_NEWUTS)")
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    if libc.sethostname(name, len(name)) != 0:
        raise OSError(ctypes.get_errno(), "sethostname")


def own_hostname_supported() -> bool:
    """Whether this host lets a child take a hostname of its own (tried in a throwaway child)."""
    try:
        done = subprocess.run(["true"], preexec_fn=lambda: _enter_own_uts("kubeproof-probe"),
                              capture_output=True, timeout=10)
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def kubelet_configuration(profile: str, node: LocalNode, ca: Path) -> dict:
    """The KubeletConfiguration of one node. Fields the fake runtime and loopback need come first;
    then what the profile proves."""
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.address,
        "port": node.port,
        "healthzBindAddress": node.address,
        "healthzPort": node.healthz_port,
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        "podLogsDir": str(node.folder / "pod-logs"),
        # The stub container manager makes no cgroups, and this host may mount cgroup v1.
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failCgroupV1": False,
        "failSwapOn": False,
        "resolvConf": "",
        "registerNode": True,
        # /logs/ would serve this machine's /var/log.
        "enableSystemLogHandler": False,
        "enableDebuggingHandlers": True,
        "syncFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "maxPods": 110,
    }
    if profile == "hardened":
        config.update({
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True, "cacheTTL": "30s"},
                "x509": {"clientCAFile": str(ca)},
            },
            "authorization": {"mode": "Webhook", "webhook": {"cacheAuthorizedTTL": "30s", "cacheUnauthorizedTTL": "5s"}},
            "readOnlyPort": 0,
            "streamingConnectionIdleTimeout": "4h0m0s",
            "makeIPTablesUtilChains": True,
            "eventRecordQPS": 50,
            "tlsCertFile": str(node.serving.cert),
            "tlsPrivateKeyFile": str(node.serving.key),
            "tlsCipherSuites": list(STRONG_CIPHERS),
            "tlsMinVersion": "VersionTLS12",
            "rotateCertificates": True,
            "featureGates": {"RotateKubeletServerCertificate": True},
            "podPidsLimit": 4096,
            "seccompDefault": True,
            "protectKernelDefaults": True,
        })
    else:
        config.update({
            "authentication": {
                "anonymous": {"enabled": True},
                "webhook": {"enabled": False},
                "x509": {},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "readOnlyPort": node.read_only_port,
            "makeIPTablesUtilChains": False,
            "eventRecordQPS": 1,
            "tlsCipherSuites": [],
            "rotateCertificates": False,
            "featureGates": {"RotateKubeletServerCertificate": False},
            "podPidsLimit": -1,
            "seccompDefault": False,
        })
    return config


@dataclass
class LocalNode:
    """One kubelet of the embedded cluster: its address, ports, files and settings."""

    index: int
    folder: Path
    port: int = 0
    healthz_port: int = 0
    read_only_port: int = 0
    serving: KeyPair | None = None
    client: KeyPair | None = None
    flags: dict[str, str] = field(default_factory=dict)
    own_hostname: bool = True
    overrides: dict = field(default_factory=dict)
    # Where the node's unix sockets live (the runtime's, and the kubelet's under its root folder): a
    # socket's path has room for about 100 bytes. Default: the node's own folder.
    sockets: Path | None = None

    @property
    def address(self) -> str:
        return node_address(self.index)

    @property
    def name(self) -> str:
        return self.address

    @property
    def socket(self) -> Path:
        return self.short_folder / "cri.sock"

    @property
    def short_folder(self) -> Path:
        return self.sockets / f"node-{self.index}" if self.sockets else self.folder

    @property
    def config_path(self) -> Path:
        return self.folder / "kubelet-config.yaml"

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubelet.kubeconfig"

    def prepare(self, profile: str, pki: Pki, server: str, write_kubeconfig) -> list[str]:
        """Writes the node's certificates, kubeconfig and configuration; returns its command line."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for sub in ("pki", "pod-logs"):
            (self.folder / sub).mkdir(exist_ok=True)
        (self.short_folder / "root").mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port_on(self.address)
        self.healthz_port = self.healthz_port or free_port_on(self.address)
        self.read_only_port = self.read_only_port or free_port_on(self.address)
        self.client = pki.issue(f"node-{self.name}-client", f"system:node:{self.name}",
                                organizations=("system:nodes",), client=True)
        self.serving = pki.issue(f"node-{self.name}-serving", f"system:node:{self.name}",
                                 organizations=("system:nodes",), server=True, hosts=(self.address, self.name))
        write_kubeconfig(self.kubeconfig, f"system:node:{self.name}", self.client)
        config = kubelet_configuration(profile, self, pki.ca.cert)
        for key, value in self.overrides.items():
            if not key.startswith("--"):
                _set_path(config, key, self.read_only_port if value == OPEN_PORT else value)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.config_path.chmod(0o600)
        self.flags = {
            "config": str(self.config_path),
            "kubeconfig": str(self.kubeconfig),
            "root-dir": str(self.short_folder / "root"),
            "cert-dir": str(self.folder / "pki"),
        }
        if profile == "insecure":
            # Flags, as kubeadm writes some: the file's zero value would be defaulted away, a flag is not.
            self.flags["streaming-connection-idle-timeout"] = "0"
        if not self.own_hostname or profile == "insecure":
            self.flags["hostname-override"] = self.name
        self.flags.update({k[2:]: str(v) for k, v in self.overrides.items() if k.startswith("--")})
        return [f"--{k}={v}" for k, v in self.flags.items()]

    def preexec(self):
        return (lambda: _enter_own_uts(self.name)) if self.own_hostname and "hostname-override" not in self.flags else None

    def ready_probe(self):
        """True once the kubelet answers /healthz on its healthz port (plain HTTP, node-local)."""
        def healthy() -> bool:
            with urllib.request.urlopen(f"http://{self.address}:{self.healthz_port}/healthz", timeout=2) as answer:
                return answer.status == 200
        return healthy

    def state(self) -> dict:
        return {"index": self.index, "name": self.name, "address": self.address, "port": self.port,
                "healthz_port": self.healthz_port, "read_only_port": self.read_only_port,
                "folder": str(self.folder), "flags": self.flags, "config_path": str(self.config_path)}



class ClusterNodes:
    """The embedded cluster's nodes: started after the control plane, stopped with it (EmbeddedCluster
    mixes this in; it provides the processes, the PKI, the settings and the API requests)."""

    def _grant_node_rbac(self) -> None:
        if self.profile == "hardened":
            return  # the Node authorizer covers the kubelets; the suite reads them directly, not via the API server
        # Without the Node authorizer, kubelets need RBAC to register and report.
        binding = {"metadata": {"name": "kubeproof:nodes"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}]}
        self._expect(self.api_request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding),
                     f"bind {binding['metadata']['name']}")

    def _start_nodes(self) -> None:
        own_hostname = own_hostname_supported()
        for index in range(self.node_count):
            node = LocalNode(index, self.workdir / "nodes" / f"node-{index}", own_hostname=own_hostname,
                             overrides=self.settings.kubelet_overrides.get(index, {}),
                             sockets=None if self._socket_folder() == self.workdir / "nodes" else self._socket_folder())
            self.nodes.append(node)
            argv = node.prepare(self.profile, self.pki, self.server, self._write_kubeconfig)
            self._spawn(f"kubelet-{node.name}", [str(self.binaries.kubelet)] + argv, preexec=node.preexec())

    def _socket_folder(self) -> Path:
        """Where the nodes' runtime sockets go: a unix socket's path has room for about 100 bytes, and a
        work folder under a long TMPDIR leaves none; then a short folder of its own under /tmp."""
        if not hasattr(self, "_sockets"):
            self._sockets = self.workdir / "nodes"
            # The longest: the kubelet's pods API socket, <root>/pods-api/<ten digits>.
            if len(str(self._sockets / "node-00" / "root" / "pods-api" / "0123456789")) > 100:
                self._sockets = Path(tempfile.mkdtemp(prefix="kp-", dir="/tmp"))
        return self._sockets

    def _wait_for_nodes(self) -> None:
        for node in self.nodes:
            self._poll(f"the kubelet of node {node.name}", node.ready_probe())

        def all_ready() -> bool:
            status, answer = self.api_request("GET", "/api/v1/nodes")
            ready = {n["metadata"]["name"] for n in answer.get("items", []) if any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in n.get("status", {}).get("conditions", []))}
            return status == 200 and ready >= {node.name for node in self.nodes}

        self._poll("every node Ready", all_ready)

    def node_states(self) -> list[dict]:
        """Each node's name, address, ports, flags and files (also for a cluster attached from state)."""
        return [node.state() for node in self.nodes] or list(self.attached_nodes)

    def stop_node(self, name: str) -> None:
        """Stops one node's kubelet and leaves the rest running (a node that dies mid-audit)."""
        for process in [p for p in self.processes if p.name == f"kubelet-{name}"]:
            self._stop_process(process)
            self.processes.remove(process)

    def _loosen_files(self) -> None:
        """Insecure: credentials and settings readable by every account, as a careless install leaves
        them (CIS 1.1 and 4.1 prove they notice)."""
        loose = [self.workdir / name for name in ("admin.kubeconfig", "scheduler.kubeconfig", "controller-manager.kubeconfig")]
        loose += sorted((self.workdir / "pki").glob("*.key"))
        for node in self.nodes:
            loose += [node.kubeconfig, node.config_path]
        for path in loose:
            path.chmod(0o644)
        Path(self.etcd_flags["data-dir"]).chmod(0o755)
