"""Files on the nodes (CIS 1.1 on a control-plane node, 4.1 on a worker node) and etcd's own CA
(CIS 2.7), judged from facts a backend gathered with stat on the node.

A fact is one file (or directory):
    {"role": ..., "path": ..., "exists": bool, "mode": st_mode & 0o7777, "uid": int, "gid": int,
     "user": name or None, "group": name or None, "is_dir": bool}
and, for a file that is not there on purpose, "absent_reason": why the role does not apply on this
node (a cluster whose control plane does not run from static pod manifests has no manifest files).

How a row treats what the facts do not settle, in order:
  * a file that breaks the rule is a finding, whatever else is unknown about the role's other files;
  * no fact at all for the role: the node's files were not visible, NotVerified;
  * a file that does not exist satisfies the CIS "if the file exists" controls (4.1.3, 4.1.4, 4.1.9,
    4.1.10); for every other control it is NotVerified, unless its fact carries absent_reason;
  * when every file of the role is absent with a reason, the control is NotApplicable (reported as
    exempt), not a pass.

Pure: facts in, findings out."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubeproof.checks._shape import json_type as _json_type
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Node file permissions and ownership"


class NotApplicable(Exception):
    """The control does not apply to this node: the backend said why the files it is about do not
    exist. Neither a pass nor a failure; the plugin reports it as exempt."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


APISERVER_MANIFEST = "apiserver-manifest"
CONTROLLER_MANAGER_MANIFEST = "controller-manager-manifest"
SCHEDULER_MANIFEST = "scheduler-manifest"
ETCD_MANIFEST = "etcd-manifest"
CNI_CONFIG = "cni-config"  # every file of the CNI configuration
ETCD_DATA_DIR = "etcd-data-dir"
ADMIN_KUBECONFIG = "admin-kubeconfig"  # admin.conf, and super-admin.conf where kubeadm writes one
SCHEDULER_KUBECONFIG = "scheduler-kubeconfig"
CONTROLLER_MANAGER_KUBECONFIG = "controller-manager-kubeconfig"
PKI_DIR = "pki-dir"  # the PKI directory and everything under it
PKI_CERT = "pki-cert"
PKI_KEY = "pki-key"
KUBELET_SERVICE = "kubelet-service"  # the systemd unit and its drop-ins
PROXY_KUBECONFIG = "proxy-kubeconfig"
KUBELET_KUBECONFIG = "kubelet-kubeconfig"
KUBELET_CLIENT_CA = "kubelet-client-ca"
KUBELET_CONFIG = "kubelet-config"

ROLES = (
    APISERVER_MANIFEST, CONTROLLER_MANAGER_MANIFEST, SCHEDULER_MANIFEST, ETCD_MANIFEST, CNI_CONFIG,
    ETCD_DATA_DIR, ADMIN_KUBECONFIG, SCHEDULER_KUBECONFIG, CONTROLLER_MANAGER_KUBECONFIG, PKI_DIR, PKI_CERT,
    PKI_KEY, KUBELET_SERVICE, PROXY_KUBECONFIG, KUBELET_KUBECONFIG, KUBELET_CLIENT_CA, KUBELET_CONFIG,
)
DIRECTORY_ROLES = frozenset({ETCD_DATA_DIR})  # a fact of this role that is not a directory is the wrong fact

ETCD_CA_CONTROL = "2.7"


# -- reading facts -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileFact:
    role: str
    path: str
    exists: bool
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    user: str | None = None
    group: str | None = None
    is_dir: bool | None = None
    absent_reason: str | None = None

    def owner(self) -> str:
        names = f"{self.user if self.user is not None else self.uid}:{self.group if self.group is not None else self.gid}"
        numbers = f"{self.uid}:{self.gid}"
        return f"owner {numbers}" if names == numbers else f"owner {names} ({numbers})"

    def describe(self) -> str:
        if not self.exists:
            return f"absent: {self.absent_reason}" if self.absent_reason else "absent"
        return f"{'directory' if self.is_dir else 'file'}, mode {self.mode:04o}, {self.owner()}"


def _number(raw: dict, key: str, where: str, top: int) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise NotVerified(f"{where}: {key} is {value!r}, not what stat reports; it cannot be judged")
    return value


