"""A Docker engine for the kind lane: the one that already answers, or Debian's dockerd started here
and stopped again by whoever started it, leaving the host's network as it was found.

Hosts that never grant CAP_SYS_RESOURCE (some VMs and sandboxes) cannot start a `--privileged`
container, and a kind node is one: there dockerd's default runtime is a wrapper around runc that takes
that capability out of each container and exec spec. The wrapper is used only where the host's
bounding set lacks the capability; an ordinary machine runs plain runc."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kubeproof.controlplane.build import cache_root

CAP_SYS_RESOURCE = 24
SOCKET = "/var/run/docker.sock"


class EngineError(RuntimeError):
    pass


def state_folder() -> Path:
    return cache_root() / "docker"


def answers(timeout: float = 15) -> str | None:
    """The engine's version when a Docker engine answers the docker CLI, else None."""
    if shutil.which("docker") is None:
        return None
    try:
        done = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                              capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def host_withholds_sys_resource(status: str | None = None) -> bool:
    """True when this process's bounding set lacks CAP_SYS_RESOURCE, so no container can get it."""
    if status is None:
        status = Path("/proc/self/status").read_text()
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            return not int(line.split()[1], 16) & (1 << CAP_SYS_RESOURCE)
    raise EngineError("/proc/self/status has no CapBnd line: cannot tell which capabilities containers may get")


# Written by `start` into the state folder; a Python script because it edits JSON (the OCI spec).
_WRAPPER = '''#!{python}
# kubeproof: runc with CAP_SYS_RESOURCE taken out of every spec, for a host that never grants it.
import json, os, sys
RUNC = {runc!r}
CAP = "CAP_SYS_RESOURCE"

def strip(path):
    try:
        with open(path) as handle:
            spec = json.load(handle)
    except (OSError, ValueError):
        return
    process = spec["process"] if "process" in spec else spec
    caps = process.get("capabilities") or {{}}
    if not any(CAP in (caps.get(kind) or []) for kind in caps):
        return
    for kind in caps:
        caps[kind] = [c for c in caps[kind] or [] if c != CAP]
    with open(path, "w") as handle:
        json.dump(spec, handle)

args = sys.argv[1:]
for index, word in enumerate(args):
    if word in ("create", "run"):
        bundle = "."
        rest = args[index + 1:]
        for i, option in enumerate(rest):
            if option in ("--bundle", "-b") and i + 1 < len(rest):
                bundle = rest[i + 1]
            elif option.startswith("--bundle="):
                bundle = option.split("=", 1)[1]
        strip(os.path.join(bundle, "config.json"))
        break
    if word == "exec":
        rest = args[index + 1:]
        for i, option in enumerate(rest):
            if option in ("--process", "-p") and i + 1 < len(rest):
                strip(rest[i + 1])
            elif option.startswith("--process="):
                strip(option.split("=", 1)[1])
        break
os.execv(RUNC, [RUNC] + args)
'''


def write_runc_wrapper(path: Path, runc: str, python: str | None = None) -> Path:
    # The system Python by default, not the venv's: dockerd outlives `make clean`.
    python = python or shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    path.write_text(_WRAPPER.format(python=python, runc=runc))
    path.chmod(0o755)
    return path


@dataclass
class Engine:
    version: str
    started_here: bool
    wrapper: bool = False


def _network_snapshot() -> dict:
    snapshot = {"ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
                "links": _links()}
    if shutil.which("nft"):
        done = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True)
        snapshot["nft"] = done.stdout if done.returncode == 0 else None
    return snapshot


def _links() -> list[str]:
    done = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
    return sorted(line.split(":")[1].strip().split("@")[0] for line in done.stdout.splitlines() if ":" in line)


