"""summary.md and $GITHUB_STEP_SUMMARY on a real run: `--manifests` on a small repository whose one
violating object is a Role in the second document of its file: summary.md lists that one failure
with its file and line, and two runs into one step summary file leave both summaries there."""

from __future__ import annotations

import os
import subprocess

from suite_runs import run_suite

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: ci-demo
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
  namespace: ci-demo
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: v1
kind: ResourceQuota
metadata:
  name: pods
  namespace: ci-demo
spec:
  hard: {pods: "10"}
---
apiVersion: v1
kind: LimitRange
metadata:
  name: containers
  namespace: ci-demo
spec:
  limits:
    - type: Container
      default: {cpu: 100m, memory: 64Mi}
      max: {cpu: "1", memory: 256Mi}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: ci-demo
automountServiceAccountToken: false
"""
# The violating Role is the second document, so its line is not the file's first.
RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: ci-demo
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: everything
  namespace: ci-demo
rules:
  - apiGroups: [apps]
    resources: [deployments]
    verbs: ["*"]
"""
ROLE_LINE = 11


def test_summary_names_the_violation_by_file_and_line_and_is_appended_to_the_step_summary(tmp_path):
    repo = tmp_path / "repo"
    (repo / "team").mkdir(parents=True)
    (repo / "namespace.yaml").write_text(NAMESPACE)
    (repo / "team" / "rbac.yaml").write_text(RBAC)
    step = tmp_path / "step-summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(step)}

    first = run_suite(tmp_path / "first", f"--manifests={repo}", env=env)
    assert first.returncode == 1, first.output[-3000:]
    folder = first.run_folder
    summary = (folder / "summary.md").read_text()
    assert summary.startswith("## kubeproof: FAIL\n")
    failures = summary.split("### Failures: 1\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(failures) == 1, summary
    assert failures[0].startswith(f"- `team/rbac.yaml:{ROLE_LINE}` `Role/ci-demo/everything: rules[0].verbs is ['*']")
    assert failures[0].endswith("(test `test_role_grants_no_wildcards` in `tests_cluster/test_rbac.py`)")
    assert [r["object"]["name"] for r in first.records("failed")] == ["everything"]
    # The verdict and counts are those of results.json, and the file is covered by SHA256SUMS.
    counts = first.results["counts"]
    assert f"Exit status 1. {counts['tests']} results: {counts['passed']} passed, {counts['failed']} failed" in summary
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0 and "summary.md: OK" in check.stdout, check.stdout + check.stderr

    second = run_suite(tmp_path / "second", f"--manifests={repo}", env=env)
    assert second.returncode == 1, second.output[-3000:]
    both = step.read_text()
    assert both == summary + "\n" + (second.run_folder / "summary.md").read_text()
    assert both.count("## kubeproof: FAIL") == 2
    assert both.count(f"`team/rbac.yaml:{ROLE_LINE}`") == 2