def read_fact(raw, where: str) -> FileFact:
    """One fact, checked for the shape stat gives; anything else is NotVerified."""
    if not isinstance(raw, dict):
        raise NotVerified(f"{where} is a {_json_type(raw)}, not a file's facts")
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise NotVerified(f"{where} has no path")
    where = f"{where} ({path})"
    exists = raw.get("exists")
    if not isinstance(exists, bool):
        raise NotVerified(f"{where}: whether the file exists is not known")
    reason = raw.get("absent_reason")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        raise NotVerified(f"{where}: absent_reason is not a reason")
    role = raw.get("role")
    if not isinstance(role, str):
        raise NotVerified(f"{where} has no role")
    if not exists:
        return FileFact(role, path, False, absent_reason=reason)
    if reason is not None:
        raise NotVerified(f"{where}: the file is said both to exist and to be absent")
    names = {}
    for key in ("user", "group"):
        name = raw.get(key)
        if name is not None and (not isinstance(name, str) or not name):
            raise NotVerified(f"{where}: {key} is {name!r}, not an account name")
        names[key] = name
    is_dir = raw.get("is_dir")
    if not isinstance(is_dir, bool):
        raise NotVerified(f"{where}: whether it is a directory is not known")
    return FileFact(role, path, True, _number(raw, "mode", where, 0o7777), _number(raw, "uid", where, 2**32 - 1),
                    _number(raw, "gid", where, 2**32 - 1), names["user"], names["group"], is_dir)


def _raw_facts_of(role: str, facts) -> list[tuple[str, object]]:
    if not isinstance(facts, (list, tuple)):
        raise NotVerified(f"the node's file facts are a {_json_type(facts)}, not a list")
    mine = []
    for index, raw in enumerate(facts):
        fact_role = raw.get("role") if isinstance(raw, dict) else None
        if not isinstance(fact_role, str):
            # Its role is unknown, so it may be one of ours: nothing about the role can be trusted.
            raise NotVerified(f"file fact #{index} has no role; the node's files cannot be sorted out")
        if fact_role == role:
            mine.append((f"file fact #{index}", raw))
    return mine


# -- rules -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mode:
    """No permission bits outside `limit` (0o600 allows 0o400 and 0o600, never 0o640 or 0o4600)."""

    limit: int

    @property
    def expected(self) -> str:
        return f"mode {self.limit:04o} or stricter"

    def observed(self, fact: FileFact) -> str | None:
        return None if fact.mode & ~self.limit == 0 else f"mode {fact.mode:04o}"


@dataclass(frozen=True)
class Owner:
    """Owned by user:group. With `uid`/`gid` the owner is judged by number (root is 0 everywhere);
    without, by name, because accounts such as etcd have different numbers on different systems."""

    user: str
    group: str
    uid: int | None = None
    gid: int | None = None

    @property
    def expected(self) -> str:
        return f"owned by {self.user}:{self.group}"

    def observed(self, fact: FileFact) -> str | None:
        verdicts = [self._matches(*part) for part in (
            (self.uid, self.user, fact.uid, fact.user, "user"), (self.gid, self.group, fact.gid, fact.group, "group"))]
        if any(verdict is False for verdict in verdicts):
            return fact.owner()
        unknown = [verdict for verdict in verdicts if isinstance(verdict, str)]
        if unknown:
            raise NotVerified(f"{fact.path}: {' and '.join(unknown)}")
        return None

    @staticmethod
    def _matches(want_number, want_name, number, name, what):
        if want_number is not None:
            return number == want_number
        if number == 0:
            return False  # 0 is root whatever /etc/passwd calls it
        if name is not None:
            return name == want_name
        return f"the {what} {number} has no name, so whether it is {want_name} is not known"


ROOT = Owner("root", "root", 0, 0)
ETCD_ACCOUNT = Owner("etcd", "etcd")


@dataclass(frozen=True)
class Row:
    """One CIS control about the files of one role."""

    id: str
    role: str
    rule: Mode | Owner
    remediation: str
    if_exists: bool = False  # CIS asks only about the file when it exists

    @property
    def expected(self) -> str:
        return self.rule.expected

    def __str__(self) -> str:
        return f"{self.id} {self.role}: {self.expected}"


def _chmod(what: str, mode: str, why: str) -> str:
    return f"Restrict {what} with chmod {mode}: {why}"


def _chown(what: str, recursive: bool = False) -> str:
    return (f"Make root:root the owner of {what} (chown{' -R' if recursive else ''} root:root) so no other "
            "account on the node can change it.")


_MANIFEST_WHY = "the kubelet starts whatever a static pod manifest says, with the privileges it asks for."
_KUBECONFIG_WHY = "it holds a credential that acts for that component against the API server."

