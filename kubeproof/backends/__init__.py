"""Backends: how kubeproof reaches a cluster. They know transport only, never what is checked.

Each backend answers the same questions: authenticated and unauthenticated API requests, server-side
dry-runs, raw etcd value prefixes where etcd is reachable, and the control-plane configuration where
the backend can see it (the embedded cluster knows its own flags and files)."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubeproof.backends import files
from kubeproof.backends.etcd import EtcdAccess, EtcdReader
from kubeproof.backends.http import Answer, CredentialsError, KubeHttp, Unreachable

__all__ = ["Answer", "Backend", "ComponentConfig", "CredentialsError", "EtcdAccess", "Unreachable"]


@dataclass
class ComponentConfig:
    """A control-plane component's effective command line and the files it names, as seen by us."""

    component: str
    source: str  # where we saw it, for the evidence: "embedded cluster", "mirror pod kube-system/...", ...
    flags: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)  # path -> text, for files we could read


class Backend:
    """A reachable cluster. Subclasses set name, kind, http, and optionally etcd."""

    name: str
    kind: str
    http: KubeHttp
    etcd: EtcdReader | None = None
    etcd_missing_reason = "no etcd endpoint was given (--etcd-endpoint, --etcd-ca, --etcd-cert, --etcd-key)"
    may_write = False  # only the embedded cluster the suite started itself

    @property
    def server(self) -> str:
        return self.http.server

    def request(self, method: str, path: str, **kwargs) -> Answer:
        return self.http.request(method, path, **kwargs)

    def anonymous(self, path: str) -> Answer:
        return self.http.request("GET", path, anonymous=True)

    def dry_run(self, method: str, path: str, body: dict, content_type: str = "application/json") -> Answer:
        """A server-side dry-run: the whole admission chain runs, nothing is stored."""
        return self.http.request(method, path, query={"dryRun": "All"}, body=body, content_type=content_type)

    def own_component_config(self, component: str) -> ComponentConfig | None:
        """The configuration the backend knows first-hand (the embedded cluster); None otherwise."""
        return None

    def control_plane_files(self) -> list[dict] | None:
        """stat facts of the control-plane node's files (CIS 1.1) where this backend can see them;
        None where it cannot (the API does not expose a node's filesystem)."""
        return None

    def node_files(self, node: str) -> list[dict] | None:
        """stat facts of a worker node's files (CIS 4.1), or None where they are not visible."""
        return None

    def etcd_ca_fingerprints(self) -> tuple[str, str] | None:
        """SHA-256 fingerprints of the CA etcd trusts and of the cluster's CA (CIS 2.7), where visible."""
        return None

    def kubelet_flags(self, node: str) -> dict[str, str] | None:
        """The kubelet's command line read on the node itself, where visible; None otherwise."""
        return None

    def file_exemptions(self) -> dict[str, str]:
        """Control ids this cluster cannot meet by its nature, with the reason (reported as exempt)."""
        return {}

    def no_rights_credentials(self) -> tuple[str, str] | None:
        """A client certificate and key of an identity that holds no rights at all, for the probe
        that a kubelet refuses it (CIS 4.2.2); only a cluster the suite made itself has one."""
        return None

    def close(self) -> None:
        pass


class InClusterBackend(Backend):
    """The suite running in a pod (deploy/): the pod's service account, the API server it is given."""

    kind = "in-cluster"

    def __init__(self, folder: str, host: str, port: str, etcd: EtcdAccess | None = None):
        self.name = "in-cluster"
        self.http = KubeHttp.from_service_account(folder, host, port)
        if etcd is not None:
            self.etcd = EtcdReader(etcd)


class LiveBackend(Backend):
    kind = "live"

    def __init__(self, context: str, kubeconfig: str | None, etcd: EtcdAccess | None = None):
        self.name = context
        self.http = KubeHttp.from_kubeconfig(kubeconfig, context)
        if etcd is not None:
            self.etcd = EtcdReader(etcd)


def _fingerprint(pem_path: str) -> str | None:
    return files.pem_fingerprint(Path(pem_path).read_text())


