"""Reading a control-plane component's flags (kubeproof.checks.control_plane, audit_logging): the
command line, with what a configuration file overrides taken from that file when it could be read,
and refused (NotVerified) when it could not. Values are read the way the components parse them (Go's
strconv.ParseBool, comma-separated lists)."""

from __future__ import annotations

import yaml

from kubeproof.results import NotVerified

APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
ETCD = "etcd"

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # what Go's strconv.ParseBool accepts
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}

# etcd's --config-file replaces every flag; its transport settings are nested under these keys.
_ETCD_TRANSPORT = {
    "client-transport-security": "",
    "peer-transport-security": "peer-",
}


# -- reading flags -----------------------------------------------------------------------------------
class FlagView:
    """A component's effective settings: its flags, with the values a configuration file overrides
    taken from that file when the suite could read it, and refused (NotVerified) when it could not."""

    def __init__(self, component: str, flags, files=None):
        if not isinstance(flags, dict):
            raise NotVerified(f"the {component} flags are a {type(flags).__name__}, not a mapping")
        if files is not None and not isinstance(files, dict):
            raise NotVerified(f"the {component} configuration files are a {type(files).__name__}, not a mapping")
        for key, value in flags.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise NotVerified(f"the {component} flag {key!r} has a value that is not text; it cannot be judged")
        self.component = component
        self.values: dict[str, str] = dict(flags)
        self.files: dict = dict(files or {})
        self.hidden: dict[str, str] = {}  # flag -> why its effective value cannot be known from here
        if component == ETCD and "config-file" in self.values:
            self._from_etcd_config_file(self.values["config-file"])
        if component == SCHEDULER and "config" in self.values:
            self._from_scheduler_config(self.values["config"])

    def get(self, flag: str) -> str | None:
        if flag in self.hidden:
            raise NotVerified(self.hidden[flag])
        return self.values.get(flag)

    def file_text(self, path: str) -> str | None:
        text = self.files.get(path)
        if text is not None and not isinstance(text, str):
            raise NotVerified(f"{path}: the file's content is not text")
        return text

    def _from_etcd_config_file(self, path: str) -> None:
        # etcd ignores its other flags (and environment) when --config-file is given.
        text = self.file_text(path)
        if text is None:
            reason = (f"etcd runs with --config-file={path}, which replaces its flags; the file lives on the "
                      "control-plane node and is not readable from here")
            self.values = {"config-file": path}
            self.hidden = {flag: reason for flag in _ETCD_FLAGS_A_FILE_CAN_SET}
            return
        document = _yaml_mapping(text, path)
        values: dict[str, str] = {"config-file": path}
        for key, value in document.items():
            if key in _ETCD_TRANSPORT:
                nested = value if isinstance(value, dict) else None
                if value is not None and nested is None:
                    raise NotVerified(f"{path}: {key} is not a mapping")
                for inner, inner_value in (nested or {}).items():
                    values[f"{_ETCD_TRANSPORT[key]}{inner}"] = _scalar_text(inner_value, f"{path}: {key}.{inner}")
            elif isinstance(key, str) and not isinstance(value, (dict, list)):
                values[key] = _scalar_text(value, f"{path}: {key}")
        self.values = values

    def _from_scheduler_config(self, path: str) -> None:
        # kube-scheduler ignores --profiling when --config is given; the file's enableProfiling
        # (default true) decides.
        text = self.file_text(path)
        if text is None:
            self.hidden["profiling"] = (
                f"kube-scheduler runs with --config={path}, whose enableProfiling replaces --profiling; the file "
                "lives on the control-plane node and is not readable from here")
            return
        document = _yaml_mapping(text, path)
        self.values.pop("profiling", None)
        if "enableProfiling" in document:
            value = document["enableProfiling"]
            if not isinstance(value, bool):
                raise NotVerified(f"{path}: enableProfiling is not a boolean")
            self.values["profiling"] = str(value).lower()


_ETCD_FLAGS_A_FILE_CAN_SET = ("cert-file", "key-file", "client-cert-auth", "auto-tls", "trusted-ca-file",
                              "peer-cert-file", "peer-key-file", "peer-client-cert-auth", "peer-auto-tls",
                              "peer-trusted-ca-file")


def _yaml_mapping(text: str, path: str) -> dict:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        raise NotVerified(f"{path} is not valid YAML") from None
    if not isinstance(document, dict):
        raise NotVerified(f"{path} does not hold a mapping")
    return document


def _scalar_text(value, where: str) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (str, int, float)):
        return str(value)
    if value is None:
        return ""
    raise NotVerified(f"{where} is not a single value")


def parse_bool(value: str, where: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise NotVerified(f"{where}={value!r} is not a boolean the component would accept")


def split_list(value: str, where: str) -> list[str]:
    if value == "true":
        # A bare "--flag" (or "--flag value" read as two arguments) comes back as "true": the list
        # the component really got cannot be known from it.
        raise NotVerified(f"{where} was given without a readable value")
    return [item.strip() for item in value.split(",") if item.strip()]


def shown_value(value: str | None, default: str | None) -> str:
    if value == "":
        # `--flag=` names no value: a finding must still say what was seen.
        return f"set empty (defaults to {default})" if default is not None else "set empty"
    if value is not None:
        return value
    return f"not set (defaults to {default})" if default is not None else "not set"
