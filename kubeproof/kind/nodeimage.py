"""Assembles a kind node image on this machine from Debian's packages and the Go module proxy only:
no image registry is needed. The image is what `kind create cluster --image` expects: a Debian base
with systemd, containerd, runc, crictl and CNI plugins; kubelet, kubeadm and kubectl at the project's
pinned Kubernetes version; and, as archives containerd imports at boot, the images kubeadm runs
(the control-plane binaries the project already builds, plus kube-proxy, CoreDNS and a pause of our
own). kind's own node files (entrypoint, systemd units, containerd configuration) come from the
pinned kind module, as they would in kind's own image.

Everything is cached under the project cache, keyed by the pins, and rebuilt only when one changes."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from kubeproof.controlplane import build

TOOLS = build.REPO_ROOT / "tools" / "kind"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What kind's own base image installs, less what only rootless, NFS or iSCSI volumes need.
DEBIAN_PACKAGES = ("systemd", "dbus", "conntrack", "iptables", "nftables", "iproute2", "ethtool", "util-linux",
                   "mount", "kmod", "libseccomp2", "pigz", "bash", "ca-certificates", "procps", "runc",
                   "e2fsprogs", "jq", "curl")
KIND = ("sigs.k8s.io/kind", "v0.33.0")
# Module, version, packages; each built in module mode (its own go.mod), so their dependencies never
# meet the control plane's.
GO_TOOLS = (
    ("sigs.k8s.io/kind", "v0.33.0", ("sigs.k8s.io/kind",), ()),
    ("github.com/containerd/containerd/v2", "v2.3.4",
     ("github.com/containerd/containerd/v2/cmd/containerd", "github.com/containerd/containerd/v2/cmd/ctr",
      "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"),
     ("-tags", "no_aufs no_zfs no_btrfs no_devmapper")),
    ("sigs.k8s.io/cri-tools", "v1.37.0", ("sigs.k8s.io/cri-tools/cmd/crictl",), ()),
    ("github.com/containernetworking/plugins", "v1.9.1",
     tuple(f"github.com/containernetworking/plugins/plugins/{p}"
           for p in ("ipam/host-local", "main/loopback", "main/ptp", "meta/portmap")), ()),
    ("github.com/coredns/coredns", "v1.14.6", ("github.com/coredns/coredns",), ()),
)
KUBE_NODE_PACKAGES = ("k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kubeadm", "k8s.io/kubernetes/cmd/kube-proxy")
CNI_PLUGINS = ("host-local", "loopback", "ptp", "portmap")
# kind's containerd configuration names pause 3.10 as the sandbox; kubeadm of this release expects 3.10.2.
PAUSE_TAGS = ("3.10", "3.10.2")
REGISTRY = "registry.k8s.io"
# This project's files in the node (network, storage class, image import).
NODE_FILES = ("10-kubeproof-ptp.conflist", "default-cni.yaml", "default-storage.yaml", "kubeproof-images.service",
              "20-kubeproof-images.conf", "restrict-oom-score.sh", "30-kubeproof-oom-score.conf")
# Raise when the way component images are written changes, so cached archives are rebuilt.
IMAGES_LAYOUT = 1


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeImage:
    """Where each stage is cached. The stages are keyed apart, so a change to how the node is laid
    out does not rebuild the Go tools or fetch Debian again."""
    bin: Path
    debian: Path
    images: Path
    folder: Path
    tag: str
    kubernetes_version: str

    @property
    def kind(self) -> Path:
        return self.bin / "kind"


def _key(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def pinned() -> NodeImage:
    control = build.pinned()
    root = build.cache_root() / "kind"
    tools_key = _key(GO_TOOLS, KUBE_NODE_PACKAGES, control.folder.name, (TOOLS / "pause.c").read_bytes())
    debian_key = _key(DEBIAN_SUITE, DEBIAN_MIRROR, DEBIAN_PACKAGES)
    images_key = _key(tools_key, debian_key, PAUSE_TAGS, IMAGES_LAYOUT)
    node_key = _key(images_key, Path(__file__).read_bytes(), *((name, (TOOLS / name).read_bytes()) for name in NODE_FILES))
    version = control.kubernetes_version
    return NodeImage(root / f"tools-{version}-{tools_key}", root / f"debian-{DEBIAN_SUITE}-{debian_key}",
                     root / f"images-{version}-{images_key}", root / f"node-{version}-{node_key}",
                     f"kubeproof/kind-node:{version}-{node_key}", version)


def say(log, message: str) -> None:
    """A progress line of the kind lane (stderr unless a stream is given)."""
    print(f"kubeproof: {message}", file=log or sys.stderr, flush=True)


def run_checked(argv, error=None, **kwargs) -> subprocess.CompletedProcess:
    """Runs a command; a non-zero exit raises `error` (ImageError by default) with its output's tail."""
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise (error or ImageError)(f"{' '.join(map(str, argv[:6]))} failed (exit {done.returncode}):\n"
                                    f"{(done.stderr or done.stdout)[-3000:]}")
    return done


