"""kube-proxy's metrics endpoint (CIS 4.3.1), judged from its KubeProxyConfiguration: the YAML that
kubeadm and kind keep in the kube-system ConfigMap kube-proxy under config.conf (or the same document
already parsed), and kube-proxy's command line when it is known.

The metrics port answers without authentication, so it must listen on loopback only.

Which setting is in effect follows kube-proxy's own rules (cmd/kube-proxy/app/options.go, Complete):
  * with --config, the file replaces everything parsed from the command line (logging flags aside),
    so --metrics-bind-address is ignored and the file's metricsBindAddress decides; kube-proxy
    defaults it, when absent or empty, to 127.0.0.1:10249 (the v1alpha1 default since 1.22), so that
    passes and the evidence says the default was used;
  * without --config, the flags decide: --metrics-bind-address, default 127.0.0.1:10249, and empty
    (or the deprecated --metrics-port=0) switches the metrics server off, which exposes nothing;
  * with the command line unknown, the document is taken to be the --config file, which is how
    kubeadm and kind run kube-proxy, and the evidence says that was assumed.

A document kube-proxy would refuse (not YAML, not a KubeProxyConfiguration) is NotVerified rather
than read as "everything absent", which would pass."""

from __future__ import annotations

import ipaddress

import yaml

from kubeproof.checks._shape import json_type as _json_type
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "kube-proxy configuration"

CONTROL = "4.3.1"
# The CIS ids each test of tests_cluster/test_kube_proxy.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {"test_kube_proxy_metrics_bound_to_localhost": (CONTROL,)}
DEFAULT_METRICS_BIND_ADDRESS = "127.0.0.1:10249"
CONFIGMAP = ObjectRef("ConfigMap", "kube-proxy", "kube-system")
CONFIG_KEY = "config.conf"
KIND = "KubeProxyConfiguration"
API_GROUP = "kubeproxy.config.k8s.io"
FIELD = "metricsBindAddress"
FLAG = "metrics-bind-address"

EXPECTED = "metrics served on a loopback address only (127.0.0.1:10249)"
REMEDIATION = (
    "Bind kube-proxy's metrics server to loopback: set metricsBindAddress to 127.0.0.1:10249 in its "
    "configuration (or remove the field, whose default is exactly that), or, for a kube-proxy run without "
    "--config, pass --metrics-bind-address=127.0.0.1:10249. Scrape it from the node, or put an "
    "authenticating proxy in front of it."
)


def config_from_configmap(configmap) -> str:
    """The config.conf text of the kube-proxy ConfigMap."""
    data = configmap.get("data") if isinstance(configmap, dict) else None
    text = data.get(CONFIG_KEY) if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise NotVerified(f"the kube-proxy ConfigMap has no {CONFIG_KEY} text")
    return text


def daemonset_flags(daemonset) -> dict[str, str] | None:
    """kube-proxy's command line from its DaemonSet (name -> value, names without dashes), or None
    when the DaemonSet does not show it: no container runs the kube-proxy binary directly (a shell
    wrapper, or the image's own entrypoint with no command given)."""
    spec = daemonset.get("spec") if isinstance(daemonset, dict) else None
    template = spec.get("template") if isinstance(spec, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    containers = pod.get("containers") if isinstance(pod, dict) else None
    if not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers):
        raise NotVerified("the kube-proxy DaemonSet has no readable pod template containers")
    for container in containers:
        command, args = container.get("command") or [], container.get("args") or []
        if not (isinstance(command, list) and isinstance(args, list)
                and all(isinstance(word, str) for word in command + args)):
            raise NotVerified(f"the kube-proxy DaemonSet container {container.get('name')!r} has a command that "
                              "is not a list of words")
        if command and command[0].rsplit("/", 1)[-1] == "kube-proxy":
            return parse_command_line(command[1:] + args)
    return None


def parse_command_line(words: list[str]) -> dict[str, str]:
    """Flags as a Go (pflag) program reads them: --name=value, --name value, or a bare --name (true)."""
    named: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if not word.startswith("-") or word in ("-", "--"):
            raise NotVerified(f"kube-proxy's command line has {word!r}, which is not a flag; it cannot be read")
        name, equals, value = word.lstrip("-").partition("=")
        if not equals:
            following = words[index + 1] if index + 1 < len(words) else None
            if following is not None and not following.startswith("-"):
                value, index = following, index + 1
            else:
                value = "true"
        named[name] = value
        index += 1
    return named


