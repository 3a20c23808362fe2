"""Reading a workload's pod template (a controller's, or a bare pod's own spec) without guessing.

Every workload check walks the same containers; this keeps the walk, and its refusals, in one place.
A template that cannot be read is NotVerified, never a workload with nothing to judge."""

from __future__ import annotations

from dataclasses import dataclass

from kubeproof.checks._shape import listing, mapping, metadata, text
from kubeproof.pod_security import pod_spec_of
from kubeproof.results import NotVerified, ObjectRef

# Upstream order: init containers run first, ephemeral ones are added to a running pod later.
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class Container:
    path: str  # from the object's root, e.g. spec.template.spec.containers[0]
    name: str
    fields: dict

    def describe(self) -> str:
        return f"container {self.name!r}"


@dataclass(frozen=True)
class PodTemplate:
    ref: ObjectRef
    namespace: str
    metadata: dict
    spec: dict
    spec_path: str  # e.g. "spec.template.spec", or "spec" for a bare pod
    containers: tuple[Container, ...]


def pod_template(workload) -> PodTemplate:
    if not isinstance(workload, dict):
        raise NotVerified(f"the workload is a {type(workload).__name__}, not an object")
    meta = metadata(workload, "workload")
    kind = text(workload.get("kind"), "workload kind")
    namespace = text(meta.get("namespace"), f"{kind} metadata.namespace")
    try:
        located = pod_spec_of(workload)
    except ValueError as error:
        raise NotVerified(f"the pod template of {kind} {namespace}/{meta['name']} cannot be read: {error}") from None
    if located is None:
        raise NotVerified(f"kind {kind!r} carries no pod template kubeproof knows how to read")
    pod_metadata, spec, prefix = located
    ref = ObjectRef.of(workload, kind)
    spec_path = f"{prefix}spec"
    containers = []
    for list_name in CONTAINER_LISTS:
        where = f"{spec_path}.{list_name}"
        for index, fields in enumerate(listing(spec.get(list_name), f"{ref} {where}")):
            path = f"{where}[{index}]"
            fields = mapping(fields, f"{ref} {path}")
            name = text(fields.get("name"), f"{ref} {path}.name")
            containers.append(Container(path, name, fields))
    if not any(c.path.startswith(f"{spec_path}.containers[") for c in containers):
        # A pod needs at least one container; an empty template is unreadable input, not a clean one.
        raise NotVerified(f"{ref} has no containers at {spec_path}.containers; it cannot be judged")
    return PodTemplate(ref, namespace, mapping(pod_metadata, f"{ref} pod metadata"), spec, spec_path, tuple(containers))


def namespace_of(workload) -> str:
    meta = metadata(workload, "workload")
    return text(meta.get("namespace"), "workload metadata.namespace")