def docker_import(folder: Path, tag: str, error=None) -> None:
    """A folder's tree as a one-layer image, streamed by tar into `docker import`."""
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(folder), "--exclude=./.kubeproof-complete",
                            "-cf", "-", "."], stdout=subprocess.PIPE)
    done = subprocess.run(["docker", "import", "-", tag], stdin=tar.stdout, capture_output=True, text=True)
    tar.stdout.close()
    tar.wait()
    if done.returncode != 0 or tar.returncode != 0:
        raise (error or ImageError)(f"docker import of {folder} as {tag} failed: {done.stderr[-2000:]}")


def _output_name(package: str) -> str:
    return package.rstrip("/").rsplit("/", 1)[-1]


def _build_go_tools(image: NodeImage, log) -> None:
    image.bin.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="", GOBIN=str(image.bin))
    for module, version, packages, flags in GO_TOOLS:
        if all((image.bin / _output_name(p)).is_file() for p in packages):
            continue
        say(log, f"building {module}@{version} from the Go module proxy")
        started = time.monotonic()
        run_checked([build._go(), "install", "-trimpath", "-ldflags=-s -w", *flags, *(f"{p}@{version}" for p in packages)],
             env=env, cwd=image.bin)
        say(log, f"  {module} built in {time.monotonic() - started:.0f} s")
    control = build.ensure_built(log=log or sys.stderr)
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
    for package in KUBE_NODE_PACKAGES:
        output = image.bin / _output_name(package)
        if output.is_file():
            continue
        say(log, f"building {_output_name(package)} {control.kubernetes_version}")
        run_checked([build._go(), "build", "-trimpath", f"-ldflags={build._ldflags('kube', control)}", "-o", str(output), package],
             env=env, cwd=build.MODULES / "kube")
    if not (image.bin / "pause").is_file():
        run_checked(["gcc", "-static", "-Os", "-o", str(image.bin / "pause"), str(TOOLS / "pause.c")])


