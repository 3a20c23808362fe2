"""Control-plane configuration (CIS 1.2 API server, 1.3 controller-manager, 1.4 scheduler, 2 etcd),
judged from each component's effective command line and the configuration files it names.

One row per CIS control. A row's rule knows the flag's DEFAULT, because an absent flag is not an
absent setting: kube-apiserver without --anonymous-auth accepts anonymous requests, without
--profiling serves /debug/pprof, without --authorization-mode allows everything. The defaults below
are those of Kubernetes 1.37 (the kube-apiserver, kube-controller-manager and kube-scheduler
command-line references on kubernetes.io, and `--help` of the pinned v1.37.2 binaries); the flags
these rows read have kept the same defaults since at least 1.20 except where a row says otherwise.
etcd's defaults are those of etcd 3.5-3.7 (`etcd --help`).

Pure: flags and file texts in, findings out. A value this module cannot interpret (a bare boolean
flag given to a list flag, an unknown authorization mode, a configuration file it cannot read) raises
NotVerified; it never passes a setting it could not read."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from kubeproof.checks._flags import (  # noqa: F401  (FlagView and the readers are part of this module's API)
    APISERVER,
    CONTROLLER_MANAGER,
    ETCD,
    SCHEDULER,
    FlagView,
    _yaml_mapping,
    parse_bool,
    shown_value,
    split_list,
)
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Control-plane configuration"

COMPONENTS = (APISERVER, CONTROLLER_MANAGER, SCHEDULER, ETCD)


# kube-apiserver --authorization-mode accepts exactly these (unchanged since RBAC went GA in 1.8).
AUTHORIZATION_MODES = ("AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node")
# Defaults when neither --authorization-mode nor --authorization-config is given (1.37 reference:
# "Defaults to AlwaysAllow if --authorization-config is not used").
DEFAULT_AUTHORIZATION_MODES = ("AlwaysAllow",)

# Admission plugins kube-apiserver 1.37 enables when --enable-admission-plugins does not name them
# (kube-apiserver reference, --enable-admission-plugins: "in addition to default enabled ones").
# The plugins the CIS rows ask about have had the same default state since 1.20: NamespaceLifecycle
# and ServiceAccount on; NodeRestriction, EventRateLimit, AlwaysPullImages, DenyServiceExternalIPs
# and AlwaysAdmit off.
DEFAULT_ADMISSION_PLUGINS = frozenset({
    "NamespaceLifecycle", "LimitRanger", "ServiceAccount", "TaintNodesByCondition", "PodSecurity", "Priority",
    "DefaultTolerationSeconds", "DefaultStorageClass", "StorageObjectInUseProtection", "PodGroupProtection",
    "PersistentVolumeClaimResize", "RuntimeClass", "CertificateApproval", "CertificateSigning",
    "ClusterTrustBundleAttest", "CertificateSubjectRestriction", "DefaultIngressClass", "PodTopologyLabels",
    "NodeDeclaredFeatureValidator", "PodResizeValidator", "MutatingAdmissionPolicy", "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionWebhook", "ResourceQuota",
})

# Cipher suites we count as strong: forward-secret key exchange (ECDHE) with an AEAD cipher, plus the
# TLS 1.3 suites (which Go always uses for TLS 1.3 whatever the flag says).
STRONG_CIPHER_SUITES = frozenset({
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
})

# -- rules -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    path: str
    observed: object
    expected: str


class Rule:
    """Reads some flags of one component; returns what falls short (empty: compliant)."""

    flags: tuple[str, ...] = ()
    expected = ""

    def problems(self, view: FlagView) -> list[Problem]:
        raise NotImplementedError

    def evidence(self, view: FlagView) -> dict:
        shown = {}
        for flag in self.flags:
            try:
                shown[f"--{flag}"] = shown_value(view.get(flag), self.default_of(flag))
            except NotVerified as unknown:
                shown[f"--{flag}"] = f"not readable: {unknown.reason}"
        return shown

    def default_of(self, flag: str) -> str | None:
        return None


@dataclass(frozen=True)
class BoolIs(Rule):
    """A boolean flag must be `want`; `default` is the value the component uses when it is absent."""

    flag: str
    want: bool
    default: bool | None

    @property
    def flags(self):
        return (self.flag,)

    @property
    def expected(self):
        return f"--{self.flag}={str(self.want).lower()}"

    def default_of(self, flag):
        return None if self.default is None else str(self.default).lower()

    def problems(self, view):
        value = view.get(self.flag)
        effective = self.default if value is None else parse_bool(value, f"{view.component} --{self.flag}")
        if effective is None or effective != self.want:
            return [Problem(f"--{self.flag}", shown_value(value, self.default_of(self.flag)), self.expected)]
        return []


@dataclass(frozen=True)
class IsSet(Rule):
    """Each flag must be given a value (a file path, usually)."""

    names: tuple[str, ...]

    @property
    def flags(self):
        return self.names

    @property
    def expected(self):
        return " and ".join(f"--{f}" for f in self.names) + " set"

    def problems(self, view):
        return [Problem(f"--{flag}", "not set", f"--{flag} set") for flag in self.names
                if not (view.get(flag) or "").strip()]


@dataclass(frozen=True)
class IsUnset(Rule):
    flag: str

    @property
    def flags(self):
        return (self.flag,)

    @property
    def expected(self):
        return f"--{self.flag} not set"

    def problems(self, view):
        value = view.get(self.flag)
        return [Problem(f"--{self.flag}", value or "set (empty)", self.expected)] if value is not None else []


@dataclass(frozen=True)
class AuthorizationMode(Rule):
    """--authorization-mode must (or must not) list `mode`. An --authorization-config file replaces
    the flag; its authorizers' types are read when the file is readable."""

    mode: str
    present: bool

    flags = ("authorization-mode", "authorization-config")

    @property
    def expected(self):
        return f"{self.mode} {'among' if self.present else 'not among'} the authorizers"

    def default_of(self, flag):
        return ",".join(DEFAULT_AUTHORIZATION_MODES) if flag == "authorization-mode" else None

    def evidence(self, view):
        shown = super().evidence(view)
        try:
            shown["authorizers in effect"] = authorization_modes(view)[0]
        except NotVerified as unknown:
            shown["authorizers in effect"] = f"not readable: {unknown.reason}"
        return shown

    def problems(self, view):
        modes, path = authorization_modes(view)
        if (self.mode in modes) != self.present:
            return [Problem(path, ",".join(modes) or "none", self.expected)]
        return []


