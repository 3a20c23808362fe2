"""kind clusters: a kubeconfig context like any other, plus the nodes' own files read with `docker
exec` where a Docker engine answers (kind names each node's container after the node), so the
control-plane checks see real flags and the node file checks real modes and owners."""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import shutil
import subprocess

import yaml

from kubeproof.backends import ComponentConfig, LiveBackend, files
from kubeproof.backends.etcd import EtcdAccess, EtcdError, EtcdReader
from kubeproof.backends.http import Unreachable

MANIFESTS = "/etc/kubernetes/manifests"
# Flags whose files the checks read (the encryption configuration is parsed, never printed).
FILE_FLAGS = {"kube-apiserver": ("encryption-provider-config", "audit-policy-file", "admission-control-config-file",
                                  "authentication-config")}
KUBERNETES = "/etc/kubernetes"
PKI = f"{KUBERNETES}/pki"
CLUSTER_CA = f"{PKI}/ca.crt"
SUPER_ADMIN = f"{KUBERNETES}/super-admin.conf"
CNI_CONFIG = "/etc/cni/net.d"
ETCD_DATA_DIR = "/var/lib/etcd"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
# kubeadm (and so kind) keeps kube-proxy's kubeconfig in a ConfigMap mounted into its pod: on the
# node itself the file is normally not there, which the "if it exists" controls accept.
PROXY_KUBECONFIG = "/var/lib/kube-proxy/kubeconfig.conf"
# /etc overrides the packaged unit of the same name; both folders may hold drop-ins.
UNIT_FOLDERS = ("/etc/systemd/system", "/lib/systemd/system")
ENVIRONMENT_FILES = ("/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet", "/etc/sysconfig/kubelet")
# A Node's name is a DNS subdomain; anything else cannot be a kind container, and must not reach
# docker's command line where it could be read as an option.
_CONTAINER = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _run(argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, input=input)


class KindNode:
    """The control-plane container of a kind cluster, read through the docker CLI (any other node's
    container when named: kind names each container after its node)."""

    def __init__(self, cluster_name: str, run=_run):
        self.container = f"{cluster_name}-control-plane"
        self._run = run

    def available(self) -> bool:
        if shutil.which("docker") is None and self._run is _run:
            return False
        try:
            return self._run(["docker", "inspect", "--format", "{{.State.Running}}", self.container]).stdout.strip() == "true"
        except (OSError, subprocess.SubprocessError):
            return False

    def read(self, path: str, container: str | None = None) -> str | None:
        try:
            done = self._run(["docker", "exec", container or self.container, "cat", path])
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    def shell(self, script: str, container: str | None = None) -> str | None:
        """What `sh -c script` printed in the container, or None when it did not run to its end.
        The script's own commands may fail (a file that is not there); only a missing end line
        means the container could not be asked."""
        try:
            done = self._run(["docker", "exec", container or self.container, "sh", "-c",
                              f"{script}\nprintf '\\n%s\\n' {_END}"])
        except (OSError, subprocess.SubprocessError):
            return None
        text, end = done.stdout or "", f"\n{_END}\n"
        return text[:-len(end)] if text.endswith(end) else None

    def post_json(self, url: str, body: str, ca: str, cert: str, key: str) -> tuple[int, str]:
        """POSTs `body` to `url` from inside the node with curl and the node's own certificate files
        (named by path: no key material leaves the node): (HTTP status, body). Unreachable when the
        container or curl could not be asked, or gave no status."""
        marker = "\nkubeproof-http-status:"
        argv = ["docker", "exec", "-i", self.container, "curl", "-sS", "--max-time", "15", "--cacert", ca,
                "--cert", cert, "--key", key, "-H", "Content-Type: application/json", "--data-binary", "@-",
                "-w", marker.replace("\n", "\\n") + "%{http_code}", url]
        try:
            done = self._run(argv, input=body)
        except (OSError, subprocess.SubprocessError) as error:
            raise Unreachable(url, f"docker exec into {self.container} failed: {error}") from None
        text, _, status = (done.stdout or "").rpartition(marker)
        if done.returncode != 0 or not status.strip().isdigit():
            raise Unreachable(url, f"curl in {self.container}: {(done.stderr or '').strip()[-300:] or 'no answer'}")
        return int(status), text


