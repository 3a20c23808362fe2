"""Running the suite in tests_cluster/ as a user runs it: a separate pytest process per run, so exit
codes and artifacts are real. The e2e modules import this; tests_e2e/conftest.py holds only fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SuiteRun:
    returncode: int
    output: str
    results: dict | None
    run_folder: Path  # the run's folder under the report directory (the directory itself if none)

    def records(self, status: str | None = None) -> list[dict]:
        found = (self.results or {}).get("results", [])
        return [r for r in found if status is None or r["status"] == status]

    def outcome_keys(self, status: str) -> set[tuple[str, str]]:
        """(test name, object) for every record with this status."""
        return {(r["test"], object_name(r["object"])) for r in self.records(status)}


def object_name(obj: dict | None) -> str:
    if not obj:
        return ""
    return "/".join(p for p in (obj.get("kind"), obj.get("namespace"), obj.get("name")) if p)


def run_suite(report_dir: Path, *args: str, timeout: float = 600, env=None, paths=("tests_cluster",)) -> SuiteRun:
    command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider",
               f"--report-dir={report_dir}", *args]
    if env is None:  # under GitHub Actions, these runs' summaries do not belong on the job's page
        env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    folders = sorted(p.parent for p in report_dir.glob("*/results.json")) if report_dir.exists() else []
    results = json.loads((folders[-1] / "results.json").read_text()) if folders else None
    return SuiteRun(process.returncode, process.stdout + process.stderr, results, folders[-1] if folders else report_dir)


def until(what: str, probe, timeout: float = 90.0, interval: float = 0.1):
    """The first true answer of `probe`, polled until `timeout`; an assertion error naming `what` after."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")