def authorization_modes(view: FlagView) -> tuple[list[str], str]:
    config_path = view.get("authorization-config")
    flag = view.get("authorization-mode")
    if config_path:
        if flag is not None:
            raise NotVerified("both --authorization-mode and --authorization-config are set; kube-apiserver "
                              "refuses to start that way, so these flags are not what is running")
        text = view.file_text(config_path)
        if text is None:
            raise NotVerified(f"--authorization-config={config_path} lists the authorizers, and the file lives on "
                              "the control-plane node; it is not readable from here")
        document = _yaml_mapping(text, config_path)
        authorizers = document.get("authorizers")
        if not isinstance(authorizers, list) or not authorizers:
            raise NotVerified(f"{config_path}: no authorizers list")
        modes = []
        for index, entry in enumerate(authorizers):
            kind = entry.get("type") if isinstance(entry, dict) else None
            if kind not in AUTHORIZATION_MODES:
                raise NotVerified(f"{config_path}: authorizers[{index}].type is not a known authorizer")
            modes.append(kind)
        return modes, f"{config_path}: authorizers[*].type"
    modes = list(DEFAULT_AUTHORIZATION_MODES) if flag is None else split_list(flag, "--authorization-mode")
    unknown = [m for m in modes if m not in AUTHORIZATION_MODES]
    if unknown or not modes:
        raise NotVerified(f"--authorization-mode={flag!r} names no authorizer kube-apiserver knows")
    return modes, "--authorization-mode"


ADMISSION_FLAGS = ("enable-admission-plugins", "disable-admission-plugins", "admission-control")


