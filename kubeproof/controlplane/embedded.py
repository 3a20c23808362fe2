"""The embedded control plane: upstream etcd, kube-apiserver and kube-controller-manager on loopback.

Two profiles. `hardened` meets the practices kubeproof checks; `insecure` turns each of them off or
weakens it, so the suite can prove it notices. The suite owns this cluster and may write to it; it
never writes to a cluster it audits.

Every process is started in its own session (so a Ctrl-C reaches kubeproof, which stops them in
order) and with a parent-death signal (so even a killed kubeproof leaves nothing running)."""

from __future__ import annotations

import base64
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
import yaml

from kubeproof.controlplane.build import Binaries, ensure_built
from kubeproof.controlplane.nodes import STRONG_CIPHERS, ClusterNodes, LocalNode, free_port_on
from kubeproof.controlplane.pki import KeyPair, Pki

PROFILES = ("hardened", "insecure")
SUITE_USER = "kubeproof-suite"
NOBODY_USER = "kubeproof-no-rights"
ENCRYPTION_MODES = ("aescbc", "identity-first", "none")
SERVICE_CIDR = "10.0.0.0/24"
READY_TIMEOUT = 90.0
STOP_GRACE = 5.0
# Readiness is polled this often: every wait of a start is on its critical path.
POLL_INTERVAL = 0.05
# What the API server writes at its first start (bootstrap RBAC, priority classes, flow control, the
# kubernetes Service) is kept per binaries and profile, and each cluster's etcd starts from a copy:
# the API server then finds its bootstrap objects stored and only checks them. Bump when what the
# template holds changes.
ETCD_TEMPLATE_VERSION = 1
# Left out of the template, so each cluster makes its own: namespaces (their UIDs are the cluster's
# fingerprint in the evidence), ConfigMaps (one holds the client CA, which is per cluster), leases and
# events of the API server that made the template, and secrets (none expected: they would be
# encrypted with that run's key).
ETCD_TEMPLATE_DROPPED = ("namespaces", "configmaps", "leases", "peerserverleases", "events", "secrets")
# Namespaces the hardened profile labels and isolates, because the API server makes them itself.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    pass


def _die_with_parent(signal_number: int = signal.SIGKILL) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal_number)


# Post-start hooks that only confirm what a pre-bootstrapped etcd template already holds.
CONFIRMING_HOOKS = ("poststarthook/rbac/bootstrap-roles", "poststarthook/scheduling/bootstrap-system-priority-classes")


def _json_or_text(payload: bytes) -> dict:
    try:
        answer = json.loads(payload or b"{}")
    except ValueError:
        return {"message": payload.decode(errors="replace")[:500]}
    return answer if isinstance(answer, dict) else {"value": answer}


def free_port() -> int:
    return free_port_on("127.0.0.1")


@dataclass
class Settings:
    """What differs between profiles. Each field is one practice the suite proves."""

    anonymous_auth: bool
    authorization_modes: tuple[str, ...]
    admission_enabled: tuple[str, ...]
    admission_disabled: tuple[str, ...]
    encryption: str  # one of ENCRYPTION_MODES
    audit_log: bool
    label_namespaces: bool  # hardened: Pod Security labels and default-deny on the built-in namespaces
    seed_rbac_violations: bool = False  # insecure: a wildcard role, a stray cluster-admin, an anonymous grant
    # Per node index, KubeletConfiguration fields that differ from the profile's (e2e: one setting apart).
    kubelet_overrides: dict = field(default_factory=dict)

    @classmethod
    def for_profile(cls, profile: str) -> Settings:
        if profile == "hardened":
            return cls(
                anonymous_auth=False,
                authorization_modes=("Node", "RBAC"),
                admission_enabled=("NodeRestriction", "PodSecurity"),
                admission_disabled=(),
                encryption="aescbc",
                audit_log=True,
                label_namespaces=True,
            )
        if profile == "insecure":
            return cls(
                anonymous_auth=True,
                # Not AlwaysAllow: the API server turns anonymous auth off by itself under AlwaysAllow.
                authorization_modes=("RBAC",),
                admission_enabled=(),
                admission_disabled=("PodSecurity",),
                encryption="identity-first",
                audit_log=False,
                label_namespaces=False,
                seed_rbac_violations=True,
            )
        raise ControlPlaneError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen
    log: Path


