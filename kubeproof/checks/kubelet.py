"""Kubelet configuration (CIS 4.2), judged from what a running kubelet serves on /configz: its
KubeletConfiguration (v1beta1, camelCase fields), either wrapped as {"kubeletconfig": {...}} the way
the endpoint answers or bare.

/configz shows the configuration after the kubelet has merged its flags and its config file and
applied its defaults, and it marshals the result with omitempty. So a field that is absent holds its
Go zero value (false, 0, "", an empty list): it is neither unknown nor the default the documentation
gives for the config file, because that default, had it applied, would have been reported. This
module reads absent fields that way, and says so in the observed value and the evidence.

One field is the exception: authorization.mode is never empty on a running kubelet (it is Webhook or
AlwaysAllow after defaulting). An answer without it is not a kubelet's /configz (an empty body, an
error page decoded as JSON, a different endpoint), and every row refuses to judge it rather than read
its missing fields as zeros, some of which would pass.

--hostname-override (4.2.7) exists only on the command line; /configz never shows it, so that row
judges the flags when the caller could read them and is not verified otherwise.

Pure: dicts in, findings out; what cannot be interpreted raises NotVerified."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from kubeproof.checks._shape import json_type as _json_type
from kubeproof.checks.control_plane import STRONG_CIPHER_SUITES
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Kubelet configuration (worker nodes)"

# The only modes the kubelet's validation accepts.
AUTHORIZATION_MODES = ("AlwaysAllow", "Webhook")
TLS_VERSIONS = ("VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13")
ROTATION_GATE = "RotateKubeletServerCertificate"
EVENT_QPS_DEFAULT = 50  # the kubelet's default eventRecordQPS (v1beta1 defaults, 1.24 on)

BOOL, INT, TEXT, TEXTS, GATE = "boolean", "integer", "string", "list of strings", "feature gate"
_ZERO = {BOOL: False, INT: 0, TEXT: "", TEXTS: []}
ABSENT_NOTE = "absent from /configz, so the zero value"


@dataclass(frozen=True)
class Value:
    """A field as the kubelet has it: `absent` when /configz left it out (so `value` is the zero
    value, or None for a feature gate, whose absence means the gate's own default)."""

    path: str
    value: object
    absent: bool

    def shown(self) -> str:
        value = self.value
        if value is None:
            return "not set"
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, list):
            text = ",".join(value) if value else "not set"
        elif isinstance(value, str):
            text = value if value else "not set"
        else:
            text = str(value)
        # "not set" already says it; a zero number or false needs the reason spelled out.
        return f"{text} ({ABSENT_NOTE})" if self.absent and text != "not set" else text


class Configz:
    """A kubelet's /configz answer, read field by field with the types KubeletConfiguration gives them."""

    def __init__(self, configz):
        if not isinstance(configz, dict):
            raise NotVerified(f"the kubelet's /configz answer is a {_json_type(configz)}, not an object")
        config = configz["kubeletconfig"] if "kubeletconfig" in configz else configz
        if not isinstance(config, dict):
            raise NotVerified(f"kubeletconfig in the /configz answer is a {_json_type(config)}, not an object")
        self.config = config
        if not self.read("authorization.mode", TEXT).value:
            raise NotVerified("the /configz answer has no authorization.mode, which a running kubelet always "
                              "reports; it is not a kubelet configuration and cannot be judged")

    def read(self, path: str, kind: str) -> Value:
        node = self.config
        steps = path.split(".")
        for depth, step in enumerate(steps):
            if node is None:
                break
            if not isinstance(node, dict):
                where = ".".join(steps[:depth])
                raise NotVerified(f"{where} is a {_json_type(node)}, not an object; {path} cannot be read")
            node = node.get(step)
        if node is None:  # JSON null is what Go writes for a nil pointer: the same as absent
            return Value(path, None if kind == GATE else _ZERO[kind], True)
        if not _is(node, kind):
            raise NotVerified(f"{path} is a {_json_type(node)}, not a {BOOL if kind == GATE else kind}; "
                              "it cannot be judged")
        return Value(path, list(node) if kind == TEXTS else node, False)