def admission_plugins(view: FlagView) -> set[str]:
    """The admission plugins kube-apiserver runs with these flags."""
    legacy = view.get("admission-control")
    enable = split_list(view.get("enable-admission-plugins") or "", "--enable-admission-plugins")
    disable = split_list(view.get("disable-admission-plugins") or "", "--disable-admission-plugins")
    if legacy is not None:
        if enable or disable:
            raise NotVerified("--admission-control is combined with --enable/--disable-admission-plugins; "
                              "kube-apiserver refuses to start that way")
        # The deprecated flag names the whole set: nothing is on by default.
        return set(split_list(legacy, "--admission-control"))
    overlap = set(enable) & set(disable)
    if overlap:
        raise NotVerified(f"{', '.join(sorted(overlap))} both enabled and disabled; kube-apiserver refuses to start that way")
    return (set(DEFAULT_ADMISSION_PLUGINS) | set(enable)) - set(disable)


@dataclass(frozen=True)
class AdmissionPlugin(Rule):
    plugin: str
    enabled: bool

    flags = ADMISSION_FLAGS

    @property
    def expected(self):
        return f"admission plugin {self.plugin} {'enabled' if self.enabled else 'not enabled'}"

    def default_of(self, flag):
        if flag == "enable-admission-plugins":
            state = "on" if self.plugin in DEFAULT_ADMISSION_PLUGINS else "off"
            return f"the built-in list, {self.plugin} {state}"
        return None

    def evidence(self, view):
        shown = super().evidence(view)
        try:
            shown[f"{self.plugin} in effect"] = self.plugin in admission_plugins(view)
        except NotVerified as unknown:
            shown[f"{self.plugin} in effect"] = f"not readable: {unknown.reason}"
        return shown

    def problems(self, view):
        running = admission_plugins(view)
        if (self.plugin in running) != self.enabled:
            observed = f"{self.plugin} {'enabled' if self.plugin in running else 'not enabled'}"
            path = "--admission-control" if view.get("admission-control") is not None else (
                "--disable-admission-plugins" if self.enabled and self.plugin in DEFAULT_ADMISSION_PLUGINS
                else "--enable-admission-plugins")
            return [Problem(path, observed, self.expected)]
        return []


@dataclass(frozen=True)
class Loopback(Rule):
    """The component's secure port must listen on loopback only."""

    flag: str = "bind-address"
    default: str = "0.0.0.0"

    @property
    def flags(self):
        return (self.flag,)

    @property
    def expected(self):
        return f"--{self.flag}=127.0.0.1 (a loopback address)"

    def default_of(self, flag):
        return self.default

    def problems(self, view):
        value = view.get(self.flag)
        effective = self.default if value is None or value == "" else value
        try:
            address = ipaddress.ip_address(effective)
        except ValueError:
            raise NotVerified(f"--{self.flag}={effective!r} is not an IP address") from None
        return [] if address.is_loopback else [Problem(f"--{self.flag}", shown_value(value, self.default), self.expected)]


@dataclass(frozen=True)
class PositiveInt(Rule):
    """An integer flag that must be set explicitly to more than zero (zero or less switches the
    behaviour off)."""

    flag: str
    default: int

    @property
    def flags(self):
        return (self.flag,)

    @property
    def expected(self):
        return f"--{self.flag} set to a number above 0"

    def default_of(self, flag):
        return str(self.default)

    def problems(self, view):
        value = view.get(self.flag)
        if value is None:
            return [Problem(f"--{self.flag}", shown_value(value, str(self.default)), self.expected)]
        try:
            number = int(value)
        except ValueError:
            raise NotVerified(f"--{self.flag}={value!r} is not an integer") from None
        return [] if number > 0 else [Problem(f"--{self.flag}", value, self.expected)]


@dataclass(frozen=True)
class StrongCiphers(Rule):
    flags = ("tls-cipher-suites", "tls-min-version")
    expected = "--tls-cipher-suites listing only ECDHE suites with AES-GCM or ChaCha20-Poly1305 (or TLS 1.3 only)"

    def default_of(self, flag):
        return "Go's default list, which includes CBC-mode suites" if flag == "tls-cipher-suites" else "VersionTLS12"

    def problems(self, view):
        if view.get("tls-min-version") == "VersionTLS13":
            return []  # TLS 1.3 suites are fixed by Go, and all of them are strong.
        value = view.get("tls-cipher-suites")
        if value is None:
            return [Problem("--tls-cipher-suites", shown_value(None, self.default_of("tls-cipher-suites")), self.expected)]
        suites = split_list(value, "--tls-cipher-suites")
        weak = [s for s in suites if s not in STRONG_CIPHER_SUITES]
        if weak or not suites:
            return [Problem("--tls-cipher-suites", ",".join(weak) or "empty", self.expected)]
        return []


