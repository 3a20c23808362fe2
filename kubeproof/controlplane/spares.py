"""Warm spares for the manifest gate: embedded clusters started before a run needs one.

A `--manifests` run spends most of its time waiting for a fresh API server and its controllers. A
supervisor (`python -m kubeproof.controlplane spares start`) keeps one cluster, started exactly as the
gate starts its own (EmbeddedCluster.for_manifests), ready in the cache; a run claims it, applies the repository to
it, audits it, and lets it go. A claimed spare is never handed out again: the supervisor kills it once
its claimant is gone and starts a new one, so every run still gets a cluster nobody else has written to.

The folder of each spare holds its markers:
  starting   the supervisor is starting it
  ready      settled; state.json describes it
  claimed    a run took it (renamed from `ready`, so two runs can never take the same one)
  lease      flock-ed by the claimant from before the claim until it exits, so the supervisor knows,
             even after a kill -9, when the spare is free to be ended
  key        what it was started from (spare_key); a run takes only a spare of its own key
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubeproof.controlplane import embedded
from kubeproof.controlplane.build import Binaries, cache_root, ensure_built, pinned
from kubeproof.controlplane.embedded import ControlPlaneError, EmbeddedCluster

SPARES_ENV = "KUBEPROOF_SPARES"
SUPERVISOR_LOCK = "supervisor.lock"
SUPERVISOR_STATE = "supervisor.json"
IDLE_SECONDS = 3600.0
POLL_SECONDS = 0.05
# How long a run waits for a spare the supervisor is starting before it starts its own cluster: a
# start takes about 5 s here, so a run that waits is never slower than one that does not.
WAIT_FOR_STARTING = 20.0


def spares_root() -> Path:
    """Where spares live: KUBEPROOF_SPARES, else the cache beside the binaries. `off` turns spares off."""
    return Path(os.environ.get(SPARES_ENV) or cache_root() / "spares")


def disabled() -> bool:
    return os.environ.get(SPARES_ENV) == "off"


def spare_key(binaries: Binaries) -> str:
    """The binaries and the code that starts a cluster: a spare made by other code is not taken."""
    digest = hashlib.sha256(f"{binaries.folder.name}\0{embedded.ETCD_TEMPLATE_VERSION}".encode())
    for source in sorted(Path(embedded.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def _supervisor_alive(root: Path) -> dict | None:
    """The running supervisor's state, or None. Its lock, not a pid, says whether it runs."""
    try:
        with open(root / SUPERVISOR_LOCK, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                return None
        return json.loads((root / SUPERVISOR_STATE).read_text())
    except (OSError, ValueError):
        return None


def claim(wait: float = WAIT_FOR_STARTING) -> EmbeddedCluster | None:
    """A settled spare of this code's key, now this process's alone; None when there is none (the caller
    starts its own cluster). Waits up to `wait` seconds while the supervisor is making one it can have."""
    if disabled():
        return None
    root = spares_root()
    try:
        binaries = pinned()
        if not root.is_dir() or not binaries.all_present():
            return None
        return _claim(root, spare_key(binaries), time.monotonic() + wait)
    except OSError:  # an unreadable spares folder: the run starts its own cluster
        return None


def _claim(root: Path, key: str, deadline: float) -> EmbeddedCluster | None:
    while True:
        held = 0
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            try:
                if (folder / "key").read_text() != key:
                    continue
            except OSError:
                continue
            cluster = _take(folder)
            if cluster is not None:
                return cluster
            held += _held(folder)
        # Waiting pays only while the supervisor is making one this run can have: it ends a let-go
        # spare and then starts the next, so for an instant there may be no folder at all.
        supervisor = _supervisor_alive(root)
        if supervisor is None or supervisor.get("key") != key or held >= supervisor.get("count", 1) \
                or time.monotonic() > deadline:
            return None
        time.sleep(POLL_SECONDS)


def _held(folder: Path) -> bool:
    """A claimed spare whose run still holds it."""
    return (folder / "claimed").exists() and _locked(folder / "lease")


def _locked(path: Path) -> bool:
    """Whether another process holds a lock on `path` (a missing file holds none)."""
    try:
        with open(path, "a") as file:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _take(folder: Path) -> EmbeddedCluster | None:
    try:
        lease = open(folder / "lease", "a")
    except OSError:  # ended meanwhile
        return None
    try:
        fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The lease is held before the claim, so the supervisor never sees a claim without its holder.
        os.rename(folder / "ready", folder / "claimed")
    except OSError:  # another run holds it, or it is not ready (or no longer)
        lease.close()
        return None
    try:
        cluster = EmbeddedCluster.attach(folder)
        # A spare whose supervisor died went with it (parent-death signal): its folder is all that is left.
        if cluster.api_request("GET", "/readyz")[0] != 200:
            raise ControlPlaneError("not ready")
        cluster.spare = json.loads((folder / "ready-at").read_text())
    except (ControlPlaneError, OSError, ValueError):
        lease.close()
        return None
    cluster.lease = lease
    return cluster


class Supervisor:
    """Keeps `count` spares ready; ends each one its claimant has let go; exits after `idle` seconds
    without a claim, ending its spares (their processes die with it in any case)."""

    def __init__(self, root: Path, count: int = 1, idle: float = IDLE_SECONDS):
        self.root, self.count, self.idle = root, count, idle
        self.spares: dict[Path, EmbeddedCluster] = {}
        self.stopping = False

    def serve(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        lock = open(self.root / SUPERVISOR_LOCK, "a")
        # A probe (_supervisor_alive) holds the lock for an instant: only a lock held for a second
        # means another supervisor.
        for _ in range(20):
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(POLL_SECONDS)
        else:
            print(f"kubeproof spares: a supervisor already runs for {self.root}", file=sys.stderr)
            lock.close()
            return 0
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        # Folders of an earlier supervisor: their processes died with it.
        for folder in self.root.iterdir():
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
        # The state first: on a machine that has yet to build the binaries, that takes minutes.
        self.key = spare_key(pinned())
        (self.root / SUPERVISOR_STATE).write_text(json.dumps({
            "pid": os.getpid(), "key": self.key, "count": self.count, "idle_seconds": self.idle,
            "started": time.time()}))
        binaries = ensure_built()
        last_used = time.monotonic()
        try:
            while not self.stopping:
                if self._end_released():
                    last_used = time.monotonic()
                in_use = any((folder / "claimed").exists() for folder in self.spares)
                if in_use:
                    last_used = time.monotonic()
                elif len(self.spares) < self.count:
                    # Started only while no run holds a spare, so a start never competes with a gate for CPU.
                    self._start_one(binaries)
                    continue
                if time.monotonic() - last_used > self.idle:
                    break
                time.sleep(POLL_SECONDS)
        finally:
            for folder in list(self.spares):
                self._end(folder)
            (self.root / SUPERVISOR_STATE).unlink(missing_ok=True)
            lock.close()
        return 0

    def _start_one(self, binaries: Binaries) -> None:
        folder = self.root / f"spare-{os.getpid()}-{time.time_ns()}"
        folder.mkdir(mode=0o700)
        (folder / "key").write_text(self.key)
        (folder / "starting").touch()
        cluster = EmbeddedCluster.for_manifests(workdir=folder, binaries=binaries)
        cluster._owns_workdir = True  # ended by killing, its folder removed
        self.spares[folder] = cluster
        began = time.time()
        try:
            cluster.start()
        except ControlPlaneError as error:
            print(f"kubeproof spares: a spare could not start: {error}", file=sys.stderr)
            self._end(folder)
            time.sleep(5)  # not a tight loop on a machine that cannot start one
            return
        (folder / "ready-at").write_text(json.dumps({
            "started": began, "ready": time.time(), "start_seconds": round(cluster.started_seconds or 0, 2),
            "supervisor": os.getpid()}))
        (folder / "ready").touch()
        (folder / "starting").unlink()

    def _end_released(self) -> bool:
        ended = False
        for folder, cluster in list(self.spares.items()):
            if (folder / "claimed").exists():
                if _locked(folder / "lease"):
                    continue  # its run still holds it
                self._end(folder)
                ended = True
            elif not all(p.popen.poll() is None for p in cluster.processes):
                print(f"kubeproof spares: {folder.name} stopped by itself; replacing it", file=sys.stderr)
                self._end(folder)
        return ended

    def _end(self, folder: Path) -> None:
        cluster = self.spares.pop(folder, None)
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def start(count: int = 1, idle: float = IDLE_SECONDS) -> dict:
    """Starts a supervisor in the background (unless one runs) and returns its state once it has one."""
    root = spares_root()
    running = _supervisor_alive(root)
    if running:
        return running
    root.mkdir(parents=True, exist_ok=True)
    log = root / "supervisor.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kubeproof.controlplane", "spares", "serve", "--count", str(count),
             "--idle", str(idle)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = _supervisor_alive(root)
        if state and state.get("pid") == process.pid:
            return state
        if process.poll() is not None:
            raise ControlPlaneError(f"the spares supervisor exited with status {process.returncode}; see {log}")
        time.sleep(POLL_SECONDS)
    raise ControlPlaneError(f"the spares supervisor did not start within 30 s; see {log}")


def stop(timeout: float = 30.0) -> bool:
    """Stops the running supervisor and its spares (a run holding one loses its cluster). False: none ran."""
    root = spares_root()
    state = _supervisor_alive(root)
    if not state:
        return False
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _supervisor_alive(root) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return True


def status() -> dict:
    root = spares_root()
    spares = []
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            marker = next((m for m in ("ready", "claimed", "starting") if (folder / m).exists()), "ending")
            spares.append({"folder": str(folder), "state": marker})
    return {"folder": str(root), "supervisor": _supervisor_alive(root), "spares": spares}
