"""kind clusters: a kubeconfig context like any other, plus the control-plane node's own files read
with `docker exec` where a Docker engine answers, so the control-plane checks see real flags."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from kubeproof.backends import ComponentConfig, LiveBackend

MANIFESTS = "/etc/kubernetes/manifests"
# Flags whose files the checks read (the encryption configuration is parsed, never printed).
FILE_FLAGS = {"kube-apiserver": ("encryption-provider-config", "audit-policy-file", "admission-control-config-file")}


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


class KindNode:
    """The control-plane container of a kind cluster, read through the docker CLI."""

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

    def read(self, path: str) -> str | None:
        try:
            done = self._run(["docker", "exec", self.container, "cat", path])
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None


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

    def own_component_config(self, component: str) -> ComponentConfig | None:
        text = self.node.read(f"{MANIFESTS}/{component}.yaml")
        if text is None:
            return None  # fall back to the mirror pod, which kind also has
        flags = flags_from_static_pod(text)
        files = {}
        for flag in FILE_FLAGS.get(component, ()):
            path = flags.get(flag)
            content = self.node.read(path) if path else None
            if content is not None:
                files[path] = content
        return ComponentConfig(component, f"kind node {self.node.container}:{MANIFESTS}/{component}.yaml (docker exec)",
                               flags, files)