@dataclass(frozen=True)
class FeatureGateOn(Rule):
    """A feature gate that is on by default must not be switched off."""

    gate: str
    default: bool = True

    flags = ("feature-gates",)

    @property
    def expected(self):
        return f"feature gate {self.gate} not set to false"

    def default_of(self, flag):
        return f"{self.gate}={str(self.default).lower()}"

    def problems(self, view):
        value = view.get("feature-gates")
        effective = self.default
        for item in split_list(value, "--feature-gates") if value else []:
            name, sep, setting = item.partition("=")
            # 1.37 accepts "component:Gate=value"; the kube component's gates are the ones meant here.
            component, _, bare = name.strip().rpartition(":")
            if not sep:
                raise NotVerified(f"--feature-gates entry {item!r} has no value")
            if bare == self.gate and component in ("", "kube"):
                effective = parse_bool(setting.strip(), f"--feature-gates {self.gate}")
        if not effective:
            return [Problem("--feature-gates", f"{self.gate}=false", self.expected)]
        return []


@dataclass(frozen=True)
class AnonymousAuthOff(Rule):
    """--anonymous-auth=false, or an AuthenticationConfiguration whose anonymous authenticator is off.
    The flag defaults to true."""

    flags = ("anonymous-auth", "authentication-config")
    expected = "anonymous requests refused (--anonymous-auth=false)"

    def default_of(self, flag):
        return "true" if flag == "anonymous-auth" else None

    def problems(self, view):
        flag = view.get("anonymous-auth")
        path = view.get("authentication-config")
        if flag is None and path:
            text = view.file_text(path)
            if text is None:
                raise NotVerified(f"--authentication-config={path} may configure the anonymous authenticator and the "
                                  "file lives on the control-plane node; it is not readable from here")
            anonymous = _yaml_mapping(text, path).get("anonymous")
            if anonymous is None:
                return [Problem(f"{path}: anonymous", "not set (anonymous-auth defaults to true)", self.expected)]
            enabled = anonymous.get("enabled") if isinstance(anonymous, dict) else None
            if not isinstance(enabled, bool):
                raise NotVerified(f"{path}: anonymous.enabled is not a boolean")
            # Enabled but limited to listed paths (conditions) still lets unauthenticated callers in.
            return [Problem(f"{path}: anonymous.enabled", "true", self.expected)] if enabled else []
        return BoolIs("anonymous-auth", False, True).problems(view)


# -- the table -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Control:
    """One CIS control judged from one component's configuration."""

    id: str
    component: str
    rule: Rule
    remediation: str
    needs_nodes: bool = False  # on a cluster without nodes there is nothing this setting protects
    live_proof: str | None = None  # the test that proves the same thing against the running server
    live_get: str | None = None  # a path whose answer to an authenticated GET shows the setting at work
    notes: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return f"{self.id} {self.component}: {self.rule.expected}"


def _api(id, rule, remediation, **extra) -> Control:
    return Control(id, APISERVER, rule, remediation, **extra)


