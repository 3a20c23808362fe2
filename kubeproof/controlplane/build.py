"""Finds the embedded control plane's binaries in the per-user cache, building them from the Go
module proxy when they are missing. The pins live in tools/controlplane/*/go.mod; the cache folder is
keyed by those pins, so a fresh clone on the same machine reuses an earlier build."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = REPO_ROOT / "tools" / "controlplane"
BINARIES = {
    "kube": ("k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
             "k8s.io/kubernetes/cmd/kube-scheduler", "./cmd/kubeproof-kubelet",
             # kubectl of the same release: the reference --manifests is compared with (what
             # `kubectl apply --server-side` stores), and the Kustomize renderer.
             "k8s.io/kubernetes/cmd/kubectl"),
    "etcd": ("go.etcd.io/etcd/server/v3",),
}
# The name `go build` gives the etcd main package is its module path's last element ("v3").
OUTPUT_NAMES = {"go.etcd.io/etcd/server/v3": "etcd"}


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Binaries:
    folder: Path
    kubernetes_version: str
    etcd_version: str

    @property
    def apiserver(self) -> Path:
        return self.folder / "kube-apiserver"

    @property
    def controller_manager(self) -> Path:
        return self.folder / "kube-controller-manager"

    @property
    def scheduler(self) -> Path:
        return self.folder / "kube-scheduler"

    @property
    def kubelet(self) -> Path:
        return self.folder / "kubeproof-kubelet"

    @property
    def kubectl(self) -> Path:
        return self.folder / "kubectl"

    @property
    def etcd(self) -> Path:
        return self.folder / "etcd"

    def all_present(self) -> bool:
        return all(p.is_file() and os.access(p, os.X_OK)
                   for p in (self.apiserver, self.controller_manager, self.scheduler, self.kubelet, self.kubectl, self.etcd))


def _required_version(go_mod: Path, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.MULTILINE)
    if not match:
        raise BuildError(f"{go_mod}: no requirement on {module}")
    return match.group(1)


def cache_root() -> Path:
    base = os.environ.get("KUBEPROOF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kubeproof"
    )
    return Path(base)


def pinned() -> Binaries:
    kube_mod = MODULES / "kube" / "go.mod"
    etcd_mod = MODULES / "etcd" / "go.mod"
    kubernetes = _required_version(kube_mod, "k8s.io/kubernetes")
    etcd = _required_version(etcd_mod, "go.etcd.io/etcd/server/v3")
    digest = hashlib.sha256()
    # The project's own Go sources (the kubelet's main) are part of what is built, so part of the key.
    own_sources = sorted((MODULES / "kube" / "cmd").rglob("*.go"))
    for path in (kube_mod, MODULES / "kube" / "go.sum", etcd_mod, MODULES / "etcd" / "go.sum", *own_sources):
        digest.update(path.read_bytes())
    folder = cache_root() / "controlplane" / f"k8s-{kubernetes}-etcd-{etcd}-{digest.hexdigest()[:12]}"
    return Binaries(folder, kubernetes, etcd)


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if not go:
        raise BuildError("the Go toolchain is needed to build the embedded control plane and was not found on PATH")
    return go


def pinned_module_version(module: str) -> str:
    """The version tools/controlplane/kube/go.mod builds `module` at (its `replace` wins over `require`)."""
    go_mod = (MODULES / "kube" / "go.mod").read_text()
    match = re.search(rf"^\s*{re.escape(module)}\s+=>\s+{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    if match:
        return match.group(1)
    return _required_version(MODULES / "kube" / "go.mod", module)


def module_source(module: str) -> Path:
    """The folder of `module`, at the version the control plane pins, in the Go module cache; the go
    command downloads it from the module proxy first when the cache does not hold it yet."""
    version = pinned_module_version(module)
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
    result = subprocess.run(
        [_go(), "mod", "download", "-json", f"{module}@{version}"],
        cwd=MODULES / "kube", env=env, capture_output=True, text=True,
    )
    try:
        folder = json.loads(result.stdout).get("Dir") if result.stdout.strip() else None
    except json.JSONDecodeError:
        folder = None
    if result.returncode != 0 or not folder or not Path(folder).is_dir():
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise BuildError(f"could not download {module}@{version} through the go command: {detail}")
    return Path(folder)


def _ldflags(module_dir: str, binaries: Binaries) -> str:
    flags = "-s -w"
    if module_dir == "kube":
        # Without these the binaries report v0.0.0-master, and /version is evidence in the report.
        version = binaries.kubernetes_version
        major, minor = version.lstrip("v").split(".")[:2]
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += (
                f" -X {package}.gitVersion={version} -X {package}.gitMajor={major}"
                f" -X {package}.gitMinor={minor} -X {package}.gitTreeState=clean"
            )
    return flags


def ensure_built(log=sys.stderr) -> Binaries:
    """Returns the pinned binaries, building them first if the cache does not have them."""
    binaries = pinned()
    if binaries.all_present():
        return binaries
    binaries.folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = binaries.folder.parent / (binaries.folder.name + ".lock")
    with open(lock_path, "w") as lock:
        # Two sessions starting at once must not build into the same folder.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binaries.all_present():
            return binaries
        staging = binaries.folder.parent / (binaries.folder.name + f".building-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
        started = time.monotonic()
        print(
            f"kubeproof: building kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl {binaries.kubernetes_version} and "
            f"etcd {binaries.etcd_version} from the Go module proxy (once per machine; minutes on a cold cache)",
            file=log,
            flush=True,
        )
        for module_dir, packages in BINARIES.items():
            for package in packages:
                output = staging / OUTPUT_NAMES.get(package, package.rsplit("/", 1)[-1])
                command = [_go(), "build", "-trimpath", f"-ldflags={_ldflags(module_dir, binaries)}", "-o", str(output), package]
                result = subprocess.run(command, cwd=MODULES / module_dir, env=env, capture_output=True, text=True)
                if result.returncode != 0:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise BuildError(
                        f"building {package} in {MODULES / module_dir} failed:\n{result.stderr[-4000:]}"
                    )
        # A folder left by an older kubeproof that built fewer binaries is replaced whole.
        shutil.rmtree(binaries.folder, ignore_errors=True)
        staging.rename(binaries.folder)
        print(f"kubeproof: control plane built in {time.monotonic() - started:.0f} s into {binaries.folder}", file=log, flush=True)
    return binaries


def main() -> int:
    try:
        binaries = ensure_built()
    except BuildError as error:
        print(f"kubeproof: {error}", file=sys.stderr)
        return 2
    print(binaries.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
