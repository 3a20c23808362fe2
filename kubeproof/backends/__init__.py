"""Backends: how kubeproof reaches a cluster. They know transport only, never what is checked.

Each backend answers the same questions: authenticated and unauthenticated API requests, server-side
dry-runs, raw etcd value prefixes where etcd is reachable, and the control-plane configuration where
the backend can see it (the embedded cluster knows its own flags and files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
        self.http = KubeHttp.from_kubeconfig(str(cluster.suite_kubeconfig), "local")
        self.etcd = EtcdReader(EtcdAccess(
            cluster.etcd_endpoint, str(cluster.ca.cert), str(cluster.etcd_client.cert), str(cluster.etcd_client.key)
        ))

    def own_component_config(self, component: str) -> ComponentConfig | None:
        flags = {
            "kube-apiserver": self.cluster.apiserver_flags,
            "kube-controller-manager": self.cluster.controller_manager_flags,
            "etcd": self.cluster.etcd_flags,
        }.get(component)
        if flags is None:
            return None
        files: dict[str, str] = {}
        if component == "kube-apiserver":
            for flag in ("encryption-provider-config", "audit-policy-file", "admission-control-config-file"):
                files.update(_read_text(flags.get(flag)))
        return ComponentConfig(component, "embedded cluster (the suite started it with these flags)", dict(flags), files)

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