def _is(value, kind: str) -> bool:
    if kind in (BOOL, GATE):
        return isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == TEXT:
        return isinstance(value, str)
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def command_line(flags) -> dict[str, str]:
    """The kubelet's flags by name without dashes; None (not visible) is not verified."""
    if flags is None:
        raise NotVerified("--hostname-override is a command-line flag that /configz does not show, and the "
                          "kubelet's command line was not visible")
    if not isinstance(flags, dict):
        raise NotVerified(f"the kubelet's flags are a {_json_type(flags)}, not a mapping")
    named = {}
    for key, value in flags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise NotVerified(f"the kubelet flag {key!r} has a name or value that is not text; it cannot be judged")
        named[key.lstrip("-")] = value
    return named


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str, where: str) -> float:
    """Seconds in a Go duration string ("4h0m0s", "1.5h", "-3m", "0"), as time.ParseDuration reads it."""
    sign, body = (-1.0, text[1:]) if text.startswith("-") else (1.0, text[1:] if text.startswith("+") else text)
    if body == "0":
        return 0.0
    if not _DURATION.fullmatch(body):
        raise NotVerified(f"{where}={text!r} is not a Go duration")
    return sign * sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(body))


# -- rules: each returns the (field path, observed) pairs that fall short ----------------------------
Judge = Callable[["Configz | None", "dict | None"], "list[tuple[str, str]]"]


def _bool_is(path: str, want: bool) -> Judge:
    def judge(config, flags):
        value = config.read(path, BOOL)
        return [] if value.value == want else [(path, value.shown())]
    return judge


def _authorization_webhook(config, flags):
    value = config.read("authorization.mode", TEXT)
    if value.value not in AUTHORIZATION_MODES:
        raise NotVerified(f"authorization.mode={value.value!r} is not a mode the kubelet accepts")
    return [] if value.value == "Webhook" else [(value.path, value.shown())]


def _client_ca(config, flags):
    value = config.read("authentication.x509.clientCAFile", TEXT)
    return [] if value.value.strip() else [(value.path, value.shown())]


def _read_only_port_closed(config, flags):
    value = config.read("readOnlyPort", INT)
    if not 0 <= value.value <= 65535:
        raise NotVerified(f"readOnlyPort={value.value} is not a port the kubelet accepts")
    return [] if value.value == 0 else [(value.path, value.shown())]


def _streaming_timeout(config, flags):
    value = config.read("streamingConnectionIdleTimeout", TEXT)
    # The zero value of a Duration marshals as "0s"; an absent or empty field means the same.
    text = value.value or "0s"
    if go_duration_seconds(text, value.path) > 0:
        return []
    # Zero (or a negative duration, which the streaming server also treats as "no timeout") keeps
    # an idle exec/attach/port-forward session open for ever.
    return [(value.path, f"{text} ({ABSENT_NOTE})" if value.absent or not value.value else text)]


def _no_hostname_override(config, flags):
    named = command_line(flags)
    # /flagz lists every flag, unset ones with an empty value; an empty override is no override (the
    # kubelet then names the node after the host).
    if not named.get("hostname-override", "").strip():
        return []
    return [("--hostname-override", named["hostname-override"])]


def _event_qps(config, flags):
    value = config.read("eventRecordQPS", INT)
    if value.value < 0:
        raise NotVerified(f"eventRecordQPS={value.value} is negative, which the kubelet refuses to start with; "
                          "this is not a running kubelet's configuration")
    # 0 means no limit: every event is recorded. A limit below the kubelet's own default drops events
    # Kubernetes would otherwise keep, which is what the control warns about.
    if 0 < value.value < EVENT_QPS_DEFAULT:
        return [(value.path, f"{value.shown()}: below the kubelet's default of {EVENT_QPS_DEFAULT} events a second")]
    return []


# Rules with an either/or read every field before deciding, so a malformed field is never skipped
# because the other branch happened to pass.
def _serving_certificate(config, flags):
    bootstrap = config.read("serverTLSBootstrap", BOOL)
    files = [config.read(path, TEXT) for path in ("tlsCertFile", "tlsPrivateKeyFile")]
    if bootstrap.value:
        return []  # the certificate comes from the CSR API, not from files
    return [(value.path, value.shown()) for value in files if not value.value.strip()]


def _serving_certificate_rotation(config, flags):
    gate = config.read(f"featureGates.{ROTATION_GATE}", GATE)
    bootstrap = config.read("serverTLSBootstrap", BOOL)
    if gate.value is False:
        # The kubelet rotates its serving certificate only while this gate is on, whatever
        # serverTLSBootstrap says.
        return [(gate.path, "false")]
    if bootstrap.value or gate.value is True:
        return []
    return [(bootstrap.path, "serverTLSBootstrap false and no rotation of the serving certificate")]


