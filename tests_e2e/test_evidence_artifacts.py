"""The evidence an auditor keeps: a run folder whose checksums verify, whose HTML names the cluster,
identity, baseline and suite commit, and whose HTML, results.json and JUnit agree on every count;
waivers that are reported, expire and go stale; and the ratchet for CI on config repos."""

from __future__ import annotations

import datetime
import html
import json
import re
import subprocess
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

import pytest
from suite_runs import run_suite

RBAC = "/apis/rbac.authorization.k8s.io/v1"
PYTEST_HTML_OUTCOME = {"Passed": "passed", "Failed": "failed", "Skipped": "skipped", "Expected failures": "xfailed",
                       "XFailed": "xfailed", "Error": "error"}


def _html_outcomes(page: str) -> Counter:
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    tests = json.loads(html.unescape(blob.group(1)))["tests"]
    counts = Counter()
    for results in tests.values():
        # A test with an error in setup or teardown has more than one row; the worst one counts.
        outcomes = {r["result"].lower() for r in results}
        for outcome in ("error", "failed", "xfailed", "skipped", "passed"):
            if outcome in outcomes or (outcome == "xfailed" and "expected failure" in outcomes):
                counts[outcome] += 1
                break
    return counts


def _junit_counts(path: Path) -> dict:
    suite = ElementTree.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    cases = suite.findall("testcase")
    xfailed = sum(1 for c in cases for s in c.findall("skipped") if s.get("type") == "pytest.xfail")
    return {"tests": int(suite.get("tests")), "failed": int(suite.get("failures")), "error": int(suite.get("errors")),
            "skipped": int(suite.get("skipped")) - xfailed, "xfailed": xfailed}


def _baseline(tmp_path: Path, waivers: str = "") -> Path:
    text = Path(__file__).resolve().parents[1].joinpath("baselines/default.yaml").read_text()
    path = tmp_path / "baseline.yaml"
    path.write_text(text + (f"waivers:\n{waivers}" if waivers else ""))
    return path


