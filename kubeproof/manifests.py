"""--manifests: a folder of YAML (plain files, multi-document files, Kustomize folders, Helm charts) applied with
server-side apply into a fresh embedded cluster, so the suite audits what the repository would
create. Every document keeps its file and line, for findings and SARIF.

Each document is sent as the text it was written in: Kubernetes' YAML reader, not PyYAML's YAML 1.1
resolver, decides what `=`, `yes` or `1:30` mean, so the object stored is the one `kubectl apply`
would store. PyYAML only splits the stream and finds kind, name, namespace and line.

Loading errors (bad YAML, an unreadable folder) are configuration errors: exit 2 naming file and line.
Objects the real API server refuses are findings, not errors: the repository would fail the same way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import yaml

from kubeproof.controlplane.build import REPO_ROOT, cache_root, pinned

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")
FIELD_MANAGER = "kubeproof-manifests"


class ManifestError(Exception):
    """The manifests cannot be read: exit status 2, naming the file and line."""


@dataclass
class Document:
    """One object of the repository. `text` is the document's own YAML (or JSON), sent as it is so
    Kubernetes' parser, not ours, decides what every scalar means. Until the API server answers,
    `body` holds only what could be read without interpreting a scalar (apiVersion, kind, name and
    namespace, as strings); once applied they are the names the server stored."""

    source: str  # file relative to the manifests folder (or the Kustomize folder it came from)
    line: int
    body: object
    text: str = ""
    namespace: str | None = None  # where an object that names no namespace goes (a Helm release's)
    outcome: str = "pending"  # applied | rejected
    answer: dict = field(default_factory=dict)
    serves: list[tuple[str, str]] = field(default_factory=list)  # an applied CRD's (group/version, kind)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def key(self) -> tuple[str | None, str | None, str | None]:
        body = self.body if isinstance(self.body, dict) else {}
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        return body.get("kind"), meta.get("namespace"), meta.get("name")


class _Untyped(yaml.resolver.BaseResolver):
    """Every node keeps its default tag (what BaseResolver, which has no implicit types, answers too),
    without the per-scalar lookups: a CRD bundle holds about 90,000 scalars."""

    _DEFAULT = {yaml.ScalarNode: yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG,
                yaml.SequenceNode: yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
                yaml.MappingNode: yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG}

    def descend_resolver(self, current_node, current_index) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind, value, implicit) -> str:
        return self._DEFAULT[kind]


class _PurePythonSplitter(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
                          _Untyped):
    def __init__(self, text: str):
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.resolver.BaseResolver.__init__(self)


if getattr(yaml, "__with_libyaml__", False):
    class _Splitter(yaml.cyaml.CParser, _Untyped):
        """Parses the YAML syntax and nothing more: no implicit typing (YAML 1.1's `=`, `yes` or `1:30`
        stay text) and no constructors (any tag is kept, never refused), so a file kubectl accepts is
        never refused here. libyaml where PyYAML has it: a published bundle of CRDs is 70,000 lines."""

        def __init__(self, text: str):
            yaml.cyaml.CParser.__init__(self, text)
            yaml.resolver.BaseResolver.__init__(self)
else:
    _Splitter = _PurePythonSplitter


def _scalar(node, key: str) -> str | None:
    if isinstance(node, yaml.MappingNode):
        for name, value in node.value:
            if isinstance(name, yaml.ScalarNode) and name.value == key:
                return value.value if isinstance(value, yaml.ScalarNode) else None
    return None


def _member(node, key: str):
    if isinstance(node, yaml.MappingNode):
        for name, value in node.value:
            if isinstance(name, yaml.ScalarNode) and name.value == key:
                return value
    return None


def _identity(node) -> object:
    """apiVersion, kind, metadata.name and metadata.namespace, as the strings written; anything that is
    not a mapping stays a marker the apply step rejects."""
    if not isinstance(node, yaml.MappingNode):
        return node.value if isinstance(node, yaml.ScalarNode) else [None]
    body: dict = {key: _scalar(node, key) for key in ("apiVersion", "kind") if _scalar(node, key) is not None}
    metadata = _member(node, "metadata")
    if isinstance(metadata, yaml.MappingNode):
        body["metadata"] = {key: _scalar(metadata, key) for key in ("name", "namespace")
                            if _scalar(metadata, key) is not None}
    return body


def _text_of(text: str, node) -> str:
    # Indent the first line as it stood, so the lines after it keep their meaning.
    return " " * node.start_mark.column + text[node.start_mark.index:node.end_mark.index]


def _documents(text: str, source: str, display: str, namespace: str | None = None) -> list[Document]:
    # libyaml does not count a byte-order mark in its positions; a Python slice would.
    text = text.removeprefix("\ufeff")
    splitter = _Splitter(text)
    found = []
    try:
        while splitter.check_node():
            node = splitter.get_node()
            if node is None or (isinstance(node, yaml.ScalarNode) and node.value == ""
                                and node.tag == yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG and not node.style):
                continue
            line = node.start_mark.line + 1
            items = _member(node, "items")
            if _scalar(node, "kind") == "List" and isinstance(items, yaml.SequenceNode):
                found.extend(Document(source, item.start_mark.line + 1, _identity(item), _text_of(text, item), namespace)
                             for item in items.value)
            else:
                found.append(Document(source, line, _identity(node), _text_of(text, node), namespace))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{display}:{mark.line + 1}" if mark else display
        raise ManifestError(f"{where}: not valid YAML: {getattr(error, 'problem', None) or error}") from None
    finally:
        splitter.dispose()
    return found


def _kubectl() -> str | None:
    """The kubectl built with the embedded control plane (same release as the API server), else one
    on PATH."""
    built = pinned().kubectl
    return str(built) if built.is_file() else shutil.which("kubectl")


def _kustomize(folder: Path) -> str:
    kubectl = _kubectl()
    command = [kubectl, "kustomize", str(folder)] if kubectl else [str(_kustomize_binary()), "build", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ManifestError(f"{folder}: kustomize could not render it: {done.stderr.strip()[-800:]}")
    return done.stdout


def _kustomize_binary() -> Path:
    """kustomize built from the Go module proxy (tools/kustomize), for machines without kubectl."""
    module = REPO_ROOT / "tools" / "kustomize"
    target = cache_root() / "kustomize" / "kustomize-v5"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
    go = shutil.which("go")
    if not go:
        raise ManifestError("a Kustomize folder needs kubectl or Go (to build kustomize); neither is on PATH")
    done = subprocess.run([go, "build", "-o", str(target), "sigs.k8s.io/kustomize/kustomize/v5"], cwd=module,
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise ManifestError(f"building kustomize failed: {done.stderr[-800:]}")
    return target


def load(folder: str | Path, helm_values: list[str] | tuple = ()) -> list[Document]:
    """Every document under `folder`: plain files, Kustomize folders rendered whole, and Helm charts
    (a folder with Chart.yaml) rendered with their defaults and then `helm_values`, each release
    into a namespace of its own."""
    root = Path(folder)
    if not root.is_dir():
        raise ManifestError(f"--manifests {folder}: not a folder")
    documents: list[Document] = []
    rendered: list[Path] = []
    charts = 0
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        here = Path(directory)
        if any(rendered_dir in here.parents or rendered_dir == here for rendered_dir in rendered):
            continue
        source = str(here.relative_to(root)) if here != root else "."
        if "Chart.yaml" in files:
            rendered.append(here)
            charts += 1
            documents.extend(_chart(here, source, helm_values))
            continue
        if any(name in files for name in KUSTOMIZATIONS):
            rendered.append(here)
            documents.extend(_documents(_kustomize(here), f"{source} (kustomize)", f"{here} (rendered by kustomize)"))
            continue
        for name in sorted(files):
            path = here / name
            if path.suffix not in MANIFEST_SUFFIXES:
                continue
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as error:
                raise ManifestError(f"{path}: cannot be read as text: {error}") from None
            documents.extend(_documents(text, str(path.relative_to(root)), str(path)))
    if helm_values and not charts:
        raise ManifestError(f"--helm-values: --manifests {folder} holds no Helm chart (no Chart.yaml)")
    return documents


def _chart(chart: Path, source: str, values) -> list[Document]:
    """A chart as `helm install --create-namespace` would put it in the cluster: each document points
    at the template file and line it came from; the release namespace is created unless the chart
    itself defines it."""
    from kubeproof import helm

    try:
        rendered = helm.render(chart, list(values))
    except helm.HelmError as error:
        raise ManifestError(str(error)) from None
    prefix = "" if source == "." else f"{source}/"
    documents = []
    for piece in rendered:
        for document in _documents(piece.text, f"{prefix}{piece.source}", f"{chart / piece.source} (rendered by helm)",
                                   namespace=piece.namespace):
            document.line = piece.line
            documents.append(document)
    namespace = helm.release_name(chart) if not rendered else rendered[0].namespace
    if not any(d.key()[0] == "Namespace" and d.key()[2] == namespace for d in documents):
        text = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n"
        documents.insert(0, Document(f"{prefix}Chart.yaml", 1,
                                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, text))
    return documents


# -- applying --------------------------------------------------------------------------------------
def _order(document: Document) -> int:
    kind = document.body.get("kind") if isinstance(document.body, dict) else None
    return {"CustomResourceDefinition": 0, "Namespace": 1}.get(kind, 2)


class Discovery:
    def __init__(self, cluster):
        self.cluster = cluster
        self.resources: dict[tuple[str, str], tuple[str, bool]] = {}

    def refresh(self) -> None:
        versions = ["v1"]
        status, groups = self.cluster.api_request("GET", "/apis")
        for group in (groups.get("groups") or []) if status == 200 else []:
            versions.extend(v["groupVersion"] for v in group.get("versions") or [])
        for group_version in versions:
            path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            status, listing = self.cluster.api_request("GET", path)
            for resource in (listing.get("resources") or []) if status == 200 else []:
                if "/" not in resource["name"]:
                    self.resources[(group_version, resource["kind"])] = (resource["name"], resource["namespaced"])

    def path(self, body: dict) -> tuple[str, str] | None:
        found = self.resources.get((body.get("apiVersion"), body.get("kind")))
        if not found:
            return None
        plural, namespaced = found
        api_version = body["apiVersion"]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced:
            namespace = body["metadata"].get("namespace") or "default"
            return f"{base}/namespaces/{namespace}/{plural}", namespace
        return f"{base}/{plural}", ""


def apply(cluster, documents: list[Document]) -> None:
    """Server-side apply, CRDs first (waiting until they are served), then namespaces, then the rest."""
    discovery = Discovery(cluster)
    discovery.refresh()
    for stage in (0, 1, 2):
        batch = [d for d in documents if _order(d) == stage]
        for document in batch:
            _apply_one(cluster, discovery, document)
        if stage == 0 and batch:
            _wait_for_crds(cluster, [d for d in batch if d.outcome == "applied"])
            discovery.refresh()
    _wait_for_default_service_accounts(cluster, documents)


def _reject(document: Document, status: int, message: str) -> None:
    document.outcome = "rejected"
    document.answer = {"status": status, "message": message[:600]}


def _apply_one(cluster, discovery: Discovery, document: Document) -> None:
    body = document.body
    if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict) or not body.get("apiVersion") \
            or not body.get("kind") or not isinstance(body["metadata"].get("name"), str):
        _reject(document, 0, "not a Kubernetes object: apiVersion, kind and metadata.name are needed")
        return
    if document.namespace and not body["metadata"].get("namespace"):
        body["metadata"]["namespace"] = document.namespace
    located = discovery.path(body)
    if located is None:
        _reject(document, 0, f"the API server does not serve kind {body['kind']} in {body['apiVersion']}")
        return
    collection, namespace = located
    if namespace:
        body["metadata"]["namespace"] = namespace
    else:
        body["metadata"].pop("namespace", None)
    path = f"{collection}/{quote(body['metadata']['name'], safe='')}?fieldManager={FIELD_MANAGER}&force=true"
    status, answer = cluster.api_request("PATCH", path, document.text.encode(),
                                         content_type="application/apply-patch+yaml")
    if 200 <= status < 300 and isinstance(answer, dict) and isinstance(answer.get("metadata"), dict):
        document.outcome = "applied"
        document.answer = {"status": status}
        # Kubernetes' reading of the text names the object from now on; the rest of what it stored
        # (a Secret's data among it) stays in the cluster, where the suite reads it like any other.
        stored = answer["metadata"]
        if body["kind"] == "CustomResourceDefinition" and body["apiVersion"] == "apiextensions.k8s.io/v1":
            document.serves = _served(answer)
        document.body = {"apiVersion": answer.get("apiVersion"), "kind": answer.get("kind"),
                         "metadata": {k: stored[k] for k in ("name", "namespace", "uid") if k in stored}}
    elif body["kind"] == "Secret":
        # The server's message can quote the value it refused (`got ...{Value:84629173}`).
        reason = answer.get("reason") if isinstance(answer, dict) else None
        _reject(document, status, f"the API server refused this Secret ({reason or 'no reason given'}); its "
                                  "message is withheld, since it can quote the Secret's values")
    else:
        message = answer.get("message") if isinstance(answer, dict) else None
        _reject(document, status, str(message or answer))


def _served(crd: dict) -> list[tuple[str, str]]:
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    kind = (spec.get("names") or {}).get("kind")
    return [(f"{spec.get('group')}/{version.get('name')}", kind) for version in spec.get("versions") or []
            if isinstance(version, dict) and version.get("served")]


def _wait_for_crds(cluster, crds: list[Document], timeout: float = 30.0) -> None:
    """Until discovery lists each applied CRD's served kinds. It does so once the CRD is Established,
    and discovery is what places the documents after the CRDs. A discovery answer is a few hundred
    bytes, where each poll of a CRD itself returned up to a megabyte."""
    wanted: dict[str, set[str]] = {}
    for document in crds:
        for group_version, kind in document.serves:
            wanted.setdefault(group_version, set()).add(kind)
    deadline = time.monotonic() + timeout
    for group_version, kinds in sorted(wanted.items()):
        while time.monotonic() < deadline:
            status, listing = cluster.api_request("GET", f"/apis/{group_version}")
            served = {r.get("kind") for r in (listing.get("resources") or []) if isinstance(r, dict)} \
                if status == 200 and isinstance(listing, dict) else set()
            if kinds <= served:
                break
            time.sleep(0.05)


def _wait_for_default_service_accounts(cluster, documents: list[Document], timeout: float = 20.0) -> None:
    # Pod dry-runs in a namespace are refused until its default ServiceAccount exists.
    namespaces = {d.body["metadata"]["name"] for d in documents
                  if d.outcome == "applied" and d.body.get("kind") == "Namespace"}
    deadline = time.monotonic() + timeout
    for namespace in sorted(namespaces):
        while time.monotonic() < deadline:
            status, _ = cluster.api_request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
            if status == 200:
                break
            time.sleep(0.05)


def sources(documents: list[Document]) -> dict[tuple, tuple[str, int]]:
    """(kind, namespace, name) -> (file, line), namespaced as applied."""
    return {d.key(): (d.source, d.line) for d in documents if isinstance(d.body, dict)}


def describe(documents: list[Document]) -> str:
    return json.dumps({"applied": sum(d.outcome == "applied" for d in documents),
                       "rejected": sum(d.outcome == "rejected" for d in documents)})