@dataclass
class EmbeddedCluster(ClusterNodes):
    """One embedded control plane. Use as a context manager, or call start() and stop()."""

    profile: str = "hardened"
    workdir: Path | None = None
    settings: Settings | None = None
    binaries: Binaries | None = None
    processes: list[_Process] = field(default_factory=list)
    node_count: int = 2
    # Without a scheduler, pods stay unscheduled quietly. The scale benchmark wants that: 10,000 pods that
    # no node can take keep a scheduler retrying them, and the API server busy, for the whole audit.
    scheduler: bool = True
    nodes: list[LocalNode] = field(default_factory=list)
    # Start etcd from a copy of the API server's stored bootstrap (ETCD_TEMPLATE_VERSION). False: an
    # empty etcd, which the API server fills itself (how the template is made).
    etcd_template: bool = True
    # A throw-away cluster's API server may keep its garbage up to this much heap (GOMEMLIMIT, with
    # GOGC off) instead of collecting as it goes; None: Go's defaults.
    apiserver_memory_limit: str | None = None

    @classmethod
    def for_manifests(cls, **kwargs) -> EmbeddedCluster:
        """The cluster a --manifests run applies a repository to, whether started for the run or as a
        warm spare. No kubelets: a folder of manifests has no nodes to audit, and the cluster's own would
        be judged in its place. Its API server collects no garbage below 1 GiB of heap, as the cluster
        lives for one run: a large CRD bundle then applies in 3.1 s instead of 4.4 s (bench/crd_apply.py)."""
        return cls(profile="hardened", node_count=0, apiserver_memory_limit="1GiB", **kwargs)

    def __post_init__(self) -> None:
        if self.settings is None:
            self.settings = Settings.for_profile(self.profile)
        self._owns_workdir = self.workdir is None
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="kubeproof-cp-"))
        self.started_seconds: float | None = None
        self._controllers: threading.Thread | None = None
        self._controllers_error: BaseException | None = None
        self._controllers_started = threading.Event()
        self._release_controllers = threading.Event()
        self._stopping = False
        self.apiserver_flags: dict[str, str] = {}
        self.etcd_flags: dict[str, str] = {}
        self.controller_manager_flags: dict[str, str] = {}
        self.scheduler_flags: dict[str, str] = {}
        self.nobody_client: KeyPair | None = None
        self.attached_nodes: list[dict] = []
        # A warm spare this process claimed (spares.py): its lease, held until stop(), and when it started.
        self.lease = None
        self.spare: dict | None = None

    # -- public facts the suite reads about its own cluster ---------------------------------------
    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def etcd_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.etcd_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def suite_kubeconfig(self) -> Path:
        """The identity kubeproof audits this cluster as (SUITE_USER, in system:masters)."""
        return self.workdir / "suite.kubeconfig"

    @property
    def encryption_config_path(self) -> Path | None:
        path = self.apiserver_flags.get("encryption-provider-config")
        return Path(path) if path else None

    @property
    def audit_log_path(self) -> Path | None:
        path = self.apiserver_flags.get("audit-log-path")
        return Path(path) if path else None

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, settle: bool = True) -> EmbeddedCluster:
        """Starts the cluster. With settle=False it returns as soon as the API server takes writes, and
        the controllers start behind the caller's own writes (--manifests); settle() must follow
        before the cluster is audited."""
        try:
            self.binaries = self.binaries or ensure_built()
            self._began = time.monotonic()
            self._from_template = self._etcd_template() if self.etcd_template else None
            self._make_pki()
            self.etcd_port, self.etcd_peer_port = free_port(), free_port()
            self.apiserver_port, self.controller_manager_port = free_port(), free_port()
            if self._from_template:
                shutil.copytree(self._from_template, self.workdir / "etcd-data")
                (self.workdir / "etcd-data").chmod(0o700)
            # The API server retries etcd until it answers, so both start at once.
            self._start_etcd()
            self._start_apiserver()
            early = not settle and self._from_template is not None
            # From a template, the roles and priority classes the last two hooks write are stored
            # already, so writes can begin while the hooks confirm them (one polls once a second).
            self._wait_for_apiserver(confirming_hooks=not early)
            # The controller-manager reads its clients' CA from this ConfigMap once, at start.
            self._wait_for_system_namespaces()
            if early:
                self._controllers = threading.Thread(target=self._start_controllers_when_ready, daemon=True,
                                                     name="kubeproof-controllers")
                self._controllers.start()
            else:
                self._start_controllers()
            # While the controllers start: what needs only the API server.
            if self.settings.label_namespaces:
                self._harden_builtin_namespaces()
            self._write_canary_secret()
            if self.settings.seed_rbac_violations:
                self._seed_rbac_violations()
        except BaseException:
            self.stop()
            raise
        return self.settle() if settle else self

    def _start_controllers(self) -> None:
        self._start_controller_manager()
        if self.scheduler:
            self._start_scheduler()
        self._grant_node_rbac()
        self._start_nodes()

    def _start_controllers_when_ready(self) -> None:
        # The controller-manager gives up on an API server that is not healthy within 10 s, which a
        # repository's large CRDs applied meanwhile can cause: it starts on full readiness only.
        try:
            self._wait_for_apiserver()
            self._start_controllers()
        except BaseException as error:  # handed to settle(), on the caller's thread
            self._controllers_error = error
        finally:
            self._controllers_started.set()
            # A child's death signal follows the thread that started it, not the process: this thread
            # lives until stop() has ended what it started.
            self._release_controllers.wait()

    def settle(self) -> EmbeddedCluster:
        """Waits for the controllers, what they and the nodes make, and the API server's full readiness."""
        try:
            if self._controllers is not None:
                self._controllers_started.wait()
                if self._controllers_error is not None:
                    raise self._controllers_error
            self._wait_for_default_service_account()
            if self.settings.label_namespaces:
                self._close_default_service_accounts()
            self._wait_for_nodes()
            if self.profile == "insecure":
                self._loosen_files()
            self.save_state()
            self.started_seconds = time.monotonic() - self._began
        except BaseException:
            self.stop()
            raise
        return self

    def restart_apiserver(self, encryption: str) -> None:
        """Restarts only the API server with another encryption mode, keeping etcd's data: this is
        how a cluster that turned encryption on late still holds secrets written in plain text."""
        self.settings.encryption = encryption
        for process in [p for p in self.processes if p.name in ("kube-controller-manager", "kube-apiserver")]:
            self._stop_process(process)
            self.processes.remove(process)
        self._start_apiserver()
        self._wait_for_apiserver()
        self._start_controller_manager()
        self.save_state()

    def stop(self) -> None:
        self._stopping = True
        if self._controllers is not None:
            self._controllers_started.wait()  # it sees _stopping at its next poll
        keep = not self._owns_workdir or os.environ.get("KUBEPROOF_KEEP_CONTROLPLANE") == "1"
        if keep:
            # Reverse order: an API server whose etcd is gone can ignore SIGTERM for a long time.
            for process in reversed(self.processes):
                self._stop_process(process)
        else:
            # Nothing of this cluster outlives the call (its folder goes next), so no process needs a
            # graceful shutdown: an API server's alone takes about a second.
            for process in self.processes:
                if process.popen.poll() is None:
                    process.popen.kill()
            for process in self.processes:
                try:
                    process.popen.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    pass  # killed; a process stuck in the kernel must not keep the rest from cleaning up
        self.processes.clear()
        if self.lease is not None:
            self.lease.close()  # the supervisor ends the spare once it is let go
            self.lease = None
        if getattr(self, "_pool", None) is not None:
            self._pool.close()
            self._pool = None
        sockets = getattr(self, "_sockets", None)
        if sockets is not None and not str(sockets).startswith(str(self.workdir)):
            shutil.rmtree(sockets, ignore_errors=True)
        if self._controllers is not None:
            self._release_controllers.set()
            self._controllers.join()
            self._controllers = None
        if not keep and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_process(self, process: _Process) -> None:
        if process.popen.poll() is not None:
            return
        process.popen.send_signal(signal.SIGTERM)
        try:
            process.popen.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait(STOP_GRACE)

    # -- set-up -----------------------------------------------------------------------------------
    def _make_pki(self) -> None:
        self.pki = pki = Pki(self.workdir / "pki")
        loopback = ("127.0.0.1", "localhost")
        self.ca = pki.ca
        # Hardened: etcd trusts a CA of its own (CIS 2.7), so a certificate the cluster's CA signs for
        # anyone (a node, a user) opens nothing in etcd. Insecure: the one CA signs for both.
        etcd_pki = Pki(self.workdir / "pki" / "etcd") if self.profile == "hardened" else pki
        self.etcd_ca = etcd_pki.ca
        self.etcd_server = etcd_pki.issue("etcd-server", "etcd", server=True, client=True, hosts=loopback)
        self.etcd_client = etcd_pki.issue("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True)
        self.apiserver_serving = pki.issue(
            "apiserver", "kube-apiserver", server=True,
            hosts=loopback + ("10.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        )
        self.admin = pki.issue("admin", "kubeproof-admin", organizations=("system:masters",), client=True)
        # The suite audits as an identity of its own, so the audit log tells its requests from set-up's.
        self.suite_client = pki.issue("suite", SUITE_USER, organizations=("system:masters",), client=True)
        self.controller_manager_client = pki.issue(
            "controller-manager", "system:kube-controller-manager", client=True
        )
        self.scheduler_client = pki.issue("scheduler", "system:kube-scheduler", client=True)
        # Bound to nothing: what a kubelet must refuse (CIS 4.2.2).
        self.nobody_client = pki.issue("nobody", NOBODY_USER, client=True)
        self.service_account = pki.service_account_keys()

    def _spawn(self, name: str, argv: list[str], preexec=None, env: dict[str, str] | None = None) -> None:
        log = self.workdir / f"{name}.log"

        def before_exec() -> None:
            _die_with_parent()
            if preexec:
                preexec()

        with open(log, "ab") as out:
            popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=before_exec, close_fds=True,
                env={**os.environ, **env} if env else None,
            )
        self.processes.append(_Process(name, popen, log))

    def _start_etcd(self) -> None:
        peer = f"https://127.0.0.1:{self.etcd_peer_port}"
        self.etcd_flags = {
            "name": "kubeproof",
            "data-dir": str(self.workdir / "etcd-data"),
            "listen-client-urls": self.etcd_endpoint,
            "advertise-client-urls": self.etcd_endpoint,
            "listen-peer-urls": peer,
            "initial-advertise-peer-urls": peer,
            "initial-cluster": f"kubeproof={peer}",
            "cert-file": str(self.etcd_server.cert),
            "key-file": str(self.etcd_server.key),
            "client-cert-auth": "true",
            "trusted-ca-file": str(self.etcd_ca.cert),
            "peer-cert-file": str(self.etcd_server.cert),
            "peer-key-file": str(self.etcd_server.key),
            "peer-client-cert-auth": "true",
            "peer-trusted-ca-file": str(self.etcd_ca.cert),
            "log-level": "error",
            # A throw-away cluster on loopback: durability is not worth the fsync latency here.
            "unsafe-no-fsync": "true",
        }
        self._spawn("etcd", [str(self.binaries.etcd)] + [f"--{k}={v}" for k, v in self.etcd_flags.items()])

    def _write_encryption_config(self) -> Path | None:
        mode = self.settings.encryption
        if mode == "none":
            return None
        key_file = self.workdir / "encryption-key"
        if not key_file.exists():
            key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
            key_file.chmod(0o600)
        aescbc = {"aescbc": {"keys": [{"name": "key1", "secret": key_file.read_text()}]}}
        identity = {"identity": {}}
        providers = [aescbc, identity] if mode == "aescbc" else [identity, aescbc]
        config = {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [{"resources": ["secrets"], "providers": providers}],
        }
        path = self.workdir / f"encryption-{mode}.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _write_audit_policy(self) -> Path:
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                # Secret, ConfigMap and token payloads must never land in the audit log.
                {"level": "Metadata", "resources": [
                    {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
                    {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
                ]},
                {"level": "Metadata"},
            ],
        }
        path = self.workdir / "audit-policy.yaml"
        path.write_text(yaml.safe_dump(policy))
        return path

    def _start_apiserver(self) -> None:
        s = self.settings
        flags = {
            "etcd-servers": self.etcd_endpoint,
            "etcd-cafile": str(self.etcd_ca.cert),
            "etcd-certfile": str(self.etcd_client.cert),
            "etcd-keyfile": str(self.etcd_client.key),
            "bind-address": "127.0.0.1",
            "advertise-address": "127.0.0.1",
            "secure-port": str(self.apiserver_port),
            "cert-dir": str(self.workdir / "apiserver-certs"),
            "tls-cert-file": str(self.apiserver_serving.cert),
            "tls-private-key-file": str(self.apiserver_serving.key),
            "client-ca-file": str(self.ca.cert),
            "service-account-key-file": str(self.service_account.cert),
            "service-account-signing-key-file": str(self.service_account.key),
            "service-account-issuer": "https://kubernetes.default.svc",
            "service-account-lookup": "true",
            "service-cluster-ip-range": SERVICE_CIDR,
            # On loopback with one API server there is no endpoint to reconcile.
            "endpoint-reconciler-type": "none",
            "anonymous-auth": str(s.anonymous_auth).lower(),
            "authorization-mode": ",".join(s.authorization_modes),
            "profiling": "false",
            # As on kubeadm and kind: privileged pods are for admission (PodSecurity) to refuse.
            "allow-privileged": "true",
        }
        admission_enabled = s.admission_enabled
        if self.profile == "hardened":
            # CIS 1.2.3-1.2.5, 1.2.9, 1.2.29, 1.2.30: settings the hardened profile needs to pass the
            # control-plane checks (tests_cluster/test_control_plane.py). Nothing on loopback talks to a
            # kubelet, but the API server must still be told how to authenticate to and verify one.
            kubelet_client = self.pki.issue(
                "apiserver-kubelet-client", "kube-apiserver-kubelet-client", client=True)
            admission_config = self.workdir / "admission-control.yaml"
            admission_config.write_text(yaml.safe_dump({
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "AdmissionConfiguration",
                "plugins": [{"name": "EventRateLimit", "configuration": {
                    "apiVersion": "eventratelimit.admission.k8s.io/v1alpha1",
                    "kind": "Configuration",
                    "limits": [{"type": "Server", "qps": 50, "burst": 100}],
                }}],
            }))
            # AlwaysPullImages (1.2.11): a pod may not use an image another tenant pulled to the node.
            admission_enabled += ("EventRateLimit", "DenyServiceExternalIPs", "AlwaysPullImages")
            flags.update({
                "kubelet-client-certificate": str(kubelet_client.cert),
                "kubelet-client-key": str(kubelet_client.key),
                "kubelet-certificate-authority": str(self.ca.cert),
                "admission-control-config-file": str(admission_config),
                "service-account-extend-token-expiration": "false",
                # The kubelets' list: ECDHE with AEAD ciphers only.
                "tls-cipher-suites": ",".join(STRONG_CIPHERS),
            })
        if admission_enabled:
            flags["enable-admission-plugins"] = ",".join(admission_enabled)
        if s.admission_disabled:
            flags["disable-admission-plugins"] = ",".join(s.admission_disabled)
        encryption_config = self._write_encryption_config()
        if encryption_config:
            flags["encryption-provider-config"] = str(encryption_config)
        if s.audit_log:
            flags.update({
                "audit-policy-file": str(self._write_audit_policy()),
                "audit-log-path": str(self.workdir / "audit.log"),
                "audit-log-maxage": "30",
                "audit-log-maxbackup": "10",
                "audit-log-maxsize": "100",
            })
        self.apiserver_flags = flags
        heap = {"GOGC": "off", "GOMEMLIMIT": self.apiserver_memory_limit} if self.apiserver_memory_limit else None
        self._spawn("kube-apiserver", [str(self.binaries.apiserver)] + [f"--{k}={v}" for k, v in flags.items()], env=heap)

    def _write_kubeconfig(self, path: Path, user: str, pair: KeyPair, context: str = "local") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": self.server, "certificate-authority": str(self.ca.cert)}}],
            "users": [{"name": user, "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)}}],
            "contexts": [{"name": context, "context": {"cluster": "local", "user": user}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _start_controller_manager(self) -> None:
        kubeconfig = self._write_kubeconfig(
            self.workdir / "controller-manager.kubeconfig", "controller-manager", self.controller_manager_client
        )
        self.controller_manager_flags = {
            "kubeconfig": str(kubeconfig),
            "authentication-kubeconfig": str(kubeconfig),
            "authorization-kubeconfig": str(kubeconfig),
            "bind-address": "127.0.0.1",
            "secure-port": str(self.controller_manager_port),
            "cert-dir": str(self.workdir / "controller-manager-certs"),
            "service-account-private-key-file": str(self.service_account.key),
            "root-ca-file": str(self.ca.cert),
            "use-service-account-credentials": "true",
            "cluster-signing-cert-file": str(self.ca.cert),
            "cluster-signing-key-file": str(self.ca.key),
            "service-cluster-ip-range": SERVICE_CIDR,
            "leader-elect": "false",
            "profiling": "false",
            # Its clients default to 20 requests a second: 10,000 pods (bench/, size large) would take
            # over eight minutes to appear on a cluster that answers far faster.
            "kube-api-qps": "200",
            "kube-api-burst": "400",
        }
        if self.profile == "hardened":
            # CIS 1.3.1: the default (12500) is a count, not a choice; set one on purpose.
            self.controller_manager_flags["terminated-pod-gc-threshold"] = "1000"
        self._spawn(
            "kube-controller-manager",
            [str(self.binaries.controller_manager)] + [f"--{k}={v}" for k, v in self.controller_manager_flags.items()],
        )

    def _start_scheduler(self) -> None:
        kubeconfig = self._write_kubeconfig(self.workdir / "scheduler.kubeconfig", "scheduler", self.scheduler_client)
        self.scheduler_port = free_port()
        self.scheduler_flags = {
            "kubeconfig": str(kubeconfig),
            "authentication-kubeconfig": str(kubeconfig),
            "authorization-kubeconfig": str(kubeconfig),
            "bind-address": "127.0.0.1",
            "secure-port": str(self.scheduler_port),
            "cert-dir": str(self.workdir / "scheduler-certs"),
            "leader-elect": "false",
        }
        if self.profile == "hardened":
            self.scheduler_flags["profiling"] = "false"  # CIS 1.4.1; insecure keeps the default (on)
        self._spawn("kube-scheduler", [str(self.binaries.scheduler)] + [f"--{k}={v}" for k, v in self.scheduler_flags.items()])

    def client_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for another identity, signed by this cluster's CA (tests of least privilege)."""
        safe = "".join(c if c.isalnum() else "-" for c in user)
        pair = self.pki.issue(f"user-{safe}", user, organizations=groups, client=True)
        return self._write_kubeconfig(self.workdir / f"user-{safe}.kubeconfig", user, pair, context=f"{safe}@embedded")

    # -- readiness --------------------------------------------------------------------------------
    def _tls_context(self, client: KeyPair, ca: KeyPair | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str((ca or self.ca).cert))
        context.load_cert_chain(str(client.cert), str(client.key))
        return context

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.popen.poll() is not None:
                tail = process.log.read_text(errors="replace")[-3000:] if process.log.exists() else ""
                raise ControlPlaneError(f"{process.name} exited with status {process.popen.returncode}:\n{tail}")

    def _poll(self, what: str, probe, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._stopping:
                raise ControlPlaneError(f"{what}: the cluster is being stopped")
            self._check_alive()
            try:
                if probe():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError, ValueError) as error:
                last = str(error)
            time.sleep(POLL_INTERVAL)
        raise ControlPlaneError(f"{what} not ready after {timeout:.0f} s (last: {last})")

    def _wait_for_system_namespaces(self) -> None:
        """The API server makes its namespaces and the authentication ConfigMap just after it is ready
        (a template holds neither)."""
        paths = [f"/api/v1/namespaces/{namespace}" for namespace in SYSTEM_NAMESPACES]
        paths.append("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication")
        for path in paths:
            self._poll(f"kube-apiserver ({path})", lambda path=path: self.api_request("GET", path)[0] == 200)

    def _etcd_request(self, call: str, body: dict) -> dict:
        """etcd's v3 API through its JSON gateway, as the API server's etcd client."""
        request = urllib.request.Request(f"{self.etcd_endpoint}/v3/{call}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, context=self._tls_context(self.etcd_client, self.etcd_ca), timeout=30) as response:
            return json.loads(response.read())

    def _etcd_template(self) -> Path:
        """The etcd data folder of an API server's first start with these binaries and this profile,
        made once (a few seconds) into the cache beside the binaries."""
        name = f"{self.binaries.folder.name}.etcd-template-v{ETCD_TEMPLATE_VERSION}-{self.profile}"
        target = self.binaries.folder.with_name(name)
        if target.is_dir():
            return target
        with open(target.with_name(name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if target.is_dir():
                return target
            seed = EmbeddedCluster(profile=self.profile, node_count=0, scheduler=False, etcd_template=False,
                                   binaries=self.binaries)
            try:
                seed._make_pki()
                seed.etcd_port, seed.etcd_peer_port, seed.apiserver_port = free_port(), free_port(), free_port()
                seed._start_etcd()
                seed._start_apiserver()
                seed._wait_for_apiserver()
                seed._wait_for_system_namespaces()
                etcd, apiserver = seed.processes
                seed._stop_process(apiserver)
                for kind in ETCD_TEMPLATE_DROPPED:
                    prefix = f"/registry/{kind}/"
                    seed._etcd_request("kv/deleterange", {
                        "key": base64.b64encode(prefix.encode()).decode(),
                        "range_end": base64.b64encode(prefix[:-1].encode() + b"0").decode()})
                seed._stop_process(etcd)
                partial = target.with_name(f"{name}.partial-{os.getpid()}")
                shutil.rmtree(partial, ignore_errors=True)
                shutil.copytree(seed.workdir / "etcd-data", partial)
                os.rename(partial, target)
            finally:
                seed.stop()
        return target

    def api_request(self, method: str, path: str, body: dict | bytes | None = None,
                    content_type: str | None = None) -> tuple[int, dict]:
        """An admin request to the embedded API server; for set-up and for tests that seed it. A body
        given as bytes is sent as it is (a manifest's own YAML text, for the server to parse)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
        content_type = content_type or ("application/merge-patch+json" if method == "PATCH" else "application/json")
        try:
            response = self._admin_pool().request(
                method, path, body=data, headers={"Content-Type": content_type}, timeout=30.0)
        except urllib3.exceptions.HTTPError as error:
            # As urllib reported it, for the callers and readiness polls that catch OSError.
            raise urllib.error.URLError(error) from None
        return response.status, _json_or_text(response.data)

    def _admin_pool(self) -> urllib3.HTTPSConnectionPool:
        """Kept-alive admin connections: a start and an apply make a hundred requests, and a TLS
        handshake each took a third of their time."""
        pool = getattr(self, "_pool", None)
        if pool is None or pool.port != self.apiserver_port:
            pool = self._pool = urllib3.HTTPSConnectionPool(
                "127.0.0.1", self.apiserver_port, ssl_context=self._tls_context(self.admin), maxsize=8, retries=False)
        return pool

    def _wait_for_apiserver(self, confirming_hooks: bool = True) -> None:
        query = "" if confirming_hooks else "?" + "&".join(f"exclude={hook}" for hook in CONFIRMING_HOOKS)

        def ready() -> bool:
            status, _ = self.api_request("GET", f"/readyz{query}")
            return status == 200

        self._poll("kube-apiserver", ready)
        self._write_kubeconfig(self.kubeconfig, "kubeproof-admin", self.admin)
        self._write_kubeconfig(self.suite_kubeconfig, SUITE_USER, self.suite_client)

    def _wait_for_default_service_account(self) -> None:
        # Pods (and their server-side dry-runs) are refused until the default ServiceAccount exists.
        def present() -> bool:
            status, _ = self.api_request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
            return status == 200

        self._poll("kube-controller-manager (default ServiceAccount)", present)

    def _harden_builtin_namespaces(self) -> None:
        for namespace in SYSTEM_NAMESPACES:
            self.api_request("PATCH", f"/api/v1/namespaces/{namespace}", {"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            }}})
            status, answer = self.api_request(
                "POST", f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies",
                {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "default-deny-all"},
                 "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
            )
            if status not in (201, 409):
                raise ControlPlaneError(f"could not isolate namespace {namespace}: {status} {answer.get('message')}")
        # Where workloads land by default, their resources are bounded and defaulted.
        self._expect(self.api_request("POST", "/api/v1/namespaces/default/resourcequotas", {
            "metadata": {"name": "compute"}, "spec": {"hard": {
                "pods": "20", "requests.cpu": "2", "requests.memory": "2Gi", "limits.cpu": "4", "limits.memory": "4Gi"}}}),
            "create the default namespace's ResourceQuota")
        self._expect(self.api_request("POST", "/api/v1/namespaces/default/limitranges", {
            "metadata": {"name": "defaults"}, "spec": {"limits": [{
                "type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "64Mi"}, "max": {"cpu": "2", "memory": "1Gi"}}]}}),
            "create the default namespace's LimitRange")

    def _close_default_service_accounts(self) -> None:
        """Pods that do not ask for the API get no token from the default ServiceAccount (made by the
        controller-manager, so this waits for it)."""
        for namespace in SYSTEM_NAMESPACES:
            account = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
            self._poll(f"the default ServiceAccount of {namespace}",
                       lambda account=account: self.api_request("GET", account)[0] == 200)
            self._expect(self.api_request("PATCH", account, {"automountServiceAccountToken": False}), f"patch {account}")

    @staticmethod
    def _expect(answer: tuple[int, dict], what: str) -> None:
        status, body = answer
        if status not in (200, 201, 409):
            raise ControlPlaneError(f"could not {what}: {status} {body.get('message')}")

    # -- sharing a running cluster with another process --------------------------------------------
    def save_state(self) -> Path:
        """Writes what another process needs to audit this cluster as `--cluster=local` (flags,
        endpoints, client certificate paths). Processes stay owned by this object."""
        state = {
            "profile": self.profile,
            "apiserver_port": self.apiserver_port,
            "etcd_port": self.etcd_port,
            "apiserver_flags": self.apiserver_flags,
            "etcd_flags": self.etcd_flags,
            "controller_manager_flags": self.controller_manager_flags,
            "scheduler_flags": self.scheduler_flags,
            "nodes": [node.state() for node in self.nodes],
            "ca": [str(self.ca.cert), str(self.ca.key)],
            "etcd_ca": [str(self.etcd_ca.cert), str(self.etcd_ca.key)],
            "admin": [str(self.admin.cert), str(self.admin.key)],
            "suite": [str(self.suite_client.cert), str(self.suite_client.key)],
            "etcd_client": [str(self.etcd_client.cert), str(self.etcd_client.key)],
            "nobody": [str(self.nobody_client.cert), str(self.nobody_client.key)],
            "kubernetes": self.binaries.kubernetes_version,
            "etcd_version": self.binaries.etcd_version,
        }
        path = self.workdir / "state.json"
        path.write_text(json.dumps(state, indent=1))
        return path

    @classmethod
    def attach(cls, workdir: str | Path) -> EmbeddedCluster:
        """An embedded cluster started by another process; stop() leaves it running."""
        workdir = Path(workdir)
        try:
            state = json.loads((workdir / "state.json").read_text())
        except (OSError, ValueError) as error:
            raise ControlPlaneError(f"{workdir / 'state.json'}: not the state of a running embedded cluster ({error})") from None
        cluster = cls(profile=state["profile"], workdir=workdir)
        cluster._owns_workdir = False
        cluster.apiserver_port, cluster.etcd_port = state["apiserver_port"], state["etcd_port"]
        cluster.apiserver_flags = state["apiserver_flags"]
        cluster.etcd_flags = state["etcd_flags"]
        cluster.controller_manager_flags = state["controller_manager_flags"]
        cluster.scheduler_flags = state.get("scheduler_flags", {})
        cluster.attached_nodes = state.get("nodes", [])
        cluster.ca, cluster.admin, cluster.etcd_client, cluster.suite_client = (
            KeyPair(Path(state[k][0]), Path(state[k][1])) for k in ("ca", "admin", "etcd_client", "suite")
        )
        cluster.etcd_ca = KeyPair(Path(state["etcd_ca"][0]), Path(state["etcd_ca"][1]))
        cluster.nobody_client = KeyPair(Path(state["nobody"][0]), Path(state["nobody"][1])) if "nobody" in state else None
        cluster.binaries = Binaries(Path("."), state["kubernetes"], state["etcd_version"])
        return cluster

    def _write_canary_secret(self) -> None:
        """A secret of the suite's own, so the etcd check always has stored bytes to judge."""
        status, answer = self.api_request("POST", "/api/v1/namespaces/kube-system/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kubeproof-encryption-canary"},
            "stringData": {"canary": secrets.token_hex(16)},
        })
        if status not in (201, 409):
            raise ControlPlaneError(f"could not write the canary secret: {status} {answer.get('message')}")

    def _seed_rbac_violations(self) -> None:
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        for path, body in (
            (f"{rbac}/clusterroles", {"metadata": {"name": "insecure-everything"},
                                      "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
            (f"{rbac}/clusterrolebindings", {"metadata": {"name": "insecure-operator-admin"},
                                             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                                             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "operator"}]}),
            (f"{rbac}/clusterrolebindings", {"metadata": {"name": "insecure-anonymous-view"},
                                             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                                             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}]}),
        ):
            status, answer = self.api_request("POST", path, body)
            if status not in (201, 409):
                raise ControlPlaneError(f"could not seed {body['metadata']['name']}: {status} {answer.get('message')}")

    def describe(self) -> dict:
        return {
            "profile": self.profile,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "etcd": self.etcd_endpoint,
            "kubernetes": self.binaries.kubernetes_version if self.binaries else None,
            "etcd_version": self.binaries.etcd_version if self.binaries else None,
            "started_seconds": round(self.started_seconds or 0, 2),
        }