class NodeEtcdReader(EtcdReader):
    """etcd read from inside the kind node, with the client certificate kubeadm gives the API server:
    the node's loopback is always reachable, even where the host cannot route to the node's address
    (Docker Desktop). The values are reduced to their headers as EtcdReader does."""

    def __init__(self, node: KindNode, backend: KindBackend):
        self.node = node
        self._backend = backend
        self._access: tuple[str, str, str, str] | None = None
        self.access = EtcdAccess(f"etcd in {node.container}", None, None, None)

    def _where(self) -> tuple[str, str, str, str]:
        if self._access is None:
            etcd = self._backend._manifest_flags("etcd") or {}
            apiserver = self._backend._manifest_flags("kube-apiserver") or {}
            urls = [u for u in etcd.get("listen-client-urls", "").split(",") if u.strip()]
            url = next((u for u in urls if "127.0.0.1" in u), urls[0] if urls else "")
            access = (url, etcd.get("trusted-ca-file", ""), apiserver.get("etcd-certfile", ""),
                      apiserver.get("etcd-keyfile", ""))
            if not all(access):
                raise Unreachable(self.access.endpoint, "the etcd and kube-apiserver static pods in the node do not "
                                  "name etcd's client URL, its CA and the API server's etcd client certificate")
            self._access = access
            self.access = EtcdAccess(f"{url} in {self.node.container}", *access[1:])
        return self._access

    def _post(self, path: str, body: dict) -> dict:
        url, ca, cert, key = self._where()
        status, text = self.node.post_json(url.rstrip("/") + path, json.dumps(body), ca, cert, key)
        if status != 200:
            raise EtcdError(f"etcd {self.access.endpoint} answered {status} to {path}")
        try:
            return json.loads(text)
        except ValueError:
            raise EtcdError(f"etcd {self.access.endpoint} answered {path} with a body that is not JSON") from None


_END = "kubeproof-end-of-answer"
_FILE_MARK = "kubeproof-file "


def flags_from_static_pod(text: str) -> dict[str, str]:
    pod = yaml.safe_load(text) or {}
    flags: dict[str, str] = {}
    for container in ((pod.get("spec") or {}).get("containers") or []):
        for arg in list(container.get("command") or []) + list(container.get("args") or []):
            if isinstance(arg, str) and arg.startswith("--"):
                key, sep, value = arg[2:].partition("=")
                flags[key] = value if sep else "true"
    return flags