def _install_dockerd(log) -> str:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise EngineError("no Docker engine answers and dockerd is not installed; install Docker "
                          "(Debian: apt-get install docker.io) or start your engine")
    print("kubeproof: installing Debian's docker.io (dockerd, containerd, runc)", file=log or sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "docker.io"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise EngineError(f"{' '.join(argv)} failed: {(done.stderr or done.stdout)[-1500:]}")
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not os.path.exists(dockerd):
        raise EngineError("docker.io installed but no dockerd found")
    return dockerd


@contextlib.contextmanager
def _locked():
    # Two runs starting at once (make's step and a test session, two checkouts) must not start two.
    state_folder().mkdir(parents=True, exist_ok=True)
    with open(state_folder() / "engine.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def start(log=None, wait: float = 90) -> Engine:
    """Uses the engine that answers, or starts Debian's dockerd with its state in the cache."""
    version = answers()
    if version:
        return Engine(version, started_here=False)
    with _locked():
        return _start(log, wait)


def _start(log, wait: float) -> Engine:
    version = answers()
    if version:
        return Engine(version, started_here=False)
    folder = state_folder()
    record = folder / "started.json"
    if record.exists():
        # A dockerd this project started and that died: put the network back before starting anew.
        _stop(log)
    dockerd = shutil.which("dockerd") or ("/usr/sbin/dockerd" if os.path.exists("/usr/sbin/dockerd") else None)
    if dockerd is None:
        dockerd = _install_dockerd(log)
    folder.mkdir(parents=True, exist_ok=True)
    argv = [dockerd, "--data-root", str(folder / "data"), "--exec-root", str(folder / "exec"),
            "--pidfile", str(folder / "dockerd.pid"), "-H", f"unix://{SOCKET}"]
    wrapper = host_withholds_sys_resource()
    if wrapper:
        script = write_runc_wrapper(folder / "runc-without-sys-resource", shutil.which("runc") or "/usr/sbin/runc")
        argv += ["--add-runtime", f"kubeproof-runc={script}", "--default-runtime", "kubeproof-runc"]
    snapshot = _network_snapshot()
    logfile = open(folder / "dockerd.log", "ab")
    process = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    record.write_text(json.dumps({"pid": process.pid, "network": snapshot, "argv": argv}))
    print(f"kubeproof: started dockerd (pid {process.pid}, state in {folder}"
          f"{', runc wrapper without CAP_SYS_RESOURCE' if wrapper else ''})", file=log or sys.stderr, flush=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _stop(log)
            raise EngineError(f"dockerd exited with status {process.returncode}; see {folder / 'dockerd.log'}")
        version = answers(timeout=5)
        if version:
            return Engine(version, started_here=True, wrapper=wrapper)
        time.sleep(0.5)
    _stop(log)
    raise EngineError(f"dockerd did not answer within {wait:.0f} s; see {folder / 'dockerd.log'}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie child of ours counts as gone.
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop(log=None) -> bool:
    """Stops the dockerd `start` started, if any, and restores the network it changed. Returns
    whether there was one. An engine this project did not start is never touched."""
    with _locked():
        return _stop(log)


def _stop(log) -> bool:
    record = state_folder() / "started.json"
    if not record.exists():
        return False
    state = json.loads(record.read_text())
    pid = state["pid"]
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    # Containerd shims and containers left behind would hold the bridges and mounts.
    subprocess.run(["pkill", "-f", str(state_folder() / "exec")], capture_output=True)
    _restore_network(state["network"])
    record.unlink()
    print("kubeproof: stopped the dockerd it started and restored the network", file=log or sys.stderr, flush=True)
    return True


def _restore_network(snapshot: dict) -> None:
    before = set(snapshot["links"])
    for link in _links():
        if link not in before and (link == "docker0" or link.startswith(("br-", "veth"))):
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
    if snapshot.get("nft") is not None and shutil.which("nft"):
        subprocess.run(["nft", "flush", "ruleset"], capture_output=True)
        if snapshot["nft"].strip():
            subprocess.run(["nft", "-f", "-"], input=snapshot["nft"], capture_output=True, text=True)
    Path("/proc/sys/net/ipv4/ip_forward").write_text(snapshot["ip_forward"] + "\n")
