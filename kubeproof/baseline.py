"""Baselines: what a cluster is expected to meet, read from YAML and validated on load.

Errors name the file, the line and the field, so a typo in a baseline never turns into a silently
weaker audit."""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

LEVELS = ("privileged", "baseline", "restricted")


class BaselineError(Exception):
    """A baseline that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Baseline:
    path: str
    sha256: str
    pod_security_default: str = "restricted"
    pod_security_namespaces: tuple[tuple[str, str], ...] = ()  # (pattern, level), first match wins
    default_deny_exempt: tuple[str, ...] = ()
    wildcard_roles_allowed: tuple[str, ...] = ()  # "ClusterRole/name" or "Role/namespace/name" patterns
    cluster_admin_subjects: tuple[str, ...] = ("Group/system:masters",)
    unauthenticated_bindings_allowed: tuple[str, ...] = ()
    allowed_registries: tuple[str, ...] = ()  # empty: any registry; else image prefixes/patterns
    require_digest_namespaces: tuple[str, ...] = ()  # namespaces (patterns) whose images must be pinned by digest
    sensitive_namespaces: tuple[str, ...] = ()  # workloads here must run on tainted, dedicated nodes
    monitoring_daemonsets: tuple[str, ...] = ()  # "NAMESPACE/NAME" patterns of agents expected on every node

    def is_sensitive(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.sensitive_namespaces)

    def requires_digest(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.require_digest_namespaces)

    def required_pod_security(self, namespace: str) -> str:
        for pattern, level in self.pod_security_namespaces:
            if fnmatch.fnmatchcase(namespace, pattern):
                return level
        return self.pod_security_default

    def default_deny_exempted(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.default_deny_exempt)

    def wildcard_allowed(self, reference: str) -> bool:
        return any(fnmatch.fnmatchcase(reference, p) for p in self.wildcard_roles_allowed)

    def cluster_admin_allowed(self, subject: str) -> bool:
        return any(fnmatch.fnmatchcase(subject, p) for p in self.cluster_admin_subjects)

    def unauthenticated_binding_allowed(self, reference: str) -> bool:
        return any(fnmatch.fnmatchcase(reference, p) for p in self.unauthenticated_bindings_allowed)


# The shape of a baseline file: field -> (type, description). Types: "level", "str", "list[str]",
# "map[str,level]", or a nested dict.
SCHEMA: dict = {
    "pod_security": {
        "default": ("level", "level every namespace must enforce unless a pattern below says otherwise"),
        "namespaces": ("map[str,level]", "namespace name or pattern -> required level"),
    },
    "network_policy": {
        "exempt_namespaces": ("list[str]", "namespaces (patterns) that need no default-deny policy"),
    },
    "images": {
        "allowed_registries": ("list[str]", "registry host (and optional path) patterns images may come from; empty allows any"),
        "require_digest_namespaces": ("list[str]", "namespaces (patterns) whose images must be pinned by @sha256 digest"),
    },
    "isolation": {
        "sensitive_namespaces": ("list[str]", "namespaces (patterns) whose workloads must run on tainted, dedicated nodes"),
    },
    "monitoring": {
        "daemonsets": ("list[str]", "NAMESPACE/NAME patterns of agents (logging, monitoring, runtime security) expected on every node"),
    },
    "rbac": {
        "wildcard_roles_allowed": ("list[str]", "ClusterRole/NAME or Role/NAMESPACE/NAME patterns"),
        "cluster_admin_subjects": ("list[str]", "User/NAME, Group/NAME or ServiceAccount/NAMESPACE/NAME patterns"),
        "unauthenticated_bindings_allowed": ("list[str]", "ClusterRoleBinding/NAME or RoleBinding/NAMESPACE/NAME patterns"),
    },
}


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _check(path: Path, node: yaml.Node, schema, field_name: str) -> object:
    if isinstance(schema, dict):
        if not isinstance(node, yaml.MappingNode):
            raise BaselineError(f"{_where(path, node)}: field '{field_name or '(top level)'}' must be a mapping")
        out = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            qualified = f"{field_name}.{key}" if field_name else str(key)
            if key not in schema:
                known = ", ".join(sorted(schema))
                raise BaselineError(f"{_where(path, key_node)}: unknown field '{qualified}' (known here: {known})")
            if key in out:
                raise BaselineError(f"{_where(path, key_node)}: field '{qualified}' is given twice")
            out[key] = _check(path, value_node, schema[key], qualified)
        return out
    kind, _ = schema
    if kind == "level":
        if not (isinstance(node, yaml.ScalarNode) and node.value in LEVELS):
            raise BaselineError(
                f"{_where(path, node)}: field '{field_name}' must be one of {', '.join(LEVELS)}, not {_shown(node)}"
            )
        return node.value
    if kind == "list[str]":
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise BaselineError(f"{_where(path, node)}: field '{field_name}' must be a list of strings")
        items = []
        for item in node.value:
            if not (isinstance(item, yaml.ScalarNode) and item.tag.endswith(":str") and item.value):
                raise BaselineError(f"{_where(path, item)}: every entry of '{field_name}' must be a non-empty string")
            items.append(item.value)
        return items
    if kind == "map[str,level]":
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise BaselineError(f"{_where(path, node)}: field '{field_name}' must map names to levels")
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or not key_node.value:
                raise BaselineError(f"{_where(path, key_node)}: keys of '{field_name}' must be namespace names")
            out[key_node.value] = _check(path, value_node, ("level", ""), f"{field_name}.{key_node.value}")
        return out
    raise AssertionError(kind)


def _shown(node: yaml.Node) -> str:
    return repr(node.value) if isinstance(node, yaml.ScalarNode) else f"a {node.id}"


def _validate_references(path: Path, data: dict) -> None:
    rbac = data.get("rbac", {})
    shapes = {
        "cluster_admin_subjects": {"User": 1, "Group": 1, "ServiceAccount": 2},
        "wildcard_roles_allowed": {"ClusterRole": 1, "Role": 2},
        "unauthenticated_bindings_allowed": {"ClusterRoleBinding": 1, "RoleBinding": 2},
    }
    for field_name, kinds in shapes.items():
        for entry in rbac.get(field_name, []):
            kind, _, rest = entry.partition("/")
            if kind not in kinds or not rest or rest.count("/") != kinds[kind] - 1:
                forms = ", ".join(f"{k}/" + "/".join(["NAMESPACE", "NAME"][2 - n:]) for k, n in kinds.items())
                raise BaselineError(f"{path}: rbac.{field_name}: {entry!r} is not one of the forms {forms}")


def load(path: str | Path) -> Baseline:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise BaselineError(f"{path}: cannot read the baseline: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise BaselineError(f"{path}: the baseline is not UTF-8 text") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise BaselineError(f"{where}: not valid YAML: {getattr(error, 'problem', None) or error}") from None
    data = {} if node is None else _check(path, node, SCHEMA, "")
    _validate_references(path, data)
    pod_security = data.get("pod_security", {})
    rbac = data.get("rbac", {})
    defaults = Baseline(str(path), "")
    return Baseline(
        path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        pod_security_default=pod_security.get("default", defaults.pod_security_default),
        pod_security_namespaces=tuple(pod_security.get("namespaces", {}).items()),
        default_deny_exempt=tuple(data.get("network_policy", {}).get("exempt_namespaces", [])),
        wildcard_roles_allowed=tuple(rbac.get("wildcard_roles_allowed", [])),
        cluster_admin_subjects=tuple(rbac.get("cluster_admin_subjects", defaults.cluster_admin_subjects)),
        unauthenticated_bindings_allowed=tuple(rbac.get("unauthenticated_bindings_allowed", [])),
        allowed_registries=tuple(data.get("images", {}).get("allowed_registries", [])),
        require_digest_namespaces=tuple(data.get("images", {}).get("require_digest_namespaces", [])),
        sensitive_namespaces=tuple(data.get("isolation", {}).get("sensitive_namespaces", [])),
        monitoring_daemonsets=tuple(data.get("monitoring", {}).get("daemonsets", [])),
    )


def locate(explicit: str | None, cluster: str, root: Path) -> Path:
    """--baseline, else baselines/<cluster>.yaml, else baselines/default.yaml."""
    if explicit:
        return Path(explicit)
    own = root / "baselines" / f"{cluster}.yaml"
    return own if own.is_file() else root / "baselines" / "default.yaml"