class KindBackend(LiveBackend):
    kind = "kind"

    def __init__(self, context: str, kubeconfig: str | None, node: KindNode, etcd=None):
        super().__init__(context, kubeconfig, etcd)
        self.node = node
        if etcd is None:
            # Without an endpoint given, etcd is read where it always answers: inside the node.
            self.etcd = NodeEtcdReader(node, self)

    def own_component_config(self, component: str) -> ComponentConfig | None:
        text = self.node.read(f"{MANIFESTS}/{component}.yaml")
        if text is None:
            return None  # fall back to the mirror pod, which kind also has
        flags = flags_from_static_pod(text)
        texts = {}
        for flag in FILE_FLAGS.get(component, ()):
            path = flags.get(flag)
            content = self.node.read(path) if path else None
            if content is not None:
                texts[path] = content
        return ComponentConfig(component, f"kind node {self.node.container}:{MANIFESTS}/{component}.yaml (docker exec)",
                               flags, texts)

    # -- node files (CIS 1.1, 4.1), etcd's CA (2.7), the kubelet's command line (4.2.7) ---------------
    def control_plane_files(self) -> list[dict] | None:
        from kubeproof.checks import node_files as roles

        data_dir = self._etcd_data_dir()
        fixed = {
            f"{MANIFESTS}/kube-apiserver.yaml": roles.APISERVER_MANIFEST,
            f"{MANIFESTS}/kube-controller-manager.yaml": roles.CONTROLLER_MANAGER_MANIFEST,
            f"{MANIFESTS}/kube-scheduler.yaml": roles.SCHEDULER_MANIFEST,
            f"{MANIFESTS}/etcd.yaml": roles.ETCD_MANIFEST,
            data_dir: roles.ETCD_DATA_DIR,
            f"{KUBERNETES}/admin.conf": roles.ADMIN_KUBECONFIG,
            SUPER_ADMIN: roles.ADMIN_KUBECONFIG,
            f"{KUBERNETES}/scheduler.conf": roles.SCHEDULER_KUBECONFIG,
            f"{KUBERNETES}/controller-manager.conf": roles.CONTROLLER_MANAGER_KUBECONFIG,
        }
        listed = self.node.shell(_stat_script(list(fixed), [PKI, CNI_CONFIG]))
        if listed is None:
            return None
        facts: list[dict] = []
        seen: set[str] = set()
        cni_files = 0
        for path, fact in files.stat_lines(listed):
            if path in seen:
                continue
            seen.add(path)
            if path in fixed:
                found = [fixed[path]]
            elif path == PKI or path.startswith(PKI + "/"):
                found = files.pki_roles(path, roles.PKI_DIR, roles.PKI_CERT, roles.PKI_KEY)
            elif path.startswith(CNI_CONFIG + "/") and not fact["is_dir"]:
                found = [roles.CNI_CONFIG]
                cni_files += 1
            else:
                found = []
            facts += [dict(fact, role=role) for role in found]
        # kubeadm writes super-admin.conf only from 1.29 on: where it is not there, there is nothing to judge.
        facts += [_missing(role, path) for path, role in fixed.items() if path not in seen and path != SUPER_ADMIN]
        if PKI not in seen:
            facts.append(_missing(roles.PKI_DIR, PKI))
        if not cni_files:
            facts.append(_missing(roles.CNI_CONFIG, CNI_CONFIG))
        return facts

    def node_files(self, node: str) -> list[dict] | None:
        from kubeproof.checks import node_files as roles

        if not _container_name(node):
            return None
        client_ca = self._kubelet_client_ca(node)
        fixed = {
            KUBELET_CONFIG: roles.KUBELET_CONFIG,
            f"{KUBERNETES}/kubelet.conf": roles.KUBELET_KUBECONFIG,
            PROXY_KUBECONFIG: roles.PROXY_KUBECONFIG,
        }
        if client_ca:
            fixed[client_ca] = roles.KUBELET_CLIENT_CA
        units = [f"{folder}/kubelet.service" for folder in UNIT_FOLDERS]
        listed = self.node.shell(_stat_script(list(fixed) + units, [f"{unit}.d" for unit in units]), container=node)
        if listed is None:
            return None
        facts: list[dict] = []
        seen: set[str] = set()
        for path, fact in files.stat_lines(listed):
            if path in seen:
                continue
            seen.add(path)
            if path in fixed:
                facts.append(dict(fact, role=fixed[path]))
            elif path in units or (any(path.startswith(f"{unit}.d/") for unit in units) and not fact["is_dir"]):
                facts.append(dict(fact, role=roles.KUBELET_SERVICE))
        # The unit may be in /etc (kind, a hand-made unit) or where the package put it; one is enough.
        if not any(unit in seen for unit in units):
            facts.append(_missing(roles.KUBELET_SERVICE, units[0]))
        facts += [_missing(role, path) for path, role in fixed.items() if path not in seen]
        if client_ca == "":
            facts.append(files.absent(roles.KUBELET_CLIENT_CA, "(authentication.x509.clientCAFile)",
                                      "the kubelet names no client CA file (CIS 4.2.3)"))
        return facts

    def etcd_ca_fingerprints(self) -> tuple[str, str] | None:
        pairs = (("etcd", "trusted-ca-file"), ("kube-apiserver", "client-ca-file"))
        found = []
        for component, flag in pairs:
            flags = self._manifest_flags(component)
            path = (flags or {}).get(flag)
            text = self.node.read(path) if path else None
            fingerprint = files.pem_fingerprint(text) if text is not None else None
            if fingerprint is None:
                return None
            found.append(fingerprint)
        return found[0], found[1]

    def kubelet_flags(self, node: str) -> dict[str, str] | None:
        """The kubelet's command line on a kind node, as systemd builds it from the unit, its drop-ins
        and the environment files they name (kubeadm's flags file among them)."""
        if not _container_name(node):
            return None
        wanted = [f"{folder}/kubelet.service" for folder in UNIT_FOLDERS]
        globs = [f"{folder}/kubelet.service.d/*.conf" for folder in UNIT_FOLDERS]
        texts = self._cat(wanted + list(ENVIRONMENT_FILES), globs, node)
        if texts is None:
            return None
        unit = _unit_files(texts)
        if not unit:
            return None
        # Environment files kubeadm does not use are read only when a unit names them.
        missing = [path for path in _environment_files(unit) if path not in texts and path not in ENVIRONMENT_FILES]
        if missing:
            more = self._cat(missing, [], node)
            texts.update(more or {})
        return _command_line(unit, texts)

    # -- helpers -----------------------------------------------------------------------------------
    def _manifest_flags(self, component: str) -> dict[str, str] | None:
        text = self.node.read(f"{MANIFESTS}/{component}.yaml")
        if text is None:
            return None
        try:
            return flags_from_static_pod(text)
        except (yaml.YAMLError, AttributeError, TypeError):
            return None

    def _etcd_data_dir(self) -> str:
        data_dir = (self._manifest_flags("etcd") or {}).get("data-dir", "")
        return data_dir.rstrip("/") if data_dir.startswith("/") and len(data_dir) > 1 else ETCD_DATA_DIR

    def _kubelet_client_ca(self, node: str) -> str:
        """The client CA file the kubelet's config file names; "" when it names none; kubeadm's
        path when the config file cannot be read (its fact then says whether that file is there)."""
        text = self.node.read(KUBELET_CONFIG, container=node)
        try:
            config = yaml.safe_load(text) if text is not None else None
        except yaml.YAMLError:
            config = None
        if not isinstance(config, dict):
            return CLUSTER_CA
        value = config
        for step in ("authentication", "x509", "clientCAFile"):
            value = value.get(step) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value.strip():
            return ""
        # The kubelet reads a relative path in its config file from the file's own folder.
        return posixpath.join(posixpath.dirname(KUBELET_CONFIG), value.strip())

    def _cat(self, paths: list[str], globs: list[str], container: str) -> dict[str, str] | None:
        """path -> text of each regular file among `paths` and what `globs` match (a glob is a quoted
        folder and an unquoted pattern), in one docker exec."""
        words = [shlex.quote(path) for path in paths]
        for pattern in globs:
            folder, _, name = pattern.rpartition("/")
            words.append(f"{shlex.quote(folder)}/{name}")
        if not words:
            return {}
        script = (f"for f in {' '.join(words)}; do if [ -f \"$f\" ]; then "
                  f"printf '\\n%s%s\\n' {shlex.quote(_FILE_MARK)} \"$f\"; cat \"$f\"; fi; done")
        listed = self.node.shell(script, container=container)
        if listed is None:
            return None
        texts: dict[str, str] = {}
        current = None
        for line in listed.splitlines():
            if line.startswith(_FILE_MARK):
                current = line[len(_FILE_MARK):]
                texts[current] = ""
            elif current is not None:
                texts[current] += line + "\n"
        return texts