def _name_of_this_account() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _read_text(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    return {path: Path(path).read_text()}


class LocalBackend(Backend):
    """The embedded control plane the suite started; it may be written to and its files read."""

    kind = "local"
    may_write = True

    def __init__(self, cluster, name: str = "local"):
        self.name = name
        self.cluster = cluster
        # The suite's own identity, from the files it wrote: the kubernetes client's kubeconfig loader
        # (a quarter of a second to import) would only read the same three paths back.
        self.http = KubeHttp(cluster.server, str(cluster.ca.cert), str(cluster.suite_client.cert),
                             str(cluster.suite_client.key))
        self.etcd = EtcdReader(EtcdAccess(
            cluster.etcd_endpoint, str(cluster.etcd_ca.cert), str(cluster.etcd_client.cert), str(cluster.etcd_client.key)
        ))

    def own_component_config(self, component: str) -> ComponentConfig | None:
        flags = {
            "kube-apiserver": self.cluster.apiserver_flags,
            "kube-controller-manager": self.cluster.controller_manager_flags,
            "kube-scheduler": self.cluster.scheduler_flags,
            "etcd": self.cluster.etcd_flags,
        }.get(component)
        if not flags:
            return None  # a component this cluster does not run (a scheduler left out) is not first-hand
        files: dict[str, str] = {}
        if component == "kube-apiserver":
            for flag in ("encryption-provider-config", "audit-policy-file", "admission-control-config-file"):
                files.update(_read_text(flags.get(flag)))
        return ComponentConfig(component, "embedded cluster (the suite started it with these flags)", dict(flags), files)

    def control_plane_files(self) -> list[dict] | None:
        from kubeproof.checks import node_files as roles

        workdir = Path(self.cluster.workdir)
        processes = "the embedded cluster starts {} as a process of its own; it has no static pod manifest"
        facts = [files.absent(role, f"/etc/kubernetes/manifests/{name}.yaml", processes.format(name))
                 for role, name in ((roles.APISERVER_MANIFEST, "kube-apiserver"),
                                    (roles.CONTROLLER_MANAGER_MANIFEST, "kube-controller-manager"),
                                    (roles.SCHEDULER_MANIFEST, "kube-scheduler"), (roles.ETCD_MANIFEST, "etcd"))]
        facts.append(files.absent(roles.CNI_CONFIG, "/etc/cni/net.d",
                                  "the embedded cluster's pods run on a fake runtime with no CNI plugin"))
        facts.append(files.stat_fact(roles.ETCD_DATA_DIR, self.cluster.etcd_flags["data-dir"]))
        facts += [files.stat_fact(roles.ADMIN_KUBECONFIG, workdir / name) for name in ("admin.kubeconfig", "suite.kubeconfig")]
        facts.append(files.stat_fact(roles.SCHEDULER_KUBECONFIG, workdir / "scheduler.kubeconfig"))
        facts.append(files.stat_fact(roles.CONTROLLER_MANAGER_KUBECONFIG, workdir / "controller-manager.kubeconfig"))
        facts += files.pki_facts(workdir / "pki", roles.PKI_DIR, roles.PKI_CERT, roles.PKI_KEY)
        return facts

    def node_files(self, node: str) -> list[dict] | None:
        from kubeproof.checks import node_files as roles

        state = next((n for n in self.cluster.node_states() if n["name"] == node), None)
        if state is None:
            return None
        config_path = Path(state["config_path"])
        facts = [
            files.absent(roles.KUBELET_SERVICE, "/etc/systemd/system/kubelet.service",
                         "the embedded kubelet is a process the suite starts, not a systemd service"),
            files.absent(roles.PROXY_KUBECONFIG, "/etc/kubernetes/proxy.conf", "the embedded cluster runs no kube-proxy"),
            files.stat_fact(roles.KUBELET_KUBECONFIG, state["flags"]["kubeconfig"]),
            files.stat_fact(roles.KUBELET_CONFIG, config_path),
        ]
        try:
            client_ca = ((yaml.safe_load(config_path.read_text()) or {}).get("authentication") or {}).get("x509", {}).get("clientCAFile")
        except (OSError, yaml.YAMLError, AttributeError):
            return facts  # the client CA's role then has no fact: not verified
        facts.append(files.stat_fact(roles.KUBELET_CLIENT_CA, client_ca) if client_ca else files.absent(
            roles.KUBELET_CLIENT_CA, "(authentication.x509.clientCAFile)", "the kubelet names no client CA file (CIS 4.2.3)"))
        return facts

    def etcd_ca_fingerprints(self) -> tuple[str, str] | None:
        return (_fingerprint(self.cluster.etcd_flags["trusted-ca-file"]),
                _fingerprint(self.cluster.apiserver_flags["client-ca-file"]))

    def file_exemptions(self) -> dict[str, str]:
        from kubeproof.checks import node_files as roles

        user = _name_of_this_account()
        # The embedded cluster's files belong to whoever started kubeproof; an account of etcd's own
        # (or root, for a user's run) is not something a test harness can create.
        exempt = {"1.1.12": f"the embedded etcd runs as {user}, the account that started kubeproof; there is "
                            "no etcd account on this machine to own its data"}
        if os.geteuid() != 0:
            for control in roles.ROWS:
                if "owned by" in control.expected:
                    exempt[control.id] = (f"the embedded cluster runs as {user}, not root, so its files cannot be "
                                          "owned by root")
        return exempt

    def no_rights_credentials(self) -> tuple[str, str] | None:
        pair = self.cluster.nobody_client
        return (str(pair.cert), str(pair.key)) if pair else None

    def close(self) -> None:
        self.cluster.stop()


class ManifestsBackend(LocalBackend):
    """A fresh embedded cluster holding what a folder of manifests creates (--manifests)."""

    kind = "manifests"

    def __init__(self, cluster, documents: list):
        super().__init__(cluster, name="manifests")
        self.documents = documents
        # (kind, namespace, name) -> (file, line): findings and SARIF point back at the repository.
        self.sources = {d.key(): (d.source, d.line) for d in documents if isinstance(d.body, dict)}
