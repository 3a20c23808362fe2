"""One audit session: which cluster, which baseline, the backend and the snapshot.

Resolved once, before collection, so configuration errors exit 2 and an unreachable cluster exits 3
before any test runs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import urllib3

from kubeproof import baseline as baselines
from kubeproof.backends import Backend, CredentialsError, EtcdAccess, LiveBackend, LocalBackend, Unreachable
from kubeproof.snapshot import Snapshot

LOCAL = "local"
IN_CLUSTER = "in-cluster"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
EXIT_FINDINGS = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3


class ConfigError(Exception):
    """Bad options or configuration: exit status 2."""


@dataclass
class Options:
    cluster: str | None
    kubeconfig: str | None
    baseline: str | None
    local_profile: str
    local_attach: str | None
    etcd_endpoint: str | None
    etcd_ca: str | None
    etcd_cert: str | None
    etcd_key: str | None
    manifests: str | None = None
    request_timeout: float = 30.0
    local_nodes: int = 2
    helm_values: list[str] = field(default_factory=list)


def is_fleet(cluster: str | None) -> bool:
    """--cluster names several clusters: a comma-separated list, or a glob over the context names."""
    return bool(cluster) and any(c in cluster for c in ",*?[")


def kubeconfig_path(explicit: str | None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    return os.path.expanduser("~/.kube/config")


def kubeconfig_contexts(kubeconfig: str) -> tuple[list[str], str | None]:
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    if not os.path.exists(kubeconfig):
        raise ConfigError(
            f"kubeconfig {kubeconfig} does not exist; give --kubeconfig, or --cluster=local to audit the "
            "embedded cluster kubeproof starts itself"
        )
    try:
        contexts, current = config.list_kube_config_contexts(kubeconfig)
    except ConfigException as error:
        raise ConfigError(f"kubeconfig {kubeconfig}: {error}") from None
    except Exception as error:  # the loader raises YAML and type errors for malformed files
        mark = getattr(error, "problem_mark", None)
        where = f"{kubeconfig}:{mark.line + 1}" if mark else kubeconfig
        raise ConfigError(f"{where}: the kubeconfig cannot be read: {getattr(error, 'problem', None) or error}") from None
    names = [c.get("name") for c in contexts or [] if isinstance(c, dict)]
    return names, (current or {}).get("name") if isinstance(current, dict) else None


def unknown_context(cluster: str, kubeconfig: str, names: list[str]) -> ConfigError:
    known = ", ".join(sorted(n for n in names if n)) or "none"
    return ConfigError(f"--cluster {cluster}: no such context in {kubeconfig} (contexts there: {known}; or use 'local')")


MANIFESTS = "manifests"


def resolve_cluster(options: Options) -> str:
    if not 0 <= options.local_nodes <= 50:
        raise ConfigError(f"--local-nodes {options.local_nodes}: the embedded cluster runs 0 to 50 nodes")
    if not options.request_timeout > 0:
        raise ConfigError(f"--request-timeout {options.request_timeout}: must be a number of seconds above 0")
    if options.helm_values and not options.manifests:
        raise ConfigError("--helm-values renders the Helm charts of --manifests; give --manifests DIR too")
    if options.manifests:
        if options.cluster or options.local_attach:
            raise ConfigError("--manifests audits a fresh embedded cluster of its own; drop --cluster/--local-attach")
        return MANIFESTS
    if options.cluster:
        if is_fleet(options.cluster):
            # A list or pattern is expanded before the session (kubeproof/fleet.py); what reaches here
            # runs no audit, e.g. --collect-only.
            raise ConfigError(f"--cluster {options.cluster}: names several clusters, which only an audit run of "
                              "the suite expands; name one cluster here")
        return options.cluster
    path = kubeconfig_path(options.kubeconfig)
    _, current = kubeconfig_contexts(path)
    if not current:
        raise ConfigError(
            f"no --cluster given and {path} has no current context; pass --cluster=CONTEXT, or "
            "--cluster=local for the embedded cluster"
        )
    return current


def _etcd_access(options: Options) -> EtcdAccess | None:
    given = [options.etcd_endpoint, options.etcd_ca, options.etcd_cert, options.etcd_key]
    if not any(given):
        return None
    if not options.etcd_endpoint:
        raise ConfigError("--etcd-ca, --etcd-cert and --etcd-key need --etcd-endpoint")
    for flag, path in (("--etcd-ca", options.etcd_ca), ("--etcd-cert", options.etcd_cert), ("--etcd-key", options.etcd_key)):
        if path and not os.path.isfile(path):
            raise ConfigError(f"{flag} {path}: no such file")
    if bool(options.etcd_cert) != bool(options.etcd_key):
        raise ConfigError("--etcd-cert and --etcd-key go together")
    return EtcdAccess(options.etcd_endpoint, options.etcd_ca, options.etcd_cert, options.etcd_key)


def _open_manifests(options: Options) -> Backend:
    from kubeproof import manifests
    from kubeproof.backends import ManifestsBackend
    from kubeproof.controlplane import BuildError, ControlPlaneError, EmbeddedCluster

    try:
        documents = manifests.load(options.manifests, options.helm_values)
    except manifests.ManifestError as error:
        raise ConfigError(str(error)) from None
    if not documents:
        raise ConfigError(f"--manifests {options.manifests}: no YAML or JSON documents found")
    from kubeproof.controlplane import spares

    try:
        # A warm spare is the same cluster, started before this run by `spares start`, and nobody's but ours.
        embedded = spares.claim()
        if embedded is None:
            embedded = EmbeddedCluster.for_manifests().start(settle=False)
    except (BuildError, ControlPlaneError) as error:
        raise ConfigError(f"the embedded cluster could not start: {error}") from None
    try:
        # The repository's objects go in while the controllers start; the audit waits for both.
        manifests.apply(embedded, documents)
        if embedded.spare is None:
            embedded.settle()
        return ManifestsBackend(embedded, documents)
    except ControlPlaneError as error:
        embedded.stop()
        raise ConfigError(f"the embedded cluster could not start: {error}") from None
    except OSError as error:
        embedded.stop()
        raise ConfigError(f"the embedded API server ({embedded.server}) stopped answering while the manifests "
                          f"were applied: {error}") from None
    except BaseException:
        embedded.stop()
        raise


def _open_in_cluster(options: Options) -> Backend:
    from kubeproof.backends import InClusterBackend

    folder = os.environ.get("KUBEPROOF_SERVICE_ACCOUNT_DIR", SERVICE_ACCOUNT_DIR)
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not os.path.isfile(os.path.join(folder, "token")):
        raise ConfigError(
            f"--cluster=in-cluster needs a pod's service account ({folder}/token) and KUBERNETES_SERVICE_HOST; "
            "outside a pod use a kubeconfig context"
        )
    return InClusterBackend(folder, host, port, _etcd_access(options))


def open_backend(options: Options, cluster: str) -> Backend:
    if cluster == MANIFESTS:
        return _open_manifests(options)
    if cluster == IN_CLUSTER:
        return _open_in_cluster(options)
    if cluster == LOCAL:
        from kubeproof.controlplane import BuildError, ControlPlaneError, EmbeddedCluster

        try:
            if options.local_attach:
                embedded = EmbeddedCluster.attach(options.local_attach)
            else:
                embedded = EmbeddedCluster(profile=options.local_profile, node_count=options.local_nodes).start()
        except (BuildError, ControlPlaneError) as error:
            raise ConfigError(f"the embedded cluster could not start: {error}") from None
        try:
            return LocalBackend(embedded)
        except BaseException:
            embedded.stop()
            raise
    path = kubeconfig_path(options.kubeconfig)
    names, _ = kubeconfig_contexts(path)
    if cluster not in names:
        raise unknown_context(cluster, path, names)
    try:
        if cluster.startswith("kind-"):
            from kubeproof.backends.kind import KindBackend, KindNode

            node = KindNode(cluster.removeprefix("kind-"))
            if node.available():
                return KindBackend(cluster, path, node, _etcd_access(options))
        return LiveBackend(cluster, path, _etcd_access(options))
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"kubeconfig {path}, context {cluster}: {error}") from None


@dataclass
class Audit:
    cluster: str
    backend: Backend
    baseline: baselines.Baseline
    snapshot: Snapshot
    server_version: dict
    identity: str = "unknown"
    fingerprint: str = "unknown"
    nodes: str | None = None  # the evidence's description of the nodes, taken while the snapshot is held

    def describe_identity(self) -> None:
        """Who the suite runs as (SelfSubjectReview) and which cluster this is (the kube-system
        namespace's UID, which survives upgrades and differs between clusters), for the evidence."""
        review = self.backend.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        # A refusal's body is a Status whose "status" is the string "Failure", not the review's status.
        status = review.body.get("status") if isinstance(review.body, dict) else None
        info = status.get("userInfo") if isinstance(status, dict) else None
        if review.ok and isinstance(info, dict):
            groups = ", ".join(g for g in info.get("groups") or [] if isinstance(g, str))
            self.identity = f"{info.get('username', '?')} (groups: {groups or 'none'})"
        else:
            self.identity = f"unknown (SelfSubjectReview answered HTTP {review.status})"
        namespace = self.backend.request("GET", "/api/v1/namespaces/kube-system")
        uid = ((namespace.body or {}).get("metadata") or {}).get("uid") if isinstance(namespace.body, dict) else None
        self.fingerprint = f"kube-system uid {uid}" if namespace.ok and uid else f"unknown (HTTP {namespace.status})"

    @classmethod
    def open(cls, options: Options, root: Path, progress=None) -> Audit:
        cluster = resolve_cluster(options)
        baseline_path = baselines.locate(options.baseline, cluster, root)
        try:
            baseline = baselines.load(baseline_path)
        except baselines.BaselineError as error:
            raise ConfigError(str(error)) from None
        backend = open_backend(options, cluster)
        backend.http.timeout = urllib3.Timeout(connect=min(5.0, options.request_timeout), read=options.request_timeout)
        try:
            answer = backend.request("GET", "/version")
            if answer.status in (401, 403):
                raise ConfigError(
                    f"{backend.server} refused the credentials of cluster {cluster} (HTTP {answer.status}); "
                    "check the kubeconfig user"
                )
            version = answer.body if answer.ok and isinstance(answer.body, dict) else {}
        except CredentialsError as error:
            backend.close()
            raise ConfigError(f"cluster {cluster}: {error}") from None
        except BaseException:
            backend.close()
            raise
        audit = cls(cluster, backend, baseline, Snapshot(backend, progress=progress), version)
        try:
            audit.describe_identity()
        except Unreachable:
            backend.close()
            raise
        return audit

    def close(self) -> None:
        self.backend.close()


__all__ = ["Audit", "ConfigError", "Options", "Unreachable", "EXIT_CONFIG", "EXIT_FINDINGS", "EXIT_UNREACHABLE"]
