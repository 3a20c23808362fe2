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


YAML_11_TRAPS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: matchers.traps.kubeproof.test
spec:
  group: traps.kubeproof.test
  scope: Namespaced
  names: {plural: matchers, singular: matcher, kind: Matcher}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              matchType: {type: string, enum: [=, "!=", =~, "!~"]}
              window: {type: string}
---
apiVersion: traps.kubeproof.test/v1
kind: Matcher
metadata:
  name: equals
  namespace: default
spec:
  matchType: =
  window: 1:30
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: schedule
  namespace: default
data:
  window: 1:30
  enabled: "on"
"""


def test_yaml_that_kubectl_accepts_is_applied_as_kubernetes_reads_it(tmp_path):
    # PyYAML's YAML 1.1 rules refuse a bare `=` and read `1:30` as the integer 90; Kubernetes does
    # neither, and the object must be the one `kubectl apply` would store.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "traps.yaml").write_text(YAML_11_TRAPS)
    run = run_suite(tmp_path / "reports", f"--manifests={repo}")
    assert run.returncode in (0, 1), run.output[-3000:]
    accepted = {r["object"]["name"]: r["status"] for r in run.records()
                if r["test"] == "test_manifest_is_accepted_by_the_api_server"}
    assert accepted == {"matchers.traps.kubeproof.test": "passed", "equals": "passed", "schedule": "passed"}, accepted


def _web_pod_security_paths(run) -> set[str]:
    return {finding["path"] for r in run.records("failed")
            if r["test"] == "test_workload_meets_the_required_pod_security_level" and r["object"]["name"] == "shop-web"
            for finding in r["findings"]}


def test_helm_chart_findings_point_at_template_lines_and_values_change_them(tmp_path):
    chart = ROOT / "tests_unit" / "data" / "helm" / "shop"
    repo = tmp_path / "repo"
    shutil.copytree(chart, repo / "shop")
    workload = ("test_workload_meets_the_required_pod_security_level", "Deployment", "shop-web",
                "shop/templates/app.yaml:2")
    run_as_non_root = "spec.template.spec.containers[0].securityContext.runAsNonRoot"

    defaults = run_suite(tmp_path / "defaults", f"--manifests={repo}")
    assert defaults.returncode == 1, defaults.output[-3000:]
    failed = {(r["test"], r["object"]["kind"], r["object"]["name"], r["object"].get("source"))
              for r in defaults.records("failed")}
    assert workload in failed
    assert run_as_non_root in _web_pod_security_paths(defaults)
    assert '"uri": "shop/templates/app.yaml"' in (defaults.run_folder / "results.sarif").read_text()
    assert "shop/templates/app.yaml:2" in (defaults.run_folder / "summary.md").read_text()

    # The chart's `hardened` value sets runAsNonRoot and friends, but no seccomp profile.
    hardened = run_suite(tmp_path / "hardened", f"--manifests={repo}",
                         f"--helm-values={chart.parent / 'hardened.yaml'}")
    assert hardened.returncode == 1, hardened.output[-3000:]
    paths = _web_pod_security_paths(hardened)
    assert run_as_non_root not in paths
    assert "spec.template.spec.containers[0].securityContext.seccompProfile.type" in paths


def test_helm_values_errors_exit_2_naming_the_file(tmp_path):
    chart = ROOT / "tests_unit" / "data" / "helm" / "shop"
    repo = tmp_path / "repo"
    shutil.copytree(chart, repo / "shop")
    missing = tmp_path / "absent-values.yaml"
    for args, named in [
        ((f"--manifests={repo}", f"--helm-values={missing}"), str(missing)),
        ((f"--helm-values={chart.parent / 'hardened.yaml'}",), "--helm-values"),
        ((f"--manifests={EXAMPLE}", f"--helm-values={chart.parent / 'hardened.yaml'}"), "no Helm chart"),
    ]:
        run = run_suite(tmp_path / "reports", *args)
        assert run.returncode == 2 and named in run.output and "Traceback" not in run.output, run.output[-2000:]
        assert not (tmp_path / "reports").exists() or list((tmp_path / "reports").iterdir()) == []


def test_a_refused_secret_is_a_finding_whose_message_never_quotes_its_value(tmp_path):
    # Server-side apply's type errors quote the value they refused; for a Secret that is the secret.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\n"
                                      "stringData:\n  password: 84629173\n")
    run = run_suite(tmp_path / "reports", f"--manifests={repo}")
    assert run.returncode == 1, run.output[-3000:]
    refused = [r for r in run.records("failed") if r["test"] == "test_manifest_is_accepted_by_the_api_server"]
    assert [r["object"]["name"] for r in refused] == ["db"]
    for artifact in run.run_folder.iterdir():
        assert "84629173" not in artifact.read_text(errors="replace"), artifact.name
    assert "84629173" not in run.output
