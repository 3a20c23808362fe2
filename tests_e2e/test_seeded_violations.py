"""Known violations seeded into an otherwise hardened cluster: the suite reports exactly those and
passes every compliant object beside them."""

from __future__ import annotations

import pytest
from suite_runs import run_suite

from kubeproof.controlplane import EmbeddedCluster
from kubeproof.controlplane.embedded import Settings

RBAC = "/apis/rbac.authorization.k8s.io/v1"
DEFAULT_DENY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


def _create(cluster, path, body):
    status, answer = cluster.api_request("POST", path, body)
    assert status == 201, (path, status, answer.get("message"))


def _namespace(cluster, name, labels=None, default_deny=True):
    _create(cluster, "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}})
    if default_deny:
        _create(cluster, f"/apis/networking.k8s.io/v1/namespaces/{name}/networkpolicies", DEFAULT_DENY)


def _secret(cluster, namespace, name):
    _create(cluster, f"/api/v1/namespaces/{namespace}/secrets",
            {"metadata": {"name": name}, "stringData": {"token": "e2e-" + name}})


@pytest.fixture(scope="module")
def seeded_cluster():
    settings = Settings.for_profile("hardened")
    settings.anonymous_auth = True          # seeded: anonymous requests are let in
    settings.encryption = "identity-first"  # secrets written now land in plain text
    with EmbeddedCluster(profile="hardened", settings=settings) as cluster:
        _namespace(cluster, "e2e-team", RESTRICTED)
        _namespace(cluster, "e2e-unlabelled", labels=None)              # seeded: no Pod Security label
        _namespace(cluster, "e2e-open", RESTRICTED, default_deny=False)  # seeded: no default-deny
        _secret(cluster, "e2e-team", "legacy")                           # seeded: written before encryption
        _create(cluster, f"{RBAC}/namespaces/e2e-team/roles", {"metadata": {"name": "too-broad"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                          {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}]})  # seeded
        _create(cluster, f"{RBAC}/namespaces/e2e-team/roles", {"metadata": {"name": "narrow"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
        _create(cluster, f"{RBAC}/namespaces/e2e-team/rolebindings", {"metadata": {"name": "narrow-readers"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "narrow"},
                "subjects": [{"kind": "Group", "name": "team", "apiGroup": "rbac.authorization.k8s.io"}]})
        cluster.restart_apiserver(encryption="aescbc")
        _secret(cluster, "e2e-team", "fresh")
        yield cluster


# The five headline practices; the catalogue's other practices have seeded e2e modules of their own.
HEADLINE_FILES = tuple(f"tests_cluster/test_{name}.py" for name in (
    "etcd_encryption", "anonymous_access", "rbac", "pod_security_admission", "network_policy"))

EXPECTED_FAILURES = {
    ("test_role_grants_no_wildcards", "Role/e2e-team/too-broad"),
    ("test_namespace_enforces_required_level", "Namespace/e2e-unlabelled"),
    # Unlabelled, the namespace admits a privileged pod: the same seed, proven by the admission chain.
    ("test_admission_rejects_a_privileged_pod", "Namespace/e2e-unlabelled"),
    ("test_namespace_denies_traffic_by_default", "Namespace/e2e-open"),
    ("test_every_stored_secret_is_encrypted", ""),
    ("test_unauthenticated_request_is_refused", ""),
}


def test_suite_reports_exactly_the_seeded_violations(seeded_cluster, tmp_path):
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={seeded_cluster.workdir}", paths=HEADLINE_FILES)
    assert run.returncode == 1, run.output[-3000:]
    failed = run.records("failed")
    assert {(r["test"], _name(r)) for r in failed} == EXPECTED_FAILURES
    assert run.records("not_verified") == [] and run.records("error") == []
    probes = [r for r in failed if r["test"] == "test_unauthenticated_request_is_refused"]
    assert len(probes) == 4  # /api, /apis, /version, /healthz
    stored = next(r for r in failed if r["test"] == "test_every_stored_secret_is_encrypted")
    # Both secrets written before encryption was turned on: the seeded one and the suite's own canary.
    plain = {(f["object"]["namespace"], f["object"]["name"]) for f in stored["findings"]}
    assert plain == {("e2e-team", "legacy"), ("kube-system", "kubeproof-encryption-canary")}
    assert stored["evidence"]["keys_read"] == 3  # and "fresh", written after, is encrypted
    wildcard = next(r for r in failed if r["test"] == "test_role_grants_no_wildcards")
    assert [(f["path"], f["observed"]) for f in wildcard["findings"]] == [("rules[1].verbs", ["*"])]
    # The compliant neighbours pass.
    passed = run.outcome_keys("passed")
    for expected in [("test_role_grants_no_wildcards", "Role/e2e-team/narrow"),
                     ("test_namespace_enforces_required_level", "Namespace/e2e-team"),
                     ("test_namespace_denies_traffic_by_default", "Namespace/e2e-team"),
                     ("test_admission_rejects_a_privileged_pod", "Namespace/e2e-team"),
                     ("test_encryption_configuration_encrypts_secrets_first", "")]:
        assert expected in passed


def _name(record):
    obj = record["object"]
    if record["test"] == "test_unauthenticated_request_is_refused" or not obj:
        return ""
    return "/".join(p for p in (obj.get("kind"), obj.get("namespace"), obj.get("name")) if p)