ROWS: tuple[Control, ...] = (
    # -- kube-apiserver (CIS 1.2) --------------------------------------------------------------------
    _api("1.2.1", AnonymousAuthOff(),
         "Start kube-apiserver with --anonymous-auth=false so a request without credentials is refused.",
         live_proof="tests_cluster/test_anonymous_access.py::test_unauthenticated_request_is_refused"),
    _api("1.2.2", IsUnset("token-auth-file"),
         "Remove --token-auth-file: static tokens never expire and can only be changed by restarting the "
         "API server. Use client certificates, OIDC or service-account tokens instead."),
    _api("1.2.3", AdmissionPlugin("DenyServiceExternalIPs", True),
         "Add DenyServiceExternalIPs to --enable-admission-plugins so no one can claim arbitrary external "
         "IPs for a Service (the route behind CVE-2020-8554)."),
    _api("1.2.4", IsSet(("kubelet-client-certificate", "kubelet-client-key")),
         "Give kube-apiserver a client certificate and key (--kubelet-client-certificate, --kubelet-client-key) "
         "so kubelets can authenticate it and refuse everyone else."),
    _api("1.2.5", IsSet(("kubelet-certificate-authority",)),
         "Set --kubelet-certificate-authority to the CA that signs kubelet serving certificates so the API "
         "server verifies which kubelet it is talking to."),
    _api("1.2.6", AuthorizationMode("AlwaysAllow", False),
         "Remove AlwaysAllow from --authorization-mode (it is the default when the flag is absent); use Node,RBAC."),
    _api("1.2.7", AuthorizationMode("Node", True),
         "Add Node to --authorization-mode (Node,RBAC) so each kubelet may read only what its own pods need."),
    _api("1.2.8", AuthorizationMode("RBAC", True),
         "Add RBAC to --authorization-mode (Node,RBAC) so access is granted by Roles and bindings."),
    _api("1.2.9", AdmissionPlugin("EventRateLimit", True),
         "Enable the EventRateLimit admission plugin, with limits in --admission-control-config-file, so a "
         "flood of events cannot overload the API server and etcd."),
    _api("1.2.10", AdmissionPlugin("AlwaysAdmit", False),
         "Remove AlwaysAdmit from the enabled admission plugins; it switches admission control off."),
    _api("1.2.11", AdmissionPlugin("AlwaysPullImages", True),
         "Enable the AlwaysPullImages admission plugin so a pod can only use a private image it has the "
         "credentials to pull, not one another tenant's pod left in the node's cache.",
         needs_nodes=True),
    _api("1.2.12", AdmissionPlugin("ServiceAccount", True),
         "Do not disable the ServiceAccount admission plugin; it gives every pod a service account and keeps "
         "pods from naming ones that do not exist."),
    _api("1.2.13", AdmissionPlugin("NamespaceLifecycle", True),
         "Do not disable the NamespaceLifecycle admission plugin; it stops objects being created in namespaces "
         "that do not exist or are being deleted."),
    _api("1.2.14", AdmissionPlugin("NodeRestriction", True),
         "Add NodeRestriction to --enable-admission-plugins so a kubelet can change only its own Node and the "
         "pods bound to it."),
    _api("1.2.15", BoolIs("profiling", False, True),
         "Start kube-apiserver with --profiling=false; profiling endpoints reveal internals and cost resources.",
         live_get="/debug/pprof/"),
    _api("1.2.21", BoolIs("service-account-lookup", True, True),
         "Leave --service-account-lookup at true so tokens of deleted service accounts stop working."),
    _api("1.2.22", IsSet(("service-account-key-file",)),
         "Set --service-account-key-file to the public key(s) that verify service-account tokens, so keys can "
         "be rotated independently of the serving certificate."),
    _api("1.2.23", IsSet(("etcd-certfile", "etcd-keyfile")),
         "Give kube-apiserver a client certificate for etcd (--etcd-certfile, --etcd-keyfile) and make etcd "
         "require client certificates."),
    _api("1.2.24", IsSet(("tls-cert-file", "tls-private-key-file")),
         "Serve the API with a certificate from your CA (--tls-cert-file, --tls-private-key-file), not a "
         "self-signed one generated at start."),
    _api("1.2.25", IsSet(("client-ca-file",)),
         "Set --client-ca-file so client certificates (kubelets, controllers, administrators) are verified."),
    _api("1.2.26", IsSet(("etcd-cafile",)),
         "Set --etcd-cafile so kube-apiserver verifies etcd's serving certificate."),
    _api("1.2.29", StrongCiphers(),
         "Set --tls-cipher-suites to ECDHE suites with AES-GCM or ChaCha20-Poly1305 only (or "
         "--tls-min-version=VersionTLS13)."),
    _api("1.2.30", BoolIs("service-account-extend-token-expiration", False, True),
         "Start kube-apiserver with --service-account-extend-token-expiration=false so projected tokens expire "
         "when they say they do instead of living up to a year."),
    # -- kube-controller-manager (CIS 1.3) -----------------------------------------------------------
    Control("1.3.1", CONTROLLER_MANAGER, PositiveInt("terminated-pod-gc-threshold", 12500),
            "Set --terminated-pod-gc-threshold to the number of finished pods you are prepared to keep, so "
            "they are garbage-collected before they crowd etcd."),
    Control("1.3.2", CONTROLLER_MANAGER, BoolIs("profiling", False, True),
            "Start kube-controller-manager with --profiling=false."),
    Control("1.3.3", CONTROLLER_MANAGER, BoolIs("use-service-account-credentials", True, False),
            "Start kube-controller-manager with --use-service-account-credentials=true so each controller acts "
            "with its own, narrower service account."),
    Control("1.3.4", CONTROLLER_MANAGER, IsSet(("service-account-private-key-file",)),
            "Set --service-account-private-key-file to the key that signs service-account tokens."),
    Control("1.3.5", CONTROLLER_MANAGER, IsSet(("root-ca-file",)),
            "Set --root-ca-file so pods receive the CA that lets them verify the API server."),
    Control("1.3.6", CONTROLLER_MANAGER, FeatureGateOn("RotateKubeletServerCertificate"),
            "Do not switch the RotateKubeletServerCertificate feature gate off; kubelet serving certificates "
            "should be renewed before they expire."),
    Control("1.3.7", CONTROLLER_MANAGER, Loopback(),
            "Start kube-controller-manager with --bind-address=127.0.0.1; its port is for local health checks."),
    # -- kube-scheduler (CIS 1.4) --------------------------------------------------------------------
    Control("1.4.1", SCHEDULER, BoolIs("profiling", False, True),
            "Start kube-scheduler with --profiling=false (or enableProfiling: false in its --config file)."),
    Control("1.4.2", SCHEDULER, Loopback(),
            "Start kube-scheduler with --bind-address=127.0.0.1; its port is for local health checks."),
    # -- etcd (CIS 2) --------------------------------------------------------------------------------
    Control("2.1", ETCD, IsSet(("cert-file", "key-file")),
            "Serve etcd's client port over TLS (--cert-file, --key-file)."),
    Control("2.2", ETCD, BoolIs("client-cert-auth", True, False),
            "Start etcd with --client-cert-auth=true so only holders of a certificate from its CA may connect."),
    Control("2.3", ETCD, BoolIs("auto-tls", False, False),
            "Remove --auto-tls=true: self-signed certificates give clients nothing to verify."),
    Control("2.4", ETCD, IsSet(("peer-cert-file", "peer-key-file")),
            "Encrypt traffic between etcd members (--peer-cert-file, --peer-key-file)."),
    Control("2.5", ETCD, BoolIs("peer-client-cert-auth", True, False),
            "Start etcd with --peer-client-cert-auth=true so only members with a certificate from its CA may join."),
    Control("2.6", ETCD, BoolIs("peer-auto-tls", False, False),
            "Remove --peer-auto-tls=true: self-signed peer certificates let anyone join the cluster."),
)