ROWS: tuple[Row, ...] = (
    Row("1.1.1", APISERVER_MANIFEST, Mode(0o600), _chmod("the kube-apiserver static pod manifest", "600", _MANIFEST_WHY)),
    Row("1.1.2", APISERVER_MANIFEST, ROOT, _chown("the kube-apiserver static pod manifest")),
    Row("1.1.3", CONTROLLER_MANAGER_MANIFEST, Mode(0o600),
        _chmod("the kube-controller-manager static pod manifest", "600", _MANIFEST_WHY)),
    Row("1.1.4", CONTROLLER_MANAGER_MANIFEST, ROOT, _chown("the kube-controller-manager static pod manifest")),
    Row("1.1.5", SCHEDULER_MANIFEST, Mode(0o600), _chmod("the kube-scheduler static pod manifest", "600", _MANIFEST_WHY)),
    Row("1.1.6", SCHEDULER_MANIFEST, ROOT, _chown("the kube-scheduler static pod manifest")),
    Row("1.1.7", ETCD_MANIFEST, Mode(0o600), _chmod("the etcd static pod manifest", "600", _MANIFEST_WHY)),
    Row("1.1.8", ETCD_MANIFEST, ROOT, _chown("the etcd static pod manifest")),
    Row("1.1.9", CNI_CONFIG, Mode(0o600),
        _chmod("the CNI configuration files", "600", "they decide how every pod on the node is connected.")),
    Row("1.1.10", CNI_CONFIG, ROOT, _chown("the CNI configuration files")),
    Row("1.1.11", ETCD_DATA_DIR, Mode(0o700),
        _chmod("etcd's data directory", "700", "it holds every object of the cluster, Secrets included.")),
    Row("1.1.12", ETCD_DATA_DIR, ETCD_ACCOUNT,
        "Run etcd as its own etcd account and give it the data directory (chown -R etcd:etcd), so no other "
        "account on the node owns the cluster's data."),
    Row("1.1.13", ADMIN_KUBECONFIG, Mode(0o600),
        _chmod("admin.conf (and super-admin.conf)", "600", "it holds a cluster-admin credential.")),
    Row("1.1.14", ADMIN_KUBECONFIG, ROOT, _chown("admin.conf (and super-admin.conf)")),
    Row("1.1.15", SCHEDULER_KUBECONFIG, Mode(0o600), _chmod("the kube-scheduler kubeconfig", "600", _KUBECONFIG_WHY)),
    Row("1.1.16", SCHEDULER_KUBECONFIG, ROOT, _chown("the kube-scheduler kubeconfig")),
    Row("1.1.17", CONTROLLER_MANAGER_KUBECONFIG, Mode(0o600),
        _chmod("the kube-controller-manager kubeconfig", "600", _KUBECONFIG_WHY)),
    Row("1.1.18", CONTROLLER_MANAGER_KUBECONFIG, ROOT, _chown("the kube-controller-manager kubeconfig")),
    Row("1.1.19", PKI_DIR, ROOT, _chown("the PKI directory and everything in it", recursive=True)),
    Row("1.1.20", PKI_CERT, Mode(0o644),
        _chmod("the certificates in the PKI directory", "644", "anyone may read a certificate, but only root "
               "may replace the one the cluster trusts.")),
    Row("1.1.21", PKI_KEY, Mode(0o600),
        _chmod("the private keys in the PKI directory", "600", "whoever reads a key can impersonate its owner.")),
    Row("4.1.1", KUBELET_SERVICE, Mode(0o600),
        _chmod("the kubelet's systemd unit and drop-ins", "600", "they set the flags the kubelet runs with.")),
    Row("4.1.2", KUBELET_SERVICE, ROOT, _chown("the kubelet's systemd unit and drop-ins")),
    Row("4.1.3", PROXY_KUBECONFIG, Mode(0o600), _chmod("kube-proxy's kubeconfig", "600", _KUBECONFIG_WHY), if_exists=True),
    Row("4.1.4", PROXY_KUBECONFIG, ROOT, _chown("kube-proxy's kubeconfig"), if_exists=True),
    Row("4.1.5", KUBELET_KUBECONFIG, Mode(0o600),
        _chmod("the kubelet's kubeconfig (kubelet.conf)", "600", "it holds the node's credential.")),
    Row("4.1.6", KUBELET_KUBECONFIG, ROOT, _chown("the kubelet's kubeconfig (kubelet.conf)")),
    Row("4.1.7", KUBELET_CLIENT_CA, Mode(0o644),
        _chmod("the CA file the kubelet verifies clients with", "644", "whoever can replace it decides which "
               "client certificates the kubelet accepts.")),
    Row("4.1.8", KUBELET_CLIENT_CA, ROOT, _chown("the CA file the kubelet verifies clients with")),
    Row("4.1.9", KUBELET_CONFIG, Mode(0o600),
        _chmod("the kubelet's configuration file", "600", "it decides how the kubelet authenticates and "
               "authorises callers."), if_exists=True),
    Row("4.1.10", KUBELET_CONFIG, ROOT, _chown("the kubelet's configuration file"), if_exists=True),
)

