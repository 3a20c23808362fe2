"""Data the suite cannot read is never a pass: an identity without RBAC rights audits the hardened
cluster, and everything but the unauthenticated probes comes out "not verified"."""

from __future__ import annotations

from suite_runs import run_suite

PROBE = "test_unauthenticated_request_is_refused"


def test_unreadable_kinds_are_not_verified_never_passed(hardened_cluster, tmp_path):
    kubeconfig = hardened_cluster.client_kubeconfig("auditor-without-rights")
    run = run_suite(tmp_path / "reports", "--cluster=auditor-without-rights@embedded", f"--kubeconfig={kubeconfig}")
    assert run.returncode == 0, run.output[-3000:]  # not strict: not verified is counted, not failed
    passed = run.records("passed")
    # What any authenticated caller may read still passes: the anonymous probes and /version.
    assert passed and {r["test"] for r in passed} == {PROBE, "test_api_server_version_is_supported"}
    unreadable = {kind for kind, read in run.results["snapshot"].items() if not read["readable"]}
    assert unreadable and all(not set(r["reads"]) & unreadable for r in passed)
    assert run.records("failed") == [] and run.records("error") == []
    not_verified = run.records("not_verified")
    practices = {r["practice"] for r in not_verified}
    assert {"etcd_encryption", "anonymous_access", "rbac", "pod_security", "network_policy"} <= practices
    reasons = " ".join(r["reason"] for r in not_verified)
    assert "403" in reasons and "etcd" in reasons
    assert "not verified" in run.output


def test_strict_turns_not_verified_into_failure(hardened_cluster, tmp_path):
    kubeconfig = hardened_cluster.client_kubeconfig("auditor-without-rights")
    run = run_suite(tmp_path / "reports", "--cluster=auditor-without-rights@embedded",
                    f"--kubeconfig={kubeconfig}", "--strict")
    assert run.returncode == 1, run.output[-3000:]
    assert "NOT VERIFIED (--strict)" in run.output