def _strong_ciphers(config, flags):
    minimum = config.read("tlsMinVersion", TEXT)
    suites = config.read("tlsCipherSuites", TEXTS)
    if minimum.value and minimum.value not in TLS_VERSIONS:
        raise NotVerified(f"tlsMinVersion={minimum.value!r} is not a TLS version the kubelet accepts")
    if minimum.value == "VersionTLS13":
        return []  # Go fixes the TLS 1.3 suites itself, and all of them are strong
    if not suites.value:
        return [(suites.path, "not set (Go's default list, which includes CBC-mode suites)")]
    weak = [suite for suite in suites.value if suite not in STRONG_CIPHER_SUITES]
    return [(suites.path, ",".join(weak))] if weak else []


def _pids_limited(config, flags):
    value = config.read("podPidsLimit", INT)
    if value.value > 0:
        return []
    # -1 is the kubelet's own "unlimited"; 0 (also what an absent field means) limits nothing either.
    return [(value.path, f"{value.shown()}: no limit")]


# -- the table ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One CIS control judged from a kubelet's configuration (or, for 4.2.7, its command line)."""

    id: str
    path: str
    expected: str
    remediation: str
    judge: Judge
    reads: tuple[tuple[str, str], ...] = ()  # (field path, kind) the evidence shows
    uses_flags: bool = False

    def __str__(self) -> str:
        return f"{self.id} kubelet: {self.expected}"


def _row(id, path, kind, expected, remediation, judge, *more_reads) -> Row:
    return Row(id, path, expected, remediation, judge, ((path, kind),) + tuple(more_reads))


ROWS: tuple[Row, ...] = (
    _row("4.2.1", "authentication.anonymous.enabled", BOOL, "authentication.anonymous.enabled: false",
         "Set authentication.anonymous.enabled to false in the kubelet configuration (or --anonymous-auth=false) "
         "so a request to the kubelet's API without credentials is refused.",
         _bool_is("authentication.anonymous.enabled", False)),
    _row("4.2.2", "authorization.mode", TEXT, "authorization.mode: Webhook",
         "Set authorization.mode to Webhook so the kubelet asks the API server (SubjectAccessReview) whether "
         "each caller may use its API; AlwaysAllow lets any authenticated caller run commands in pods.",
         _authorization_webhook),
    _row("4.2.3", "authentication.x509.clientCAFile", TEXT,
         "authentication.x509.clientCAFile set to the CA that signs client certificates",
         "Point authentication.x509.clientCAFile at the cluster CA so the kubelet can verify the client "
         "certificate the API server presents when it calls the kubelet.",
         _client_ca),
    _row("4.2.4", "readOnlyPort", INT, "readOnlyPort: 0 (the unauthenticated port closed)",
         "Set readOnlyPort to 0: the read-only port answers anyone, without authentication, with the pods "
         "on the node and their specs.",
         _read_only_port_closed),
    _row("4.2.5", "streamingConnectionIdleTimeout", TEXT, "streamingConnectionIdleTimeout above 0 (e.g. 5m0s)",
         "Give streamingConnectionIdleTimeout a duration above zero (5m, say) so idle exec, attach and "
         "port-forward sessions are closed instead of being held open indefinitely.",
         _streaming_timeout),
    _row("4.2.6", "makeIPTablesUtilChains", BOOL, "makeIPTablesUtilChains: true",
         "Set makeIPTablesUtilChains to true so the kubelet keeps its own iptables chains in the state it "
         "expects, rather than relying on whatever else edits the node's rules.",
         _bool_is("makeIPTablesUtilChains", True)),
    Row("4.2.7", "--hostname-override", "--hostname-override not set",
        "Remove --hostname-override from the kubelet's command line, so the node registers under its own "
        "hostname and its serving certificate matches the name clients use to reach it.",
        _no_hostname_override, (), uses_flags=True),
    _row("4.2.8", "eventRecordQPS", INT, f"eventRecordQPS 0 (no limit) or at least the kubelet's default ({EVENT_QPS_DEFAULT})",
         "Set eventRecordQPS to a rate high enough that events are not dropped (0 removes the limit), so the "
         "events an investigation needs are recorded.",
         _event_qps),
    _row("4.2.9", "tlsCertFile", TEXT, "tlsCertFile and tlsPrivateKeyFile set, or serverTLSBootstrap: true",
         "Serve the kubelet's API with a certificate from your CA: set tlsCertFile and tlsPrivateKeyFile, or "
         "set serverTLSBootstrap to true and approve its certificate signing requests. Otherwise the kubelet "
         "generates a self-signed certificate that no client can verify.",
         _serving_certificate, ("tlsPrivateKeyFile", TEXT), ("serverTLSBootstrap", BOOL)),
    _row("4.2.10", "rotateCertificates", BOOL, "rotateCertificates: true",
         "Set rotateCertificates to true so the kubelet renews its client certificate from the API server "
         "before it expires.",
         _bool_is("rotateCertificates", True)),
    _row("4.2.11", "serverTLSBootstrap", BOOL,
         f"the serving certificate rotated: serverTLSBootstrap: true, feature gate {ROTATION_GATE} not off",
         f"Set serverTLSBootstrap to true (and leave the {ROTATION_GATE} feature gate on) so the kubelet "
         "requests and renews its serving certificate through the CSR API; approve those requests with a "
         "controller that checks the names they ask for.",
         _serving_certificate_rotation, (f"featureGates.{ROTATION_GATE}", GATE)),
    _row("4.2.12", "tlsCipherSuites", TEXTS,
         "tlsCipherSuites listing only ECDHE suites with AES-GCM or ChaCha20-Poly1305 (or tlsMinVersion: "
         "VersionTLS13)",
         "List tlsCipherSuites explicitly with ECDHE key exchange and AES-GCM or ChaCha20-Poly1305 only (or "
         "set tlsMinVersion to VersionTLS13); Go's default list still offers CBC-mode suites.",
         _strong_ciphers, ("tlsMinVersion", TEXT)),
    _row("4.2.13", "podPidsLimit", INT, "podPidsLimit above 0",
         "Set podPidsLimit to the most processes one pod may need (a few thousand, say) so a fork bomb in a "
         "pod cannot exhaust the node's process IDs.",
         _pids_limited),
    _row("4.2.14", "seccompDefault", BOOL, "seccompDefault: true",
         "Set seccompDefault to true so containers that name no seccomp profile run with the container "
         "runtime's default profile instead of unconfined.",
         _bool_is("seccompDefault", True)),
)