def rows_for(component: str) -> list[Control]:
    return [row for row in ROWS if row.component == component]


# The CIS ids each test of tests_cluster/test_control_plane.py carries (tests_unit/test_markers.py holds its marks to them):
# one case per row of its component.
CIS_BY_TEST = {
    "test_api_server_setting": tuple(row.id for row in rows_for(APISERVER)),
    "test_controller_manager_setting": tuple(row.id for row in rows_for(CONTROLLER_MANAGER)),
    "test_scheduler_setting": tuple(row.id for row in rows_for(SCHEDULER)),
    "test_etcd_setting": tuple(row.id for row in rows_for(ETCD)),
}


def findings(control: Control, flags, files=None) -> list[Finding]:
    view = FlagView(control.component, flags, files)
    return [
        Finding((control.id,), ObjectRef("Component", control.component), problem.path, problem.observed,
                problem.expected, control.remediation)
        for problem in control.rule.problems(view)
    ]


def evidence(control: Control, flags, files=None) -> dict:
    """The flags the row read, as the component has them (or their defaults), for the report."""
    return control.rule.evidence(FlagView(control.component, flags, files))


def live_get_findings(control: Control, status) -> list[Finding]:
    """What the running server answered to an authenticated GET of `control.live_get`: a page served
    (200) contradicts the setting whatever the flags say; 404 agrees with it; anything else (403 for an
    auditor without the permission, say) judges nothing and stays in the evidence only."""
    if control.live_get is None:
        return []
    if not isinstance(status, int) or isinstance(status, bool):
        raise NotVerified(f"no HTTP answer to GET {control.live_get}")
    if status == 200:
        return [Finding((control.id,), ObjectRef("Component", control.component), f"GET {control.live_get}",
                        "HTTP 200 (served)", "HTTP 404 (not served)", control.remediation)]
    return []
