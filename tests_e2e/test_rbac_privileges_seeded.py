"""The RBAC privilege tests (tests_cluster/test_rbac_privileges.py) run as a user runs them, against
a hardened embedded cluster seeded with one binding per CIS control that hands over a dangerous
permission, beside bindings that only look dangerous. The suite must fail exactly the seeded
bindings, each confirmed by a SubjectAccessReview in the evidence, and pass the rest."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from suite_runs import ROOT, SuiteRun, object_name

from kubeproof.controlplane import EmbeddedCluster

RBAC = "/apis/rbac.authorization.k8s.io/v1"
GROUP = "rbac.authorization.k8s.io"
NS = "e2e-rbac"
SUITE_FILE = "tests_cluster/test_rbac_privileges.py"
BOOTSTRAP = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def rule(verbs, resources, groups=("",), names=()):
    out = {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}
    return {**out, "resourceNames": list(names)} if names else out


def user(name):
    return {"kind": "User", "name": name, "apiGroup": GROUP}


def group(name):
    return {"kind": "Group", "name": name, "apiGroup": GROUP}


def account(name, namespace=None):
    return {"kind": "ServiceAccount", "name": name, **({"namespace": namespace} if namespace else {})}


def clusterrole(name, *rules, labels=None, selectors=None):
    body = {"metadata": {"name": name, "labels": labels or {}}, "rules": list(rules)}
    if selectors:
        body["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return f"{RBAC}/clusterroles", body


def role(name, *rules):
    return f"{RBAC}/namespaces/{NS}/roles", {"metadata": {"name": name}, "rules": list(rules)}


def crb(name, role_name, *subjects, labels=None):
    return f"{RBAC}/clusterrolebindings", {
        "metadata": {"name": name, "labels": labels or {}}, "subjects": list(subjects),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role_name}}


def rb(name, kind, role_name, *subjects):
    return f"{RBAC}/namespaces/{NS}/rolebindings", {
        "metadata": {"name": name}, "subjects": list(subjects),
        "roleRef": {"apiGroup": GROUP, "kind": kind, "name": role_name}}


SEEDS = [
    # Roles.
    role("secret-reader", rule(["get"], ["secrets"])),
    role("configmap-reader", rule(["get", "list"], ["configmaps"])),
    role("token-minter", rule(["create"], ["serviceaccounts/token"])),
    role("pod-exec", rule(["create"], ["pods/exec"]), rule(["get"], ["pods"])),
    clusterrole("e2e-deployer", rule(["create", "update"], ["deployments"], groups=["apps"])),
    clusterrole("e2e-impersonator", rule(["impersonate"], ["users"])),
    clusterrole("e2e-pv-maker", rule(["create"], ["persistentvolumes"])),
    clusterrole("e2e-node-proxy", rule(["get"], ["nodes/proxy"])),
    clusterrole("e2e-csr-approver", rule(["update"], ["certificatesigningrequests/approval"], groups=["certificates.k8s.io"]),
                rule(["approve"], ["signers"], groups=["certificates.k8s.io"], names=["kubernetes.io/kube-apiserver-client"])),
    clusterrole("e2e-webhook-editor", rule(["patch"], ["validatingwebhookconfigurations"],
                                           groups=["admissionregistration.k8s.io"])),
    clusterrole("e2e-secret-reader", rule(["list"], ["secrets"])),
    clusterrole("e2e-secret-piece", rule(["watch"], ["secrets"]), labels={"e2e.kubeproof/aggregate": "secrets"}),
    clusterrole("e2e-aggregated-secrets", selectors=[{"matchLabels": {"e2e.kubeproof/aggregate": "secrets"}}]),
    # Seeded violations, one per control.
    rb("secret-readers", "Role", "secret-reader", user("reader")),
    crb("deployers", "e2e-deployer", group("deployers")),
    rb("default-sa-reader", "Role", "configmap-reader", account("default")),
    crb("masters-view", "view", group("system:masters")),
    crb("helpdesk-impersonation", "e2e-impersonator", user("helpdesk")),
    crb("storage-pv", "e2e-pv-maker", user("storage-admin")),
    crb("metrics-node-proxy", "e2e-node-proxy", account("metrics", NS)),
    crb("pki-approvers", "e2e-csr-approver", user("pki")),
    crb("mesh-webhooks", "e2e-webhook-editor", user("mesh")),
    rb("token-minters", "Role", "token-minter", account("minter")),
    # Seeded: granted only through aggregation; a copied bootstrap label on another name; a system:
    # name with the label but a person as subject.
    crb("aggregated-readers", "e2e-aggregated-secrets", user("agg-reader")),
    crb("copycat", "e2e-secret-reader", user("copycat"), labels=BOOTSTRAP),
    crb("system:forged", "e2e-secret-reader", user("alice"), labels=BOOTSTRAP),
    # Compliant, though some look close.
    rb("pod-exec", "Role", "pod-exec", user("debugger")),  # a subresource is not the pod
    rb("namespaced-pv", "ClusterRole", "e2e-pv-maker", user("storage-ns")),  # cluster-scoped: no effect
    rb("dangling", "Role", "not-created", account("default")),  # grants nothing (yet)
    rb("team-view", "ClusterRole", "view", group("team")),
]

TEST = "test_binding_grants_no_permission_that_hands_over_the_cluster"
# (control, binding): each seeded binding breaks exactly one control.
EXPECTED_FAILURES = {
    ("5.1.2", f"RoleBinding/{NS}/secret-readers"),
    ("5.1.2", "ClusterRoleBinding/aggregated-readers"),
    ("5.1.2", "ClusterRoleBinding/copycat"),
    ("5.1.2", "ClusterRoleBinding/system:forged"),
    ("5.1.4", "ClusterRoleBinding/deployers"),
    ("5.1.5", f"RoleBinding/{NS}/default-sa-reader"),
    ("5.1.7", "ClusterRoleBinding/masters-view"),
    ("5.1.8", "ClusterRoleBinding/helpdesk-impersonation"),
    ("5.1.9", "ClusterRoleBinding/storage-pv"),
    ("5.1.10", "ClusterRoleBinding/metrics-node-proxy"),
    ("5.1.11", "ClusterRoleBinding/pki-approvers"),
    ("5.1.12", "ClusterRoleBinding/mesh-webhooks"),
    ("5.1.13", f"RoleBinding/{NS}/token-minters"),
}
EXPECTED_SUBJECTS = {
    f"RoleBinding/{NS}/secret-readers": "User/reader", "ClusterRoleBinding/aggregated-readers": "User/agg-reader",
    "ClusterRoleBinding/copycat": "User/copycat", "ClusterRoleBinding/system:forged": "User/alice",
    "ClusterRoleBinding/deployers": "Group/deployers", f"RoleBinding/{NS}/default-sa-reader": f"ServiceAccount/{NS}/default",
    "ClusterRoleBinding/masters-view": "Group/system:masters", "ClusterRoleBinding/helpdesk-impersonation": "User/helpdesk",
    "ClusterRoleBinding/storage-pv": "User/storage-admin", "ClusterRoleBinding/metrics-node-proxy": f"ServiceAccount/{NS}/metrics",
    "ClusterRoleBinding/pki-approvers": "User/pki", "ClusterRoleBinding/mesh-webhooks": "User/mesh",
    f"RoleBinding/{NS}/token-minters": f"ServiceAccount/{NS}/minter",
}


def run_privileges_suite(report_dir: Path, *args: str, timeout: float = 300) -> SuiteRun:
    """Like conftest.run_suite, restricted to the RBAC privilege tests."""
    command = [sys.executable, "-m", "pytest", SUITE_FILE, "-q", "-p", "no:cacheprovider",
               f"--report-dir={report_dir}", *args]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    reports = sorted(report_dir.rglob("*.json")) if report_dir.exists() else []
    reports = [r for r in reports if "results" in json.loads(r.read_text())]
    results = json.loads(reports[-1].read_text()) if reports else None
    return SuiteRun(process.returncode, process.stdout + process.stderr, results, report_dir)


@pytest.fixture(scope="module")
def seeded_cluster():
    with EmbeddedCluster(profile="hardened") as cluster:
        status, answer = cluster.api_request("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
        assert status == 201, answer
        for path, body in SEEDS:
            status, answer = cluster.api_request("POST", path, body)
            assert status == 201, (body["metadata"]["name"], status, answer.get("message"))
        # The authorizer reads the aggregated role's stored rules: wait for the controller to fill them.
        deadline = time.monotonic() + 20
        while True:
            status, aggregated = cluster.api_request("GET", f"{RBAC}/clusterroles/e2e-aggregated-secrets")
            if aggregated.get("rules"):
                break
            assert time.monotonic() < deadline, "the aggregation controller did not fill e2e-aggregated-secrets"
            time.sleep(0.2)
        yield cluster


@pytest.fixture(scope="module")
def seeded_run(seeded_cluster, tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("rbac-privileges") / "reports"
    return run_privileges_suite(report_dir, "--cluster=local", f"--local-attach={seeded_cluster.workdir}")


def _record(run: SuiteRun, obj: str) -> dict:
    [record] = [r for r in run.records() if r["test"] == TEST and object_name(r["object"]) == obj]
    return record


def test_exactly_the_seeded_bindings_fail_under_their_control(seeded_run):
    run = seeded_run
    assert run.returncode == 1, run.output[-3000:]
    assert run.records("not_verified") == [] and run.records("error") == [], run.output[-3000:]
    failed = {(control, object_name(r["object"])) for r in run.records("failed")
              for f in r["findings"] for control in f["controls"]}
    assert failed == EXPECTED_FAILURES
    # The summary by control counts a binding as failed only under the control it breaks.
    by_control = run.results["summary_by_control"]
    for control in ("5.1.2", "5.1.4", "5.1.13"):
        expected = sum(1 for c, _ in EXPECTED_FAILURES if c == control)
        assert by_control[control].get("failed", 0) == expected, (control, by_control[control])


def test_each_failure_names_its_subject_and_is_confirmed_by_the_authorizer(seeded_run):
    for record in seeded_run.records("failed"):
        binding = object_name(record["object"])
        subject = EXPECTED_SUBJECTS[binding]
        [finding] = record["findings"]
        [control] = finding["controls"]
        assert control in record["controls"]["cis"], record
        assert finding["observed"].startswith(f"{subject} may "), finding
        reviews = record["evidence"]["access_reviews"]
        assert reviews and {r["subject"] for r in reviews} == {subject}, reviews
        assert all(r["status"] == 201 and r["allowed"] is True for r in reviews), reviews
        if subject != "Group/system:masters":  # members of system:masters are let through before RBAC
            name = binding.rsplit("/", 1)[-1]
            assert all(f'"{name}' in r["reason"] for r in reviews), reviews
        judged = record["evidence"]["controls"]
        assert set(judged) == {control}, judged
        assert judged[control]["subjects_holding"] == {subject: judged[control]["grants"]}
        assert len(record["evidence"]["nothing_granted_under"]) == 9


def test_aggregation_and_resource_names_reach_the_findings(seeded_run):
    aggregated = _record(seeded_run, "ClusterRoleBinding/aggregated-readers")
    assert aggregated["evidence"]["controls"]["5.1.2"]["grants"] == ["watch secrets cluster-wide"]
    csr = _record(seeded_run, "ClusterRoleBinding/pki-approvers")
    assert csr["evidence"]["controls"]["5.1.11"]["grants"] == [
        "update certificatesigningrequests/approval.certificates.k8s.io cluster-wide",
        "approve signers.certificates.k8s.io named 'kubernetes.io/kube-apiserver-client' cluster-wide"]


def test_bindings_that_only_look_dangerous_pass(seeded_run):
    for obj in (f"RoleBinding/{NS}/pod-exec", f"RoleBinding/{NS}/namespaced-pv", f"RoleBinding/{NS}/dangling",
                f"RoleBinding/{NS}/team-view", "ClusterRoleBinding/deployers"):
        record = _record(seeded_run, obj)
        evidence = record["evidence"]
        if obj == "ClusterRoleBinding/deployers":  # fails 5.1.4, but reads no secrets
            assert "5.1.2" in evidence["nothing_granted_under"], evidence
            continue
        assert record["status"] == "passed", record
        assert evidence["controls"] == {} and "access_reviews" not in evidence, evidence
        assert len(evidence["nothing_granted_under"]) == 10
    dangling = _record(seeded_run, f"RoleBinding/{NS}/dangling")
    assert any("does not exist" in note for note in dangling["evidence"]["notes"])


def test_kubernetes_own_bindings_are_exempt_with_the_reason(seeded_run):
    record = _record(seeded_run, "ClusterRoleBinding/system:kube-controller-manager")
    assert record["status"] == "skipped" and "Kubernetes' own bootstrap binding" in record["reason"]
    record = _record(seeded_run, "ClusterRoleBinding/cluster-admin")
    assert record["status"] == "skipped" and "default cluster-admin binding" in record["reason"]
