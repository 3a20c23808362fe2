"""Warm spares (kubeproof/controlplane/spares.py): a --manifests run that claims a cluster started
before it reaches the same verdicts as one that starts its own; a spare serves one run only, is ended
once its run lets go (even a killed one), and is never taken by code it was not started for or after
its supervisor died."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from suite_runs import ROOT, object_name, run_suite, until

from kubeproof.controlplane import spares

EXAMPLE = ROOT / "examples" / "config-repo"


def _ready(root: Path, other_than: Path | None = None) -> Path:
    return until("a ready spare", lambda: next((f.parent for f in root.glob("*/ready") if f.parent != other_than), None))


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def supervisor(tmp_path, monkeypatch):
    root = tmp_path / "spares"
    monkeypatch.setenv(spares.SPARES_ENV, str(root))
    state = spares.start()
    yield root, state
    spares.stop()


def _verdicts(run) -> set[tuple]:
    """Each result without the UIDs, which differ between any two clusters."""
    return {(r["test"], object_name(r["object"]), (r["object"] or {}).get("source"), r["status"]) for r in run.records()}


def _environment(run) -> dict:
    return (run.results or {}).get("environment", {})


def test_a_warm_spare_reaches_the_same_verdicts_as_a_cluster_started_for_the_run(tmp_path, supervisor):
    root, _ = supervisor
    cold = run_suite(tmp_path / "cold", f"--manifests={EXAMPLE}", env={**os.environ, spares.SPARES_ENV: "off"})
    first = _ready(root)
    warm = run_suite(tmp_path / "warm", f"--manifests={EXAMPLE}")
    assert cold.returncode == warm.returncode == 1, warm.output[-3000:]
    assert "embedded cluster" not in _environment(cold)
    assert "warm spare" in _environment(warm)["embedded cluster"]
    assert _verdicts(warm) == _verdicts(cold)
    assert {r["status"] for r in warm.records()} >= {"passed", "failed"}
    # Its run over, the spare is ended and the next run gets a cluster of its own.
    second = _ready(root, other_than=first)
    assert not first.exists()
    again = run_suite(tmp_path / "again", f"--manifests={EXAMPLE}")
    assert again.returncode == 1
    assert "warm spare" in _environment(again)["embedded cluster"]
    assert _environment(again)["cluster fingerprint"] != _environment(warm)["cluster fingerprint"]
    assert not second.exists() or not (second / "ready").exists()


def test_a_spare_serves_one_run_and_ends_when_let_go(supervisor):
    root, _ = supervisor
    folder = _ready(root)
    claimed = spares.claim(wait=0)
    assert claimed is not None and claimed.workdir == folder
    assert claimed.api_request("GET", "/readyz")[0] == 200
    assert spares.claim(wait=0) is None  # the only spare is held, and none starts while it is
    port = claimed.apiserver_port
    claimed.stop()
    # A run that starts now waits for the replacement rather than starting a cluster itself.
    replacement = spares.claim(wait=60)
    assert replacement is not None and replacement.workdir != folder
    replacement.stop()
    until("the let-go spare's folder removed", lambda: not folder.exists())
    assert not _answers(port)


def test_a_killed_run_frees_its_spare(supervisor):
    root, _ = supervisor
    folder = _ready(root)
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal\nfrom kubeproof.controlplane import spares\n"
         "assert spares.claim(wait=0) is not None\nos.kill(os.getpid(), signal.SIGKILL)"],
        cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (folder / "claimed").exists() or not folder.exists()
    until("the killed run's spare ended", lambda: not folder.exists())
    _ready(root, other_than=folder)


def test_a_spare_started_by_other_code_is_not_taken(supervisor):
    root, _ = supervisor
    folder = _ready(root)
    (folder / "key").write_text("0" * 16)
    assert spares.claim(wait=0) is None
    assert (folder / "ready").exists()


def test_a_spare_whose_supervisor_died_is_not_used_and_the_run_starts_its_own(tmp_path, supervisor):
    root, state = supervisor
    folder = _ready(root)
    os.kill(state["pid"], signal.SIGKILL)
    until("the supervisor gone", lambda: spares.status()["supervisor"] is None)
    assert spares.claim(wait=0) is None
    run = run_suite(tmp_path / "reports", f"--manifests={EXAMPLE}")
    assert run.returncode == 1, run.output[-3000:]
    assert "embedded cluster" not in _environment(run)
    assert folder.exists()  # what is left is cleared by the next supervisor, not taken


def test_spares_options_are_checked():
    done = subprocess.run([sys.executable, "-m", "kubeproof.controlplane", "spares", "start", "--count", "0"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, spares.SPARES_ENV: "/nonexistent/x"})
    assert done.returncode == 2
    assert "--count" in done.stderr
    assert not Path("/nonexistent/x").exists()
