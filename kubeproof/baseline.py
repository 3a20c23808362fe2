"""Baselines: what a cluster is expected to meet, read from YAML and validated on load.

Errors name the file, the line and the field, so a typo in a baseline never turns into a silently
weaker audit."""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

LEVELS = ("privileged", "baseline", "restricted")


class BaselineError(Exception):
    """A baseline that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Waiver:
    """An accepted risk: findings of one control on the objects the selector matches are reported as
    waived, with this waiver, until it expires. Not-verified results are waived only if it says so."""

    control: str
    justification: str
    owner: str
    expires: datetime.date
    kind: str = "*"
    namespace: str = "*"
    name: str = "*"
    not_verified: bool = False
    line: int = 0  # where it is written, so reports can point at it

    @property
    def label(self) -> str:
        return f"{self.control} {self.kind}/{self.namespace}/{self.name} (line {self.line}, owner {self.owner})"

    def expired(self, today: datetime.date) -> bool:
        return today > self.expires

    def covers(self, controls, obj: dict | None) -> bool:
        if self.control not in controls:
            return False
        obj = obj or {}
        return (
            fnmatch.fnmatchcase(str(obj.get("kind") or ""), self.kind)
            and fnmatch.fnmatchcase(str(obj.get("namespace") or ""), self.namespace)
            and fnmatch.fnmatchcase(str(obj.get("name") or ""), self.name)
        )


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
    waivers: tuple[Waiver, ...] = ()

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
    "waivers": ("list[waiver]", "accepted risks: control, object selector, justification, owner, expiry"),
    "rbac": {
        "wildcard_roles_allowed": ("list[str]", "ClusterRole/NAME or Role/NAMESPACE/NAME patterns"),
        "cluster_admin_subjects": ("list[str]", "User/NAME, Group/NAME or ServiceAccount/NAMESPACE/NAME patterns"),
        "unauthenticated_bindings_allowed": ("list[str]", "ClusterRoleBinding/NAME or RoleBinding/NAMESPACE/NAME patterns"),
    },
}


# The allow-lists' entry forms: kind -> how many non-empty "/"-separated parts follow it.
REFERENCE_FORMS = {
    "rbac.cluster_admin_subjects": {"User": 1, "Group": 1, "ServiceAccount": 2},
    "rbac.wildcard_roles_allowed": {"ClusterRole": 1, "Role": 2},
    "rbac.unauthenticated_bindings_allowed": {"ClusterRoleBinding": 1, "RoleBinding": 2},
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
            _check_reference(path, item, field_name)
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
            if key_node.value in out:
                # A second entry would silently replace the first one's level.
                raise BaselineError(f"{_where(path, key_node)}: field '{field_name}.{key_node.value}' is given twice")
            out[key_node.value] = _check(path, value_node, ("level", ""), f"{field_name}.{key_node.value}")
        return out
    if kind == "list[waiver]":
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise BaselineError(f"{_where(path, node)}: field '{field_name}' must be a list of waivers")
        return [_waiver(path, item, f"{field_name}[{index}]") for index, item in enumerate(node.value)]
    raise AssertionError(kind)


WAIVER_FIELDS = {
    "control": "the control id the waiver covers, e.g. 5.1.3",
    "kind": "object kind pattern (default *)",
    "namespace": "namespace pattern (default *; empty for cluster-scoped objects)",
    "name": "object name pattern (default *)",
    "justification": "why the risk is accepted",
    "owner": "who answers for it",
    "expires": "YYYY-MM-DD after which the waiver fails the run",
    "not_verified": "true to also waive results that could not be verified (default false)",
}
REQUIRED_WAIVER_FIELDS = ("control", "justification", "owner", "expires")


def _waiver(path: Path, node: yaml.Node, field_name: str) -> Waiver:
    if not isinstance(node, yaml.MappingNode):
        raise BaselineError(f"{_where(path, node)}: {field_name} must be a mapping with {', '.join(REQUIRED_WAIVER_FIELDS)}")
    values: dict = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in WAIVER_FIELDS:
            raise BaselineError(
                f"{_where(path, key_node)}: unknown field '{field_name}.{key}' (known here: {', '.join(WAIVER_FIELDS)})"
            )
        if key in values:
            raise BaselineError(f"{_where(path, key_node)}: field '{field_name}.{key}' is given twice")
        if not isinstance(value_node, yaml.ScalarNode):
            raise BaselineError(f"{_where(path, value_node)}: field '{field_name}.{key}' must be a single value")
        values[key] = value_node
    for required in REQUIRED_WAIVER_FIELDS:
        if required not in values or not values[required].value.strip():
            raise BaselineError(f"{_where(path, node)}: {field_name} needs '{required}' ({WAIVER_FIELDS[required]})")
    try:
        expires = datetime.date.fromisoformat(values["expires"].value)
    except ValueError:
        raise BaselineError(
            f"{_where(path, values['expires'])}: field '{field_name}.expires' must be a date YYYY-MM-DD, "
            f"not {values['expires'].value!r}"
        ) from None
    flag = values.get("not_verified")
    if flag is not None and flag.value not in ("true", "false"):
        raise BaselineError(f"{_where(path, flag)}: field '{field_name}.not_verified' must be true or false")
    return Waiver(
        control=values["control"].value, justification=values["justification"].value, owner=values["owner"].value,
        expires=expires, kind=values["kind"].value if "kind" in values else "*",
        namespace=values["namespace"].value if "namespace" in values else "*",
        name=values["name"].value if "name" in values else "*",
        not_verified=bool(flag is not None and flag.value == "true"), line=node.start_mark.line + 1,
    )


def _shown(node: yaml.Node) -> str:
    return repr(node.value) if isinstance(node, yaml.ScalarNode) else f"a {node.id}"


def _check_reference(path: Path, node: yaml.ScalarNode, field_name: str) -> None:
    """Checked entry by entry, so the error names the line; an empty part ("Role//x") is refused too,
    as no object has an empty namespace or name."""
    kinds = REFERENCE_FORMS.get(field_name)
    if kinds is None:
        return
    kind, _, rest = node.value.partition("/")
    parts = rest.split("/")
    if kind not in kinds or len(parts) != kinds[kind] or not all(parts):
        forms = ", ".join(f"{k}/" + "/".join(["NAMESPACE", "NAME"][2 - n:]) for k, n in kinds.items())
        raise BaselineError(f"{_where(path, node)}: {field_name}: {node.value!r} is not one of the forms {forms}")


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
        position = getattr(error, "position", None)  # a ReaderError (e.g. a control character) has no mark
        line = mark.line + 1 if mark else text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        where = f"{path}:{line}" if line else str(path)
        raise BaselineError(f"{where}: not valid YAML: {getattr(error, 'problem', None) or error}") from None
    data = {} if node is None else _check(path, node, SCHEMA, "")
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
        waivers=tuple(data.get("waivers", [])),
    )


def locate(explicit: str | None, cluster: str, root: Path) -> Path:
    """--baseline FILE; with --baseline DIR, DIR/<cluster>.yaml, else DIR/default.yaml; without it
    the same in baselines/. A folder lets one run of many clusters give each its own baseline."""
    if explicit and not Path(explicit).is_dir():
        return Path(explicit)
    folder = Path(explicit) if explicit else root / "baselines"
    # A context name may hold characters a file name cannot (an EKS ARN's '/'): it is also looked
    # for as the run folder spells it.
    for name in dict.fromkeys((cluster, safe_name(cluster))):
        own = folder / f"{name}.yaml"
        if "/" not in name and own.is_file():
            return own
    return folder / "default.yaml"


def safe_name(cluster: str) -> str:
    """The cluster's name as a file or folder name: letters, digits, '-', '_' and '.'; the rest '_'."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)
