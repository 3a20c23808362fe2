"""The snapshot: each kind the suite needs, listed once per session, paginated, as plain dicts.

For every kind it records whether it could be read and, if not, why; a kind that could not be read
makes every test that needs it "not verified", never a pass."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kubeproof.backends import Backend, ComponentConfig, CredentialsError, Unreachable
from kubeproof.backends.etcd import EtcdError
from kubeproof.results import NotVerified

PAGE_SIZE = 500
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class Kind:
    name: str  # plural resource, the key tests use
    kind: str
    group: str
    version: str
    namespaced: bool
    metadata_only: bool = False  # secrets: never fetch their data
    optional: bool = False  # a CRD's kind: absent from clusters that don't install it

    @property
    def path(self) -> str:
        base = "/api/v1" if not self.group else f"/apis/{self.group}/{self.version}"
        return f"{base}/{self.name}"


KINDS = {k.name: k for k in (
    Kind("namespaces", "Namespace", "", "v1", False),
    Kind("pods", "Pod", "", "v1", True),
    Kind("secrets", "Secret", "", "v1", True, metadata_only=True),
    Kind("serviceaccounts", "ServiceAccount", "", "v1", True),
    Kind("roles", "Role", "rbac.authorization.k8s.io", "v1", True),
    Kind("clusterroles", "ClusterRole", "rbac.authorization.k8s.io", "v1", False),
    Kind("rolebindings", "RoleBinding", "rbac.authorization.k8s.io", "v1", True),
    Kind("clusterrolebindings", "ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", False),
    Kind("networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", True),
    Kind("nodes", "Node", "", "v1", False),
    Kind("resourcequotas", "ResourceQuota", "", "v1", True),
    Kind("limitranges", "LimitRange", "", "v1", True),
    Kind("deployments", "Deployment", "apps", "v1", True),
    Kind("statefulsets", "StatefulSet", "apps", "v1", True),
    Kind("daemonsets", "DaemonSet", "apps", "v1", True),
    Kind("replicasets", "ReplicaSet", "apps", "v1", True),
    Kind("replicationcontrollers", "ReplicationController", "", "v1", True),
    Kind("jobs", "Job", "batch", "v1", True),
    Kind("cronjobs", "CronJob", "batch", "v1", True),
    Kind("peerauthentications", "PeerAuthentication", "security.istio.io", "v1", True, optional=True),
    Kind("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", "admissionregistration.k8s.io", "v1", False),
    Kind("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", "admissionregistration.k8s.io", "v1", False),
)}

# Workloads are judged by the object a person edits: a controller's pod template once, not each
# replica. An object owned by one of these kinds is judged through its owner.
WORKLOAD_KINDS = ("deployments", "statefulsets", "daemonsets", "replicasets", "replicationcontrollers",
                  "jobs", "cronjobs", "pods")
_JUDGED_THROUGH_OWNER = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}


def owned_by_a_workload(obj: dict) -> bool:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(o, dict) and o.get("kind") in _JUDGED_THROUGH_OWNER and o.get("controller") for o in owners)


@dataclass
class KindRead:
    kind: Kind
    items: list[dict] | None = None
    error: str | None = None
    pages: int = 0
    seconds: float = 0.0
    served: bool = True  # False: an optional kind this cluster does not serve (zero objects, by discovery)
    by_namespace: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def readable(self) -> bool:
        return self.items is not None


class Snapshot:
    def __init__(self, backend: Backend, page_size: int = PAGE_SIZE, progress=None):
        self.backend = backend
        self.page_size = page_size
        self.reads: dict[str, KindRead] = {}
        self._progress = progress
        self._etcd_secrets: list[tuple[str, str | None]] | NotVerified | None = None
        self._served: dict[str, bool] = {}
        self.touched: set[str] = set()  # what the current test read; the plugin resets it per test
        self._summary: dict | None = None  # set once released

    # -- reading ----------------------------------------------------------------------------------
    def read(self, name: str) -> KindRead:
        if self._summary is not None:
            raise RuntimeError("the snapshot was released when the tests finished")
        self.touched.add(name)
        if name not in self.reads:
            self.reads[name] = self._list(KINDS[name])
        return self.reads[name]

    def _list(self, kind: Kind) -> KindRead:
        read = KindRead(kind)
        began = time.monotonic()
        items: list[dict] = []
        token = None
        while True:
            query = {"limit": str(self.page_size)}
            if token:
                query["continue"] = token
            accept = METADATA_ONLY if kind.metadata_only else "application/json"
            try:
                answer = self.backend.request("GET", kind.path, query=query, accept=accept)
            except (Unreachable, CredentialsError) as error:
                read.error = f"the API server stopped answering: {error}"
                return read
            read.pages += 1
            if answer.status == 404 and kind.optional and token is None:
                # Only discovery may say a kind is absent; a 404 alone could be a proxy's fault.
                try:
                    absent = not self.serves(kind.group, kind.version)
                except NotVerified as error:
                    absent, read.error = False, error.reason
                if absent:
                    read.items, read.served = [], False
                    read.seconds = time.monotonic() - began
                    return read
            problem = read.error or _problem(answer, kind)
            if problem:
                read.error = problem
                read.seconds = time.monotonic() - began
                return read
            for item in answer.body["items"]:
                if not isinstance(item, dict):
                    read.error = f"listing {kind.path} returned an item that is not an object"
                    return read
                # Which client last wrote which field: never evidence for a practice, and half of a
                # pod's size in memory (measured: 10,000 pods, 231 MB with it, 106 MB without).
                metadata = item.get("metadata")
                if isinstance(metadata, dict):
                    metadata.pop("managedFields", None)
                if kind.name == "pods" and owned_by_a_workload(item):
                    item = _judged_through_owner(item)
                if kind.metadata_only:
                    _drop_copies_of_data(item)
                    item["kind"] = kind.kind  # the list says PartialObjectMetadata; the object is a Secret
                item.setdefault("kind", kind.kind)
                items.append(item)
            token = (answer.body.get("metadata") or {}).get("continue")
            if not token:
                break
            if self._progress:
                self._progress(f"listing {kind.name}: {len(items)} so far ({time.monotonic() - began:.1f} s)")
        read.items = items
        read.seconds = time.monotonic() - began
        if self._progress and read.pages > 1:
            self._progress(f"listed {len(items)} {kind.name} in {read.pages} pages, {read.seconds:.1f} s")
        if kind.namespaced:
            for item in items:
                read.by_namespace.setdefault((item.get("metadata") or {}).get("namespace") or "", []).append(item)
        return read

    # -- what tests and checks use ---------------------------------------------------------------
    def items(self, name: str) -> list[dict]:
        read = self.read(name)
        if not read.readable:
            raise NotVerified(f"{read.kind.kind} objects could not be read: {read.error}")
        return read.items

    def in_namespace(self, name: str, namespace: str) -> list[dict]:
        self.items(name)
        return self.reads[name].by_namespace.get(namespace, [])

    def component_config(self, component: str) -> ComponentConfig:
        """A control-plane component's flags: first-hand from the embedded cluster, else from its
        mirror pod in kube-system (kubeadm and kind label them component=<name>)."""
        self.touched.add(f"config:{component}")
        own = self.backend.own_component_config(component)
        if own is not None:
            return own
        pods = [
            pod for pod in self.in_namespace("pods", "kube-system")
            if ((pod.get("metadata") or {}).get("labels") or {}).get("component") == component
        ]
        if not pods:
            raise NotVerified(
                f"the {component} configuration is not visible: no mirror pod labelled component={component} in "
                "kube-system (managed control planes hide it)"
            )
        pod = sorted(pods, key=lambda p: p["metadata"].get("name", ""))[0]
        flags: dict[str, str] = {}
        for container in (pod.get("spec") or {}).get("containers") or []:
            if not isinstance(container, dict):
                continue
            for arg in list(container.get("command") or []) + list(container.get("args") or []):
                if isinstance(arg, str) and arg.startswith("--"):
                    key, _, value = arg[2:].partition("=")
                    flags[key] = value if _ else "true"
        return ComponentConfig(component, f"mirror pod kube-system/{pod['metadata'].get('name')}", flags)

    def serves(self, group: str, version: str) -> bool:
        """Whether the cluster serves an API group version (a CRD's, say). A failed discovery
        request is not an answer, so it raises NotVerified instead of returning False."""
        key = f"{group}/{version}"
        self.touched.add(f"discovery:{key}")
        if key not in self._served:
            try:
                answer = self.backend.request("GET", f"/apis/{group}/{version}")
            except Unreachable as error:
                raise NotVerified(f"discovery of {key} failed: {error}") from None
            if answer.status == 404:
                self._served[key] = False
            elif answer.ok:
                self._served[key] = True
            else:
                raise NotVerified(f"discovery of {key} answered HTTP {answer.status}")
        return self._served[key]

    def etcd_secrets(self) -> list[tuple[str, str | None]]:
        """Every key under /registry/secrets/ with its encryption header (None: plain text)."""
        self.touched.add("etcd")
        if self._etcd_secrets is None:
            if self.backend.etcd is None:
                self._etcd_secrets = NotVerified(f"etcd is not reachable from here: {self.backend.etcd_missing_reason}")
            else:
                try:
                    values = self.backend.etcd.value_prefixes("/registry/secrets/")
                    self._etcd_secrets = [(v.key, v.encryption_header) for v in values]
                except (Unreachable, EtcdError) as error:
                    self._etcd_secrets = NotVerified(f"etcd could not be read: {error}")
        if isinstance(self._etcd_secrets, NotVerified):
            raise self._etcd_secrets
        return self._etcd_secrets

    def release(self) -> None:
        """Lets go of every object once the tests have run: the artifacts written after them need
        only the summary, and at 10,000s of objects the memory is better spent writing them."""
        self._summary = self.summary()
        self.reads.clear()

    def summary(self) -> dict:
        if self._summary is not None:
            return self._summary
        return {
            name: {"readable": read.readable, "count": len(read.items or []), "pages": read.pages,
                   "seconds": round(read.seconds, 3), **({"error": read.error} if read.error else {})}
            for name, read in sorted(self.reads.items())
        }


# `kubectl apply` keeps the whole applied object, a secret's data included, in this annotation.
_DATA_CARRYING_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


_OWNED_POD_METADATA = ("name", "namespace", "uid", "labels", "ownerReferences")


def _judged_through_owner(pod: dict) -> dict:
    """A pod its controller owns is judged through the controller's template, never by itself: of
    it, only who it is and who owns it is kept (10,000 such pods: 106 MB whole, a tenth of it so)."""
    metadata = pod["metadata"]
    return {"kind": "Pod", "apiVersion": pod.get("apiVersion", "v1"),
            "metadata": {key: metadata[key] for key in _OWNED_POD_METADATA if key in metadata}}


def _drop_copies_of_data(item: dict) -> None:
    """Secrets are read for metadata only; some metadata repeats the data, and is dropped on arrival."""
    annotations = (item.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        for key in _DATA_CARRYING_ANNOTATIONS:
            if key in annotations:
                annotations[key] = "(dropped by kubeproof: it can hold the secret's data)"


def _problem(answer, kind: Kind) -> str | None:
    if answer.status == 410:
        return f"the list of {kind.name} expired while paging (410 Gone); read it again"
    if not answer.ok:
        return f"{answer.status} from GET {kind.path}: {answer.message[:200] or 'no message'}"
    body = answer.body
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return f"GET {kind.path} answered {answer.status} with a body that is not a list"
    if body.get("metadata") is not None and not isinstance(body.get("metadata"), dict):
        return f"GET {kind.path} answered with malformed list metadata"
    return None