def _container_name(node) -> bool:
    return isinstance(node, str) and _CONTAINER.fullmatch(node) is not None


def _missing(role: str, path: str) -> dict:
    # No reason given: a file kubeadm writes that is not there is not verified, never exempt.
    return {"role": role, "path": path, "exists": False}


def _stat_script(paths: list[str], folders: list[str]) -> str:
    """stat of each path, and of each folder and everything under it, following symbolic links
    (kind's CNI configuration may be one), one STAT_FORMAT line each; what is not there prints
    nothing."""
    form = shlex.quote(files.STAT_FORMAT)
    lines = [f"stat -L -c {form} -- {' '.join(shlex.quote(path) for path in paths)} 2>/dev/null"]
    lines += [f"find {shlex.quote(folder)} -exec stat -L -c {form} -- {{}} + 2>/dev/null" for folder in folders]
    return "\n".join(lines)




# -- systemd: the kubelet's command line from its unit ---------------------------------------------------
def _unit_lines(text: str) -> list[tuple[str, str]]:
    """(key, value) of the [Service] section, continuation lines joined."""
    found, section, pending = [], None, ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if sep and section == "Service":
            found.append((key.strip(), value.strip()))
    return found


def _unit_files(texts: dict[str, str]) -> list[tuple[str, str]]:
    """The kubelet unit's [Service] settings in the order systemd applies them: the unit (the one
    in /etc hides a packaged one), then every drop-in by file name, /etc's hiding a packaged one of
    the same name."""
    unit = next((texts[f"{folder}/kubelet.service"] for folder in UNIT_FOLDERS
                 if f"{folder}/kubelet.service" in texts), None)
    dropins: dict[str, str] = {}
    for folder in reversed(UNIT_FOLDERS):
        prefix = f"{folder}/kubelet.service.d/"
        dropins.update({path[len(prefix):]: text for path, text in texts.items() if path.startswith(prefix)})
    if unit is None and not dropins:
        return []
    settings = _unit_lines(unit or "")
    for name in sorted(dropins):
        settings += _unit_lines(dropins[name])
    return settings


