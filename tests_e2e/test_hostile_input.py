"""Malformed and hostile input: every case gets a clear error (exit 2 naming the file, line or
option; pytest's own 4 for options its parser refuses) or a correct verdict, never a traceback or a
pass, and nothing is left in the report folder."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from suite_runs import ROOT, run_suite

from kubeproof.controlplane import EmbeddedCluster

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kubeconfig(tmp: Path, mutate=None, name: str = "config") -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{_port()}", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
    }
    if mutate:
        mutate(config)
    path = tmp / name
    path.write_text(yaml.safe_dump(config))
    return path


def _text(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _baseline(tmp: Path, content: str | bytes) -> list[str]:
    return ["--cluster=prod", f"--kubeconfig={_kubeconfig(tmp)}", f"--baseline={_text(tmp, 'baseline.yaml', content)}"]


def _folder(tmp: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp / "repo"
    folder.mkdir()
    for name, content in files.items():
        _text(folder, name, content)
    return folder


def _raw_kubeconfig(tmp: Path, content) -> list[str]:
    return ["--cluster=prod", f"--kubeconfig={_text(tmp, 'k', content)}"]


def _manifests(tmp: Path, files: dict) -> list[str]:
    return [f"--manifests={_folder(tmp, files)}"]


WAIVER = "waivers:\n  - control: '5.1.3'\n    justification: j\n    owner: o\n"
CASES = {
    # kubeconfig
    "kubeconfig-empty": (lambda t: _raw_kubeconfig(t, ""), 2, "k"),
    "kubeconfig-binary": (lambda t: _raw_kubeconfig(t, bytes(range(256))), 2, "k"),
    "kubeconfig-a-list": (lambda t: _raw_kubeconfig(t, "- a\n- b\n"), 2, "k"),
    "kubeconfig-yaml-error": (lambda t: _raw_kubeconfig(t, "a: [b\n"), 2, "k:"),
    "kubeconfig-context-without-cluster": (lambda t: ["--cluster=prod", f"--kubeconfig={_kubeconfig(t, lambda c: c.update(clusters=[]))}"], 2, "prod"),
    "kubeconfig-missing-client-cert": (lambda t: ["--cluster=prod", f"--kubeconfig={_kubeconfig(t, lambda c: c['users'][0].update(user={'client-certificate': '/nonexistent/cert.pem', 'client-key': '/nonexistent/key.pem'}))}"], 2, "/nonexistent/"),
    "kubeconfig-server-not-a-url": (lambda t: ["--cluster=prod", f"--kubeconfig={_kubeconfig(t, lambda c: c['clusters'][0]['cluster'].update(server='not a url'))}"], (2, 3), "not a url"),
    "kubeconfig-is-a-folder": (lambda t: ["--cluster=prod", f"--kubeconfig={t}"], 2, "kubeconfig"),
    "kubeconfig-unknown-context": (lambda t: ["--cluster=staging", f"--kubeconfig={_kubeconfig(t)}"], 2, "contexts there: prod"),
    "kubeconfig-missing-no-cluster": (lambda t: [f"--kubeconfig={t / 'absent'}"], 2, "does not exist"),
    "kubeconfig-unreachable": (lambda t: ["--cluster=prod", f"--kubeconfig={_kubeconfig(t)}"], 3, "https://127.0.0.1:"),
    # baseline
    "baseline-yaml-error": (lambda t: _baseline(t, "pod_security:\n  default: [restricted\n"), 2, "baseline.yaml:"),
    "baseline-a-list": (lambda t: _baseline(t, "- restricted\n"), 2, "baseline.yaml:1"),
    "baseline-unknown-field": (lambda t: _baseline(t, "pod_security:\n  defualt: restricted\n"), 2, "baseline.yaml:2"),
    "baseline-bad-level": (lambda t: _baseline(t, "pod_security:\n  default: strict\n"), 2, "pod_security.default"),
    "baseline-waiver-without-expiry": (lambda t: _baseline(t, WAIVER), 2, "expires"),
    "baseline-waiver-bad-date": (lambda t: _baseline(t, WAIVER + "    expires: next-week\n"), 2, "baseline.yaml:5"),
    "baseline-binary": (lambda t: _baseline(t, b"\xff\xfe\x00garbage"), 2, "UTF-8"),
    "baseline-missing": (lambda t: ["--cluster=prod", f"--kubeconfig={_kubeconfig(t)}", f"--baseline={t / 'absent.yaml'}"], 2, "absent.yaml"),
    "baseline-duplicate-key": (lambda t: _baseline(t, "rbac:\n  cluster_admin_subjects: []\n  cluster_admin_subjects: []\n"), 2, "given twice"),
    "baseline-bad-reference": (lambda t: _baseline(t, "rbac:\n  cluster_admin_subjects: [Robot/r2d2]\n"), 2, "baseline.yaml:2"),
    "baseline-huge-key": (lambda t: _baseline(t, "x" * 200_000 + ": 1\n"), 2, "not valid YAML"),
    "baseline-many-unknown-fields": (lambda t: _baseline(t, "".join(f"field{i}: 1\n" for i in range(20_000))), 2, "unknown field 'field0'"),
    # command-line options
    "option-timeout-zero": (lambda t: ["--cluster=prod", f"--kubeconfig={_kubeconfig(t)}", "--request-timeout=0"], 2, "--request-timeout"),
    "option-timeout-not-a-number": (lambda t: ["--request-timeout=soon"], 4, "--request-timeout"),
    "option-unknown-profile": (lambda t: ["--cluster=local", "--local-profile=paranoid"], 4, "--local-profile"),
    "option-unknown-fail-on": (lambda t: ["--fail-on=some"], 4, "--fail-on"),
    "option-manifests-and-cluster": (lambda t: ["--cluster=prod", f"--manifests={t}"], 2, "--manifests"),
    "option-etcd-cert-without-endpoint": (lambda t: ["--cluster=prod", f"--kubeconfig={_kubeconfig(t)}", f"--etcd-cert={_kubeconfig(t)}"], 2, "--etcd-endpoint"),
    "option-etcd-ca-missing": (lambda t: ["--cluster=prod", f"--kubeconfig={_kubeconfig(t)}", "--etcd-endpoint=https://127.0.0.1:1", f"--etcd-ca={t / 'absent.pem'}"], 2, "--etcd-ca"),
    "option-attach-nowhere": (lambda t: ["--cluster=local", f"--local-attach={t / 'absent'}"], 2, "state.json"),
    # manifests
    "manifests-yaml-error": (lambda t: _manifests(t, {"a.yaml": "kind: ConfigMap\nmetadata: {name: [x\n"}), 2, "a.yaml:"),
    "manifests-not-utf8": (lambda t: _manifests(t, {"a.yaml": b"kind: \xff\xfe"}), 2, "a.yaml"),
    "manifests-empty-folder": (lambda t: _manifests(t, {"notes.txt": "nothing here"}), 2, "no YAML"),
    "manifests-not-a-folder": (lambda t: [f"--manifests={_text(t, 'file.yaml', 'a: 1')}"], 2, "not a folder"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_gets_a_clear_error_and_writes_nothing(case, tmp_path):
    build, expected, mentioned = CASES[case]
    run = run_suite(tmp_path / "reports", *build(tmp_path), timeout=120)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert run.returncode in expected, run.output[-1500:]
    assert "Traceback" not in run.output and "INTERNALERROR" not in run.output, run.output[-3000:]
    assert mentioned in run.output, run.output[-1500:]
    assert not (tmp_path / "reports").exists() or list((tmp_path / "reports").iterdir()) == []


def test_credential_plugin_that_is_missing_is_a_clear_error(embedded_cluster, tmp_path):
    def exec_user(config):
        config["clusters"][0]["cluster"]["server"] = embedded_cluster.server
        config["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                               "command": "/nonexistent/credential-helper", "interactiveMode": "Never"}}

    run = run_suite(tmp_path / "reports", "--cluster=prod", f"--kubeconfig={_kubeconfig(tmp_path, exec_user)}")
    assert run.returncode == 2, run.output[-2000:]
    assert "credential" in run.output and "Traceback" not in run.output
    assert list((tmp_path / "reports").iterdir()) == []


def test_accepted_findings_file_that_is_not_a_record_is_a_clear_error(embedded_cluster, tmp_path):
    baseline = _text(tmp_path, "b.yaml", (ROOT / "baselines" / "default.yaml").read_text())
    _text(tmp_path, "b.accepted.yaml", "accepted_findings: {not: a list}\n")
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={embedded_cluster.workdir}",
                    f"--baseline={baseline}", "--fail-on=new")
    assert run.returncode == 2 and "b.accepted.yaml" in run.output and "Traceback" not in run.output
    assert list((tmp_path / "reports").iterdir()) == []


@pytest.fixture(scope="module")
def odd_cluster():
    with EmbeddedCluster(profile="hardened") as cluster:
        rules = [{"apiGroups": [""], "resources": [f"r{i}"], "verbs": ["get"]} for i in range(10_000)]
        rules[9_998]["verbs"] = ["*"]
        for name, body_rules in (("ten-thousand-rules", rules),
                                 ("rôle-ünïcödé-🔥-\u202e-ʇxǝʇ", [{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}]),
                                 ("只读-角色-" + "x" * 200, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])):
            status, answer = cluster.api_request("POST", f"{RBAC}/clusterroles", {"metadata": {"name": name}, "rules": body_rules})
            assert status == 201, answer.get("message")
        status, _ = cluster.api_request("PATCH", "/api/v1/namespaces/default", {"metadata": {"annotations": {
            "note": "z" * 200_000, "emoji": "🔥" * 1000}}})
        assert status == 200
        yield cluster


def test_huge_and_unicode_objects_get_correct_verdicts(odd_cluster, tmp_path):
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={odd_cluster.workdir}", "-k", "wildcard or default_deny")
    assert run.returncode == 1 and "Traceback" not in run.output, run.output[-2000:]
    verdicts = {r["object"]["name"]: r for r in run.records() if r["test"] == "test_role_grants_no_wildcards"}
    big = verdicts["ten-thousand-rules"]
    assert big["status"] == "failed" and [f["path"] for f in big["findings"]] == ["rules[9998].verbs"]
    odd = verdicts["rôle-ünïcödé-🔥-\u202e-ʇxǝʇ"]
    assert odd["status"] == "failed" and odd["findings"][0]["path"] == "rules[0].apiGroups"
    assert verdicts["只读-角色-" + "x" * 200]["status"] == "passed"
    results = json.loads((run.run_folder / "results.json").read_text())
    assert "rôle-ünïcödé-🔥" in json.dumps(results, ensure_ascii=False)
