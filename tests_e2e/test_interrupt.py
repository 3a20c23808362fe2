"""Stopping a run (Ctrl-C, or killing it outright) leaves no etcd, kube-apiserver or
kube-controller-manager behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from suite_runs import ROOT

COMPONENTS = (b"etcd", b"kube-apiserver", b"kube-controller-manager", b"kube-scheduler", b"kubeproof-kubelet")


def _processes_under(folder: Path) -> list[str]:
    """Control-plane processes whose command line names this folder (their work directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and Path(argv[0].decode(errors="replace")).name.encode() in COMPONENTS and str(folder).encode() in b" ".join(argv):
            found.append(f"{entry.name} {argv[0].decode()}")
    return found


def _start_audit(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch))
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests_cluster", "--cluster=local", "-p", "no:cacheprovider",
         f"--report-dir={tmp_path / 'reports'}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 180
    for line in process.stdout:
        if "kubeproof: auditing local" in line:
            break
        if time.monotonic() > deadline:
            break
    assert _processes_under(scratch), "the embedded control plane did not start"
    return process, scratch


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_stopping_a_run_leaves_no_control_plane_process(tmp_path, how):
    process, scratch = _start_audit(tmp_path)
    if how == "ctrl-c":
        process.send_signal(signal.SIGINT)
    else:
        process.kill()
    process.communicate(timeout=60)
    deadline = time.monotonic() + 20
    while _processes_under(scratch) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_under(scratch) == []
    if how == "ctrl-c":
        assert not list((tmp_path / "reports").glob("*")), "an interrupted run must not leave a report that looks complete"
