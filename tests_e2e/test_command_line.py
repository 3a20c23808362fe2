"""How the command line fails: configuration errors exit 2 naming the file, line or option; an
unreachable API server exits 3 naming the endpoint; nothing is left in the report folder."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml
from suite_runs import run_suite


def _kubeconfig(path: Path, server: str, context: str = "prod") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
    }))
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_nothing_written(report_dir: Path) -> None:
    assert not report_dir.exists() or list(report_dir.iterdir()) == []


def test_unknown_context_lists_the_contexts_and_exits_2(tmp_path):
    kubeconfig = _kubeconfig(tmp_path / "config", "https://127.0.0.1:1")
    run = run_suite(tmp_path / "reports", "--cluster=nope", f"--kubeconfig={kubeconfig}")
    assert run.returncode == 2, run.output
    assert "--cluster nope" in run.output and "contexts there: prod" in run.output
    _assert_nothing_written(tmp_path / "reports")


def test_unreachable_api_server_exits_3_naming_the_endpoint(tmp_path):
    port = _closed_port()
    kubeconfig = _kubeconfig(tmp_path / "config", f"https://127.0.0.1:{port}")
    run = run_suite(tmp_path / "reports", "--cluster=prod", f"--kubeconfig={kubeconfig}")
    assert run.returncode == 3, run.output
    assert f"https://127.0.0.1:{port}" in run.output
    _assert_nothing_written(tmp_path / "reports")


def test_malformed_kubeconfig_names_file_and_line(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nclusters:\n  - name: [unclosed\n")
    run = run_suite(tmp_path / "reports", "--cluster=prod", f"--kubeconfig={kubeconfig}")
    assert run.returncode == 2, run.output
    assert f"{kubeconfig}:" in run.output
    assert "Traceback" not in run.output


def test_missing_kubeconfig_and_no_cluster_is_a_clear_error(tmp_path):
    run = run_suite(tmp_path / "reports", f"--kubeconfig={tmp_path / 'absent'}")
    assert run.returncode == 2, run.output
    assert "does not exist" in run.output and "--cluster=local" in run.output


def test_bad_baseline_names_file_line_and_field(tmp_path):
    kubeconfig = _kubeconfig(tmp_path / "config", f"https://127.0.0.1:{_closed_port()}")
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("pod_security:\n  default: restricted\n  namespaces:\n    team-a: strictest\n")
    run = run_suite(tmp_path / "reports", "--cluster=prod", f"--kubeconfig={kubeconfig}", f"--baseline={baseline}")
    assert run.returncode == 2, run.output
    assert f"{baseline}:4" in run.output and "pod_security.namespaces.team-a" in run.output
    _assert_nothing_written(tmp_path / "reports")
