"""The suite against the two profiles: hardened proves every practice, insecure fails each one."""

from __future__ import annotations

from suite_runs import run_suite

from kubeproof.practices import PRACTICES

HEADLINE = {"etcd_encryption", "anonymous_access", "rbac", "pod_security", "network_policy"}

OBJECT_TESTS = {
    "test_namespace_enforces_required_level": "Namespace",
    "test_namespace_denies_traffic_by_default": "Namespace",
    "test_role_grants_no_wildcards": ("Role", "ClusterRole"),
    "test_binding_grants_nothing_to_unauthenticated_users": ("RoleBinding", "ClusterRoleBinding"),
}


def test_hardened_cluster_passes_every_practice(hardened_cluster, tmp_path):
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={hardened_cluster.workdir}")
    assert run.returncode == 0, run.output[-3000:]
    assert run.records("failed") == [] and run.records("error") == []
    assert run.records("not_verified") == [], run.records("not_verified")
    passed_practices = {r["practice"] for r in run.records("passed")}
    assert HEADLINE <= passed_practices
    html = list(run.run_folder.glob("local-*.html"))
    assert run.run_folder.name.startswith("local-") and len(html) == 1
    assert not list(run.run_folder.parent.glob(".*partial"))
    page = html[0].read_text()
    for practice in HEADLINE:
        assert PRACTICES[practice] in page
    # One parametrised case per object: every namespace and role the cluster holds has its own test.
    namespaces = {r["object"]["name"] for r in run.records() if r["test"] == "test_namespace_denies_traffic_by_default"}
    status, listed = hardened_cluster.api_request("GET", "/api/v1/namespaces")
    assert namespaces == {n["metadata"]["name"] for n in listed["items"]}
    status, roles = hardened_cluster.api_request("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles")
    role_cases = {r["object"]["name"] for r in run.records() if r["test"] == "test_role_grants_no_wildcards"}
    assert {r["metadata"]["name"] for r in roles["items"]} <= role_cases


def test_insecure_cluster_fails_each_practice_naming_object_control_and_value(insecure_cluster, tmp_path):
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={insecure_cluster.workdir}")
    assert run.returncode == 1, run.output[-3000:]
    failed = run.records("failed")
    assert HEADLINE <= {r["practice"] for r in failed}
    for record in failed:
        assert record["findings"], record
        # Every failing test is traceable to a framework, and each finding to the test's CIS ids.
        assert record["controls"]["cis"] or record["controls"]["nsa"], record["test"]
        for finding in record["findings"]:
            assert finding["object"]["name"] and finding["observed"] not in (None, "")
            assert set(finding["controls"]) <= set(record["controls"]["cis"])
    failures = run.outcome_keys("failed")
    assert ("test_role_grants_no_wildcards", "ClusterRole/insecure-everything") in failures
    assert ("test_cluster_admin_is_bound_only_to_allowed_subjects", "ClusterRoleBinding/insecure-operator-admin") in failures
    assert ("test_binding_grants_nothing_to_unauthenticated_users", "ClusterRoleBinding/insecure-anonymous-view") in failures
    assert ("test_every_stored_secret_is_encrypted", "") in failures
    assert "insecure-everything" in run.output and "5.1.3" in next(run.run_folder.glob("*.html")).read_text()