def _environment_files(settings: list[tuple[str, str]]) -> list[str]:
    named = []
    for key, value in settings:
        if key == "EnvironmentFile":
            named = [] if not value else named + [value.lstrip("-").strip()]
    return named


def _assignments(words: list[str]) -> dict[str, str]:
    found = {}
    for word in words:
        name, sep, value = word.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            found[name] = value
    return found


def _read_environment_file(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        try:
            found.update(_assignments(shlex.split(line)))
        except ValueError:
            continue
    return found


def _command_line(settings: list[tuple[str, str]], texts: dict[str, str]) -> dict[str, str] | None:
    environment: dict[str, str] = {}
    exec_start = None
    for key, value in settings:
        if key == "Environment":
            if not value:
                environment = {}
                continue
            try:
                environment.update(_assignments(shlex.split(value)))
            except ValueError:
                return None
        elif key == "ExecStart":
            exec_start = value or None
    if exec_start is None:
        return None
    # Variables from environment files win over Environment= lines, whatever their order.
    for path in _environment_files(settings):
        environment.update(_read_environment_file(texts.get(path, "")))
    command = exec_start.lstrip("-@:+!")

    def expand(match: re.Match) -> str:
        braced, bare = match.group(1), match.group(2)
        # ${NAME} stays one word; $NAME is split at whitespace, as systemd does.
        return shlex.quote(environment.get(braced, "")) if braced else environment.get(bare, "")

    try:
        argv = shlex.split(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", expand, command))
    except ValueError:
        return None
    return _flags(argv[1:])


def _flags(words: list[str]) -> dict[str, str]:
    flags: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        name, sep, value = word.lstrip("-").partition("=")
        if not sep and index < len(words) and not words[index].startswith("-"):
            value, sep = words[index], "="
            index += 1
        flags[name] = value if sep else "true"
    return flags
