"""The pod as the Pod Security checks (kubeproof.pod_security) read it: where a workload keeps its pod
template, and fail-closed readers for the fields a check looks at. ``None`` reads as "not set", as the
API server's decoder reads it; any other unexpected type raises _Uninterpretable, which the evaluator
reports as a violation instead of guessing."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------
# Locating the pod template inside a workload
# --------------------------------------------------------------------------

# Path (from the object root) to the object holding the pod's metadata and spec.
_POD_TEMPLATE_LOCATIONS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "PodTemplate": ("template",),
}


@dataclass(frozen=True)
class _Located:
    """A raw value together with the field path it was read from."""

    path: str
    value: Any


def _join_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _locate_pod(obj: dict) -> tuple[_Located, _Located, str] | None:
    """Find pod metadata and spec without ever failing.

    When a step on the way to the template is not an object, both metadata
    and spec point at that broken step, so every check that reads them reports
    it as uninterpretable rather than silently seeing an empty pod.
    """
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in _POD_TEMPLATE_LOCATIONS:
        return None
    holder: Any = obj
    holder_path = ""
    for key in _POD_TEMPLATE_LOCATIONS[kind]:
        holder_path = _join_path(holder_path, key)
        holder = holder.get(key)
        if holder is None:
            holder = {}
        if not isinstance(holder, dict):
            broken = _Located(holder_path, holder)
            return broken, broken, holder_path + "."
    prefix = holder_path + "." if holder_path else ""
    return (
        _Located(prefix + "metadata", holder.get("metadata")),
        _Located(prefix + "spec", holder.get("spec")),
        prefix,
    )


def pod_spec_of(obj: dict) -> tuple[dict, dict, str] | None:
    """Return (pod metadata, pod spec, path prefix) for a pod-bearing object.

    The prefix is what to put in front of pod-relative paths such as
    ``spec.containers[0]``: ``""`` for a Pod, ``"spec.template."`` for a
    Deployment, ``"spec.jobTemplate.spec.template."`` for a CronJob and
    ``"template."`` for a PodTemplate.  Missing metadata/spec come back as
    empty dicts.  Returns None for kinds that carry no pod template; raises
    ValueError for a non-dict object or a template that is not an object.
    """
    _require_mapping_object(obj)
    located = _locate_pod(obj)
    if located is None:
        return None
    metadata, spec, prefix = located
    parts = []
    for part in (metadata, spec):
        if part.value is None:
            parts.append({})
        elif isinstance(part.value, dict):
            parts.append(part.value)
        else:
            raise ValueError(f"{part.path} is a {_type_name(part.value)}, expected an object")
    return parts[0], parts[1], prefix


def _require_mapping_object(obj: Any) -> None:
    if not isinstance(obj, dict):
        raise ValueError(
            f"expected a Kubernetes object as a dict, got {_type_name(obj)}"
        )


# --------------------------------------------------------------------------
# Typed, fail-closed field reading
# --------------------------------------------------------------------------


class _Uninterpretable(Exception):
    """A field a check depends on has a shape the check cannot interpret."""

    def __init__(self, path: str, expected: str, value: Any) -> None:
        super().__init__(path)
        self.path = path
        self.detail = (
            f"could not interpret {path}: expected {expected}, found {_type_name(value)}"
        )


_JSON_TYPE_NAMES = {
    dict: "object",
    list: "list",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _read_mapping(located: _Located) -> Mapping:
    if located.value is None:
        return {}
    if isinstance(located.value, dict):
        return located.value
    raise _Uninterpretable(located.path, "an object", located.value)


def _read_list(located: _Located) -> list:
    if located.value is None:
        return []
    if isinstance(located.value, list):
        return located.value
    raise _Uninterpretable(located.path, "a list", located.value)


def _read_bool(located: _Located) -> bool | None:
    if located.value is None or isinstance(located.value, bool):
        return located.value
    raise _Uninterpretable(located.path, "true or false", located.value)


def _read_int(located: _Located) -> int | None:
    # bool is an int subclass in Python, but `true` is not a valid number here.
    if located.value is None or (
        isinstance(located.value, int) and not isinstance(located.value, bool)
    ):
        return located.value
    raise _Uninterpretable(located.path, "an integer", located.value)


def _read_str(located: _Located) -> str | None:
    if located.value is None or isinstance(located.value, str):
        return located.value
    raise _Uninterpretable(located.path, "a string", located.value)


def _child(mapping: Mapping, parent_path: str, key: str) -> _Located:
    return _Located(_join_path(parent_path, key), mapping.get(key))


def _child_mapping(mapping: Mapping, parent_path: str, key: str) -> tuple[Mapping, str]:
    located = _child(mapping, parent_path, key)
    return _read_mapping(located), located.path


def _items(items: list, list_path: str) -> Iterator[_Located]:
    for index, item in enumerate(items):
        yield _Located(f"{list_path}[{index}]", item)


def _quote(text: str, limit: int = 64) -> str:
    # Values end up in reports; keep them short and unambiguous.
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------
# Pod view shared by all checks
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Container:
    path: str
    fields: Mapping
    label: str

    def security_context(self) -> tuple[Mapping, str]:
        return _child_mapping(self.fields, self.path, "securityContext")


# Order matches upstream: init containers, regular containers, ephemeral containers.
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class _Pod:
    metadata: _Located
    spec: _Located

    def spec_fields(self) -> Mapping:
        return _read_mapping(self.spec)

    def spec_child(self, key: str) -> _Located:
        return _child(self.spec_fields(), self.spec.path, key)

    def security_context(self) -> tuple[Mapping, str]:
        return _child_mapping(self.spec_fields(), self.spec.path, "securityContext")

    def annotations(self) -> tuple[Mapping, str]:
        metadata = _read_mapping(self.metadata)
        return _child_mapping(metadata, self.metadata.path, "annotations")

    def containers(self) -> Iterator[_Container]:
        for list_name in _CONTAINER_LISTS:
            for located in _items(_read_list(self.spec_child(list_name)), _join_path(self.spec.path, list_name)):
                fields = _read_mapping(located)
                yield _Container(located.path, fields, _container_label(fields, located.path))

    def volumes(self) -> Iterator[tuple[Mapping, str, str]]:
        volumes = self.spec_child("volumes")
        for located in _items(_read_list(volumes), volumes.path):
            fields = _read_mapping(located)
            name = fields.get("name")
            label = f"volume {_quote(name)}" if isinstance(name, str) else located.path
            yield fields, located.path, label

    def is_windows(self) -> bool:
        os_fields, os_path = _child_mapping(self.spec_fields(), self.spec.path, "os")
        return _read_str(_child(os_fields, os_path, "name")) == "windows"

    def in_user_namespace(self) -> bool:
        return _read_bool(self.spec_child("hostUsers")) is False


def _container_label(fields: Mapping, path: str) -> str:
    name = fields.get("name")
    return f"container {_quote(name)}" if isinstance(name, str) else path


@dataclass(frozen=True)
class _Finding:
    path: str
    text: str


_CheckImplementation = Callable[[_Pod], list[_Finding]]