def document(config) -> dict:
    """A KubeProxyConfiguration from YAML text or an already-parsed mapping."""
    if isinstance(config, str):
        try:
            config = yaml.safe_load(config)
        except yaml.YAMLError:
            raise NotVerified(f"kube-proxy's {CONFIG_KEY} is not valid YAML") from None
    if not isinstance(config, dict):
        raise NotVerified(f"kube-proxy's configuration is a {_json_type(config)}, not a mapping")
    # kube-proxy decodes its file by kind and apiVersion; without them it would not start with it.
    api_version = config.get("apiVersion")
    if config.get("kind") != KIND or not isinstance(api_version, str) or not api_version.startswith(f"{API_GROUP}/"):
        raise NotVerified(f"kube-proxy's configuration is not a {API_GROUP} {KIND}")
    return config


def _flags(flags) -> dict[str, str]:
    if flags is None:
        return {}
    if not isinstance(flags, dict):
        raise NotVerified(f"kube-proxy's flags are a {_json_type(flags)}, not a mapping")
    named = {}
    for key, value in flags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise NotVerified(f"the kube-proxy flag {key!r} has a name or value that is not text; it cannot be judged")
        named[key.lstrip("-")] = value
    return named


def effective(config, flags=None) -> dict:
    """Where the metrics address comes from and what it is: {"path", "value" (as written, or None),
    "address" (in effect, "" when the server is off), "source"}. `flags` is kube-proxy's whole command
    line (name -> value) or None when it is not known."""
    named = _flags(flags)
    if flags is not None and not named.get("config"):
        setting = _from_command_line(named)
        if config is not None:
            setting["source"] += "; the configuration document given is not what it runs with"
        return setting
    if config is None:
        where = f"runs with --config={named['config']}, and that file" if named.get("config") else "configuration"
        raise NotVerified(f"kube-proxy's {where} was not visible")
    parsed = document(config)
    value = parsed.get(FIELD)
    if value is not None and not isinstance(value, str):
        raise NotVerified(f"{FIELD} is a {_json_type(value)}, not an address")
    if flags is None:
        origin = "kube-proxy's configuration, assumed to be its --config file as kubeadm and kind run it"
    else:
        origin = f"kube-proxy's --config file {named['config']}"
        if FLAG in named:
            origin += f" (which makes kube-proxy ignore --{FLAG}={named[FLAG]})"
    if not value:
        return {"path": FIELD, "value": value, "address": DEFAULT_METRICS_BIND_ADDRESS,
                "source": f"kube-proxy's default, {FIELD} being {'empty' if value == '' else 'absent'} in {origin}"}
    return {"path": FIELD, "value": value, "address": value, "source": f"{FIELD} in {origin}"}


def _from_command_line(named: dict[str, str]) -> dict:
    port = named.get("metrics-port")
    if port is not None:
        if not (port.isdigit() and int(port) <= 65535):
            raise NotVerified(f"--metrics-port={port!r} is not a port")
        if int(port) == 0:
            return {"path": "--metrics-port", "value": port, "address": "",
                    "source": "the deprecated --metrics-port=0, which switches the metrics server off"}
    if FLAG not in named:
        return {"path": f"--{FLAG}", "value": None, "address": DEFAULT_METRICS_BIND_ADDRESS,
                "source": f"kube-proxy's default: no --config and no --{FLAG} on its command line"}
    value = named[FLAG]
    return {"path": f"--{FLAG}", "value": value, "address": value,
            "source": f"the --{FLAG} flag (kube-proxy runs without --config)"
                      + ("; empty, which switches the metrics server off" if not value else "")}


def is_loopback(address: str) -> bool:
    """Whether "host:port" (or a bare host) listens on loopback only. An empty host is every interface."""
    if address.startswith("["):
        host, closed, rest = address[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise NotVerified(f"{address!r} is not an address kube-proxy accepts")
        port = rest[1:] if rest else None
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:
        host, port = address, None  # a bare IPv4 address or hostname, or a bare IPv6 address
    if port is not None and not (port.isdigit() and int(port) <= 65535):
        raise NotVerified(f"{address!r} has no valid port")
    if host == "":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # Any other name could resolve to any interface.
        raise NotVerified(f"{address!r} does not name an IP address kube-proxy would bind to") from None


def findings(config, flags=None, where: ObjectRef = CONFIGMAP) -> list[Finding]:
    """CIS 4.3.1 for the kube-proxy configured by `config` (text, mapping, or None when it was not
    read) and `flags` (its command line, name -> value, or None when not known). `where` is the object
    a finding points at: the ConfigMap by default, or the DaemonSet or Node that was inspected."""
    setting = effective(config, flags)
    if setting["address"] == "" or is_loopback(setting["address"]):
        return []
    return [Finding((CONTROL,), where, setting["path"], setting["value"], EXPECTED, REMEDIATION)]


def evidence(config, flags=None) -> dict:
    """The setting in effect and where it came from."""
    setting = effective(config, flags)
    shown = {setting["path"]: setting["value"] if setting["value"] is not None else "not set",
             "metrics address in effect": setting["address"] or "none (metrics server off)",
             "from": setting["source"]}
    return shown