def test_run_folder_verifies_and_every_artifact_counts_the_same(insecure_cluster, tmp_path):
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={insecure_cluster.workdir}")
    assert run.returncode == 1, run.output[-2000:]
    folder = run.run_folder
    assert {p.name for p in folder.iterdir()} == {f"{folder.name}.html", "results.json", "junit.xml", "results.sarif", "summary.md", "assessment-results.json", "SHA256SUMS"}
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    page = next(folder.glob("*.html")).read_text()
    environment = run.results["environment"]
    for key in ("cluster fingerprint", "identity", "baseline sha256", "kubeproof commit", "started (UTC)", "finished (UTC)"):
        assert environment[key] and "unknown" not in environment[key], key
    assert environment["cluster fingerprint"].startswith("kube-system uid ")
    assert "kubeproof-suite" in environment["identity"]
    for key in ("cluster fingerprint", "identity", "baseline sha256", "kubeproof commit"):
        assert html.escape(environment[key]) in page or environment[key] in page, key
    counts = run.results["counts"]
    assert sum(v for k, v in counts.items() if k != "tests") == counts["tests"] == len(run.records())
    assert _junit_counts(folder / "junit.xml") == {k: v for k, v in counts.items() if k != "passed"}
    html_counts = _html_outcomes(page)
    assert {k: html_counts.get(k, 0) for k in ("passed", "failed", "error", "skipped", "xfailed")} == \
        {k: counts[k] for k in ("passed", "failed", "error", "skipped", "xfailed")}
    sarif = json.loads((folder / "results.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert len([r for r in sarif["runs"][0]["results"] if r["level"] == "error"]) == \
        sum(len(r["findings"]) for r in run.records("failed"))


def test_waivers_are_reported_expire_and_go_stale(insecure_cluster, tmp_path):
    tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
    waivers = (
        "  - control: \"5.1.3\"\n    kind: ClusterRole\n    name: insecure-everything\n"
        "    justification: vendor operator needs it until v2\n    owner: platform@example.com\n"
        f"    expires: {tomorrow}\n"
        "  - control: \"5.1.1\"\n    kind: ClusterRoleBinding\n    name: insecure-operator-admin\n"
        "    justification: break-glass account\n    owner: sre@example.com\n    expires: 2020-01-01\n"
        "  - control: \"5.3.2\"\n    kind: Namespace\n    name: no-such-namespace\n"
        f"    justification: old team\n    owner: sre@example.com\n    expires: {tomorrow}\n"
    )
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={insecure_cluster.workdir}",
                    f"--baseline={_baseline(tmp_path, waivers)}")
    assert run.returncode == 1
    by_key = {(r["test"], r["object"]["name"] if r["object"] else ""): r for r in run.records()}
    waived = by_key[("test_role_grants_no_wildcards", "insecure-everything")]
    assert waived["status"] == "waived" and "vendor operator needs it" in waived["reason"] and waived["findings"]
    expired = by_key[("test_cluster_admin_is_bound_only_to_allowed_subjects", "insecure-operator-admin")]
    assert expired["status"] == "failed" and "expired on 2020-01-01" in expired["reason"]
    waiver_tests = [r for r in run.records() if r["test"] == "test_waiver_is_current_and_in_use"]
    assert sorted(r["status"] for r in waiver_tests) == ["failed", "passed", "skipped"]
    assert any("stale" in r["reason"] for r in waiver_tests if r["status"] == "skipped")
    assert run.results["waivers"]["stale"] and "no-such-namespace" in run.results["waivers"]["stale"][0]
    assert "stale waiver" in run.output


def test_a_waiver_covers_not_verified_only_when_it_says_so(embedded_cluster, tmp_path):
    # Without etcd access the stored-secrets check cannot be verified; the waiver must opt in.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(embedded_cluster.kubeconfig.read_text().replace("local", "no-etcd"))
    tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
    silent = f"  - control: \"1.2.28\"\n    justification: managed etcd\n    owner: sre@example.com\n    expires: {tomorrow}\n"
    run = run_suite(tmp_path / "r1", "--cluster=no-etcd", f"--kubeconfig={kubeconfig}", f"--baseline={_baseline(tmp_path, silent)}",
                    "-k", "stored_secret or waiver")
    stored = next(r for r in run.records() if r["test"] == "test_every_stored_secret_is_encrypted")
    assert stored["status"] == "not_verified" and "not_verified: true" in stored["reason"]
    opted_in = silent + "    not_verified: true\n"
    run = run_suite(tmp_path / "r2", "--cluster=no-etcd", f"--kubeconfig={kubeconfig}", f"--baseline={_baseline(tmp_path, opted_in)}",
                    "-k", "stored_secret or waiver")
    stored = next(r for r in run.records() if r["test"] == "test_every_stored_secret_is_encrypted")
    assert stored["status"] == "waived" and "NOT VERIFIED" in stored["reason"]


@pytest.fixture
def ratchet_role(insecure_cluster):
    yield f"{RBAC}/clusterroles/ratchet-new-wildcard"
    insecure_cluster.api_request("DELETE", f"{RBAC}/clusterroles/ratchet-new-wildcard")


def test_ratchet_fails_only_on_new_findings_and_reports_fixed_ones(insecure_cluster, tmp_path, ratchet_role):
    baseline = _baseline(tmp_path)
    args = ["--cluster=local", f"--local-attach={insecure_cluster.workdir}", f"--baseline={baseline}"]
    recorded = run_suite(tmp_path / "r1", *args, "--update-baseline")
    assert recorded.returncode == 1 and (tmp_path / "baseline.accepted.yaml").exists()
    unchanged = run_suite(tmp_path / "r2", *args, "--fail-on=new")
    assert unchanged.returncode == 0, unchanged.output[-2000:]
    assert unchanged.records("failed") == [] and unchanged.records("accepted")
    status, _ = insecure_cluster.api_request("POST", f"{RBAC}/clusterroles", {
        "metadata": {"name": "ratchet-new-wildcard"}, "rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]})
    assert status == 201
    one_new = run_suite(tmp_path / "r3", *args, "--fail-on=new")
    assert one_new.returncode == 1
    assert one_new.outcome_keys("failed") == {("test_role_grants_no_wildcards", "ClusterRole/ratchet-new-wildcard")}
    # A recorded finding that is gone is reported as fixed.
    accepted = (tmp_path / "baseline.accepted.yaml").read_text()
    (tmp_path / "baseline.accepted.yaml").write_text(accepted + "- fingerprint: \"0000000000000000\"\n  test: test_role_grants_no_wildcards\n"
                                                     "  object: ClusterRole/long-gone\n  path: rules[0].verbs\n")
    fixed = run_suite(tmp_path / "r4", *args, "--fail-on=new", "-k", "not ratchet")
    assert [e["object"] for e in fixed.results["ratchet"]["fixed"]] == ["ClusterRole/long-gone"]
    assert "fixed since accepted" in fixed.output