_BY_ID = {control.id: control for control in ROWS}
# The CIS ids each test of tests_cluster/test_kubelet.py carries (tests_unit/test_markers.py holds its marks to them):
# the configuration test judges every row read from /configz, the command-line test every row read from flags.
CIS_BY_TEST = {
    "test_kubelet_configuration": tuple(row.id for row in ROWS if not row.uses_flags),
    "test_kubelet_command_line": tuple(row.id for row in ROWS if row.uses_flags),
}


def row(control_id: str) -> Row:
    return _BY_ID[control_id]


def findings(control_row: Row, configz, flags, node_name: str) -> list[Finding]:
    """What the kubelet on `node_name` falls short of for this control (empty: compliant). `flags` is
    the kubelet's command line (name -> value) or None when it could not be read; only 4.2.7 reads it,
    and only 4.2.7 does without /configz."""
    config = None if control_row.uses_flags else Configz(configz)
    return [
        Finding((control_row.id,), ObjectRef("Node", node_name), path, observed, control_row.expected,
                control_row.remediation)
        for path, observed in control_row.judge(config, flags)
    ]


def evidence(control_row: Row, configz, flags) -> dict:
    """The fields the row reads, as the kubelet effectively has them. Fields /configz left out are
    listed under ABSENT_KEY: their value is the Go zero value, not something the kubelet reported."""
    shown: dict = {}
    if control_row.uses_flags:
        try:
            shown["--hostname-override"] = command_line(flags).get("hostname-override", "not set")
        except NotVerified as unknown:
            shown["--hostname-override"] = f"not readable: {unknown.reason}"
        return shown
    config = Configz(configz)
    absent = []
    for path, kind in control_row.reads:
        try:
            value = config.read(path, kind)
        except NotVerified as unknown:
            shown[path] = f"not readable: {unknown.reason}"
            continue
        if kind == GATE and value.value is None:
            shown[path] = "not set (the gate's default applies)"
            continue
        shown[path] = value.value
        if value.absent:
            absent.append(path)
    if absent:
        shown[ABSENT_KEY] = absent
    return shown


ABSENT_KEY = f"fields {ABSENT_NOTE}"