def _debootstrap(image: NodeImage, log) -> None:
    if (image.debian / ".kubeproof-complete").exists():
        return
    if shutil.which("debootstrap") is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            raise ImageError("debootstrap is needed to assemble the node image's Debian base (apt-get install debootstrap)")
        say(log, "installing Debian's debootstrap")
        run_checked(["apt-get", "install", "-y", "-qq", "debootstrap"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    staging = image.debian.with_name(image.debian.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    say(log, f"debootstrap {DEBIAN_SUITE} from {DEBIAN_MIRROR} (a few minutes)")
    started = time.monotonic()
    run_checked(["debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}", DEBIAN_SUITE,
          str(staging), DEBIAN_MIRROR])
    # Downloaded .deb files are not part of any image.
    shutil.rmtree(staging / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    (staging / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (staging / ".kubeproof-complete").write_text(f"{DEBIAN_SUITE}\n")
    shutil.rmtree(image.debian, ignore_errors=True)
    staging.rename(image.debian)
    say(log, f"  Debian base ready in {time.monotonic() - started:.0f} s")


# --- container image archives (the `docker save` layout, which `ctr images import` reads) ---

def _add_file(layer: tarfile.TarFile, path: str, source: Path, mode: int = 0o755) -> None:
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        if folder not in layer.getnames():
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            layer.addfile(info)
    info = tarfile.TarInfo("/".join(parts))
    info.size, info.mode = source.stat().st_size, mode
    with open(source, "rb") as handle:
        layer.addfile(info, handle)


def write_image_archive(target: Path, tags: list[str], layer_path: Path, entrypoint: list[str] | None = None) -> None:
    """One-layer image archive: manifest.json, the config, the layer, as `docker save` writes them."""
    digest = hashlib.sha256()
    with open(layer_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    diff_id = digest.hexdigest()
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   **({"Entrypoint": entrypoint} if entrypoint else {})},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created_by": "kubeproof node image build"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": tags, "Layers": [f"{diff_id}/layer.tar"]}]).encode()
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w") as archive:
        for name, data in ((config_name, config_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        archive.add(str(layer_path), arcname=f"{diff_id}/layer.tar")
    partial.rename(target)


def binary_image(target: Path, tags: list[str], files: dict[str, Path], entrypoint: list[str] | None = None,
                  base: Path | None = None) -> None:
    layer_path = target.with_name(target.name + ".layer")
    if base is not None:
        # A Debian userland below the binary (kube-proxy runs iptables, nft and conntrack).
        run_checked(["tar", "--numeric-owner", "-C", str(base), "--exclude=./.kubeproof-complete", "-cf", str(layer_path), "."])
        mode = "a"
    else:
        mode = "w"
    with tarfile.open(layer_path, mode) as layer:
        for path, source in files.items():
            _add_file(layer, path, source)
    try:
        write_image_archive(target, tags, layer_path, entrypoint)
    finally:
        layer_path.unlink(missing_ok=True)


def _component_images(image: NodeImage, log) -> None:
    control = build.ensure_built(log=log or sys.stderr)
    version = control.kubernetes_version
    kubeadm_images = _kubeadm_image_list(image, version)
    image.images.mkdir(parents=True, exist_ok=True)

    def tag_of(name: str) -> str:
        for reference in kubeadm_images:
            if reference.rsplit(":", 1)[0].endswith("/" + name):
                return reference
        raise ImageError(f"kubeadm {version} does not list an image named {name}: {kubeadm_images}")

    wanted = {
        "kube-apiserver": ([tag_of("kube-apiserver")], {"usr/local/bin/kube-apiserver": control.apiserver}, None, None),
        "kube-controller-manager": ([tag_of("kube-controller-manager")],
                                    {"usr/local/bin/kube-controller-manager": control.controller_manager}, None, None),
        "kube-scheduler": ([tag_of("kube-scheduler")], {"usr/local/bin/kube-scheduler": control.scheduler}, None, None),
        # kubeadm names the etcd release it was tested with; the binary is the project's pinned etcd.
        "etcd": ([tag_of("etcd")], {"usr/local/bin/etcd": control.etcd}, None, None),
        "kube-proxy": ([tag_of("kube-proxy")], {"usr/local/bin/kube-proxy": image.bin / "kube-proxy"}, None, image.debian),
        "coredns": ([tag_of("coredns")], {"coredns": image.bin / "coredns"}, ["/coredns"], None),
        "pause": ([f"{REGISTRY}/pause:{t}" for t in PAUSE_TAGS], {"pause": image.bin / "pause"}, ["/pause"], None),
    }
    for name, (tags, files, entrypoint, base) in wanted.items():
        target = image.images / f"{name}.tar"
        if not target.exists():
            say(log, f"image {', '.join(tags)}")
            binary_image(target, tags, files, entrypoint, base)


def _kubeadm_image_list(image: NodeImage, version: str) -> list[str]:
    done = run_checked([str(image.bin / "kubeadm"), "config", "images", "list", f"--kubernetes-version={version}"])
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


# --- the node's root file system ---

def _kind_files(log) -> Path:
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="")
    done = run_checked([build._go(), "mod", "download", "-json", f"{KIND[0]}@{KIND[1]}"], env=env, cwd=build.cache_root())
    return Path(json.loads(done.stdout)["Dir"]) / "images" / "base" / "files"


def _copy_tree(source: Path, target: Path, mode: int | None = None) -> None:
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            destination.chmod(0o755)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            destination.chmod(mode if mode is not None else 0o644)


def _install(source: Path, target: Path, mode: int = 0o755) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode)


def _assemble_rootfs(image: NodeImage, root: Path, log) -> None:
    control = build.ensure_built(log=log or sys.stderr)
    files = _kind_files(log)
    run_checked(["cp", "-a", f"{image.debian}/.", str(root)])
    (root / ".kubeproof-complete").unlink(missing_ok=True)
    # kind's node files, laid out as kind's own base image lays them out.
    _copy_tree(files / "usr" / "local" / "bin", root / "usr" / "local" / "bin", 0o755)
    _copy_tree(files / "kind", root / "kind")
    _copy_tree(files / "kind" / "bin", root / "kind" / "bin", 0o755)
    for path in (files / "etc").iterdir():
        if path.is_file():
            _install(path, root / "etc" / path.name, 0o644)
    _copy_tree(files / "etc" / "containerd", root / "etc" / "containerd")
    _copy_tree(files / "etc" / "default", root / "etc" / "default")
    _copy_tree(files / "etc" / "sysctl.d", root / "etc" / "sysctl.d")
    _copy_tree(files / "etc" / "systemd" / "system", root / "etc" / "systemd" / "system")
    # The unit trimming kind's base image does, so only what a node needs starts.
    tmpfiles = root / "lib" / "systemd" / "system" / "sysinit.target.wants" / "systemd-tmpfiles-setup.service"
    tmpfiles.unlink(missing_ok=True)
    for wants in ("lib/systemd/system/multi-user.target.wants", "lib/systemd/system/local-fs.target.wants",
                  "lib/systemd/system/basic.target.wants"):
        for path in (root / wants).glob("*") if (root / wants).is_dir() else ():
            path.unlink()
    for path in (root / "etc" / "systemd" / "system").glob("*.wants/*"):
        path.unlink()
    for pattern in ("*udev*", "*initctl*"):
        for path in (root / "lib" / "systemd" / "system" / "sockets.target.wants").glob(pattern):
            path.unlink()
    with open(root / "etc" / "systemd" / "journald.conf", "a") as journald:
        journald.write("ReadKMsg=no\n")
    init = root / "sbin" / "init"
    if init.exists() or init.is_symlink():
        init.unlink()
    init.symlink_to("/usr/lib/systemd/systemd")
    # Runtime and Kubernetes binaries.
    for name in ("containerd", "ctr", "containerd-shim-runc-v2", "crictl"):
        _install(image.bin / name, root / "usr" / "local" / "bin" / name)
    for name in CNI_PLUGINS:
        _install(image.bin / name, root / "opt" / "cni" / "bin" / name)
    for name in ("kubelet", "kubeadm"):
        _install(image.bin / name, root / "usr" / "bin" / name)
    _install(control.kubectl, root / "usr" / "bin" / "kubectl")
    spec = json.loads(run_checked([str(image.bin / "ctr"), "oci", "spec"]).stdout)
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    spec["process"].pop("rlimits", None)
    (root / "etc" / "containerd" / "cri-base.json").write_text(json.dumps(spec, indent=2))
    # What kind reads from the image, and this project's network, storage and image import.
    (root / "kind" / "version").write_text(control.kubernetes_version + "\n")
    (root / "kind" / "manifests").mkdir(parents=True, exist_ok=True)
    _install(TOOLS / "default-cni.yaml", root / "kind" / "manifests" / "default-cni.yaml", 0o644)
    _install(TOOLS / "default-storage.yaml", root / "kind" / "manifests" / "default-storage.yaml", 0o644)
    _install(TOOLS / "10-kubeproof-ptp.conflist", root / "etc" / "cni" / "net.d" / "10-kubeproof-ptp.conflist", 0o644)
    _install(TOOLS / "kubeproof-images.service", root / "etc" / "systemd" / "system" / "kubeproof-images.service", 0o644)
    _install(TOOLS / "20-kubeproof-images.conf",
             root / "etc" / "systemd" / "system" / "kubelet.service.d" / "20-kubeproof-images.conf", 0o644)
    _install(TOOLS / "restrict-oom-score.sh", root / "usr" / "local" / "bin" / "kubeproof-restrict-oom-score")
    _install(TOOLS / "30-kubeproof-oom-score.conf",
             root / "etc" / "systemd" / "system" / "containerd.service.d" / "30-kubeproof-oom-score.conf", 0o644)
    (root / "kind" / "images").mkdir(parents=True, exist_ok=True)
    for archive in sorted(image.images.glob("*.tar")):
        os.link(archive, root / "kind" / "images" / archive.name)
    (root / "etc" / "kubernetes" / "manifests").mkdir(parents=True, exist_ok=True)
    for unit in ("kubelet.service", "containerd.service", "undo-mount-hacks.service", "kubeproof-images.service"):
        run_checked(["systemctl", f"--root={root}", "enable", unit])
    run_checked(["systemctl", f"--root={root}", "mask", "systemd-binfmt.service"])


NODE_DOCKERFILE = """FROM {base}
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
"""


def docker_has(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def ensure_image(log=None) -> NodeImage:
    """The node image, loaded into the Docker engine that answers, built first where missing."""
    image = pinned()
    if docker_has(image.tag):
        return image
    image.folder.mkdir(parents=True, exist_ok=True)
    with open(image.folder.parent / (image.folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if docker_has(image.tag):
            return image
        started = time.monotonic()
        say(log, f"assembling the kind node image {image.tag} in {image.folder} (once per machine)")
        _build_go_tools(image, log)
        _debootstrap(image, log)
        _component_images(image, log)
        root = image.folder / "node.partial"
        if root.exists():
            run_checked(["rm", "-rf", str(root)])
        root.mkdir()
        try:
            _assemble_rootfs(image, root, log)
            say(log, f"docker import {image.tag}")
            docker_import(root, image.tag + "-rootfs")
            # `docker import` cannot set the stop signal; a build with no RUN step adds the metadata
            # (systemd shuts down on SIGRTMIN+3) without fetching anything.
            run_checked(["docker", "build", "-q", "-t", image.tag, "-"], input=NODE_DOCKERFILE.format(base=image.tag + "-rootfs"))
            run_checked(["docker", "rmi", image.tag + "-rootfs"])
        finally:
            run_checked(["rm", "-rf", str(root)])
        prune_older(image.tag.rsplit(":", 1)[0], keep=image.tag)
        _prune_stale_folders(image)
        say(log, f"node image {image.tag} ready in {time.monotonic() - started:.0f} s "
                  f"(cache {image.folder.parent}, {_disk_use(image.folder.parent)})")
    return image


def prune_older(repository: str, keep: str) -> None:
    """Removes this repository's other tags from the engine: each pin or layout change makes a new
    image of a gigabyte or more, and only the current one is ever used."""
    listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository],
                            capture_output=True, text=True)
    for tag in listed.stdout.split():
        if tag != keep:
            subprocess.run(["docker", "rmi", tag], capture_output=True)


def _prune_stale_folders(image: NodeImage) -> None:
    """Archives and locks of earlier layouts; the Go tools and the Debian base are kept (they take
    minutes to remake, and another checkout on this machine may pin them)."""
    for path in image.folder.parent.iterdir():
        stale_images = path.name.startswith("images-") and path != image.images
        stale_node = path.name.startswith("node-") and path.name not in (image.folder.name, image.folder.name + ".lock")
        if (stale_images or stale_node) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif stale_node:
            path.unlink(missing_ok=True)


def _disk_use(folder: Path) -> str:
    done = subprocess.run(["du", "-sh", str(folder)], capture_output=True, text=True)
    return done.stdout.split()[0] if done.returncode == 0 and done.stdout else "size unknown"