_BY_ID = {control.id: control for control in ROWS}
# The CIS ids each test of tests_cluster/test_node_files.py carries (tests_unit/test_markers.py holds its marks to them):
# one case per file row of the control plane (CIS 1.1) and of the worker nodes (CIS 4.1).
CIS_BY_TEST = {
    "test_control_plane_file": tuple(row.id for row in ROWS if row.id.startswith("1.1.")),
    "test_worker_node_file": tuple(row.id for row in ROWS if row.id.startswith("4.1.")),
    "test_etcd_has_a_certificate_authority_of_its_own": (ETCD_CA_CONTROL,),
}


def row(control_id: str) -> Row:
    return _BY_ID[control_id]


def rows_for(role: str) -> list[Row]:
    return [control for control in ROWS if control.role == role]


def findings(control_row: Row, facts, node: str) -> list[Finding]:
    """The files of the row's role on `node` that break its rule (empty: compliant). Raises
    NotVerified when the facts do not settle it and NotApplicable when the role does not apply."""
    mine = _raw_facts_of(control_row.role, facts)
    if not mine:
        raise NotVerified(f"the node's files were not visible: no {control_row.role} file was reported for "
                          f"node {node}")
    found: list[Finding] = []
    unknown: list[str] = []
    exempt: list[str] = []
    for where, raw in mine:
        try:
            fact = read_fact(raw, where)
            if not fact.exists:
                if control_row.if_exists:
                    continue
                if fact.absent_reason:
                    exempt.append(f"{fact.path}: {fact.absent_reason}")
                else:
                    unknown.append(f"{fact.path} does not exist on node {node}, and nothing says why it need not")
                continue
            if control_row.role in DIRECTORY_ROLES and not fact.is_dir:
                raise NotVerified(f"{fact.path} is not a directory, so it is not the {control_row.role}")
            observed = control_row.rule.observed(fact)
        except NotVerified as error:
            unknown.append(error.reason)
            continue
        if observed is not None:
            found.append(Finding((control_row.id,), ObjectRef("Node", node), fact.path, observed,
                                 control_row.expected, control_row.remediation))
    if found:
        return found  # a file that breaks the rule fails the control whatever else is unknown
    if unknown:
        raise NotVerified("; ".join(unknown))
    if exempt and len(exempt) == len(mine):
        raise NotApplicable("; ".join(exempt))
    return []


def evidence(control_row: Row, facts) -> dict:
    """Each file of the row's role as stat saw it, by path."""
    shown = {}
    for where, raw in _raw_facts_of(control_row.role, facts):
        try:
            fact = read_fact(raw, where)
            shown[fact.path] = fact.describe()
        except NotVerified as unknown:
            shown[where] = f"not readable: {unknown.reason}"
    return shown


# -- CIS 2.7: etcd's CA is not the cluster's ------------------------------------------------------------
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
ETCD_CA_REMEDIATION = (
    "Issue etcd's server and peer certificates from a CA of its own and point --trusted-ca-file at it. With "
    "the cluster's CA, any client certificate the cluster issues (a kubelet's, an administrator's) is "
    "also accepted by etcd, which then hands over every object it stores."
)


def fingerprint(value, what: str) -> str:
    """A SHA-256 fingerprint in one spelling (lower-case hex, no separators), from "AB:CD:...",
    "abcd..." or "sha256:..."."""
    if not isinstance(value, str):
        raise NotVerified(f"the SHA-256 fingerprint of {what} is not known")
    text = value.strip().lower()
    for prefix in ("sha256 fingerprint=", "sha256:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.replace(":", "").replace(" ", "")
    if not _FINGERPRINT.fullmatch(text):
        raise NotVerified(f"{value!r} is not a SHA-256 fingerprint ({what})")
    return text


def etcd_ca_findings(etcd_trusted_ca_fingerprint, cluster_ca_fingerprint, node: str) -> list[Finding]:
    """CIS 2.7: the CA etcd trusts for client certificates must not be the cluster's CA."""
    etcd = fingerprint(etcd_trusted_ca_fingerprint, "the CA etcd trusts (--trusted-ca-file)")
    cluster = fingerprint(cluster_ca_fingerprint, "the cluster's CA (kube-apiserver --client-ca-file)")
    if etcd != cluster:
        return []
    return [Finding((ETCD_CA_CONTROL,), ObjectRef("Node", node), "etcd --trusted-ca-file",
                    f"the cluster's CA (SHA-256 {etcd})", "a CA that only etcd and its clients use",
                    ETCD_CA_REMEDIATION)]
