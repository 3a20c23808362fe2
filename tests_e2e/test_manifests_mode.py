"""--manifests: CI on a configuration repository. The example repository's deliberate violations are
reported with file and line and the run exits 1; a YAML syntax error exits 2 naming file and line."""

from __future__ import annotations

import shutil

from suite_runs import ROOT, run_suite

EXAMPLE = ROOT / "examples" / "config-repo"


def test_config_repo_violations_are_reported_with_file_and_line(tmp_path):
    run = run_suite(tmp_path / "reports", f"--manifests={EXAMPLE}")
    assert run.returncode == 1, run.output[-3000:]
    failed = {(r["test"], r["object"]["kind"], r["object"]["name"], r["object"].get("source")) for r in run.records("failed")}
    for expected in [
        ("test_manifest_is_accepted_by_the_api_server", "Service", "web", "team-b/broken.yaml:1"),
        ("test_namespace_enforces_required_level", "Namespace", "team-b", "namespaces.yaml:8"),
        ("test_namespace_denies_traffic_by_default", "Namespace", "team-b", "namespaces.yaml:8"),
        ("test_role_grants_no_wildcards", "Role", "deployer", "team-b/rbac.yaml:1"),
    ]:
        assert expected in failed
    # The compliant neighbour and the Kustomize-rendered ConfigMap were applied and pass.
    passed = {(r["test"], r["object"]["name"]) for r in run.records("passed") if r["object"]}
    assert ("test_namespace_denies_traffic_by_default", "team-a") in passed
    assert ("test_role_grants_no_wildcards", "api-reader") in passed
    applied = [r for r in run.records() if r["test"] == "test_manifest_is_accepted_by_the_api_server"]
    assert any(r["object"]["source"].startswith("shared (kustomize)") and r["status"] == "passed" for r in applied)
    sarif = (run.run_folder / "results.sarif").read_text()
    assert '"uri": "team-b/rbac.yaml"' in sarif


def test_yaml_syntax_error_exits_2_naming_file_and_line(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    (repo / "team-a" / "bad.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n")
    run = run_suite(tmp_path / "reports", f"--manifests={repo}")
    assert run.returncode == 2, run.output[-2000:]
    assert f"{repo / 'team-a' / 'bad.yaml'}:" in run.output
    assert "Traceback" not in run.output
    assert not (tmp_path / "reports").exists() or list((tmp_path / "reports").iterdir()) == []


def test_missing_folder_is_a_usage_error(tmp_path):
    run = run_suite(tmp_path / "reports", f"--manifests={tmp_path / 'absent'}")
    assert run.returncode == 2 and "not a folder" in run.output
