"""The in-cluster deployment (deploy/): the suite runs as exactly the shipped read-only identity, with
nothing left "not verified" for lack of permission, and the test notices when a permission is missing."""

from __future__ import annotations

import os

import pytest
from suite_runs import ROOT, run_suite

from kubeproof import manifests
from kubeproof.controlplane import EmbeddedCluster

IDENTITY = "system:serviceaccount:kubeproof:kubeproof-auditor"
ROLE = "/apis/rbac.authorization.k8s.io/v1/clusterroles/kubeproof-auditor"


@pytest.fixture(scope="module")
def deployed():
    with EmbeddedCluster(profile="hardened") as cluster:
        documents = manifests.load(ROOT / "deploy")
        manifests.apply(cluster, documents)
        assert all(d.outcome == "applied" for d in documents), [(d.where, d.answer) for d in documents]
        yield cluster


def _as_the_cronjob(cluster, tmp_path, *args):
    """Runs the suite the way deploy/cronjob.yaml does, with the service-account token a pod gets."""
    status, answer = cluster.api_request(
        "POST", "/api/v1/namespaces/kubeproof/serviceaccounts/kubeproof-auditor/token", {"spec": {"expirationSeconds": 3600}})
    assert status == 201, answer
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(answer["status"]["token"])
    (account / "ca.crt").write_text(cluster.ca.cert.read_text())
    env = dict(os.environ, KUBEPROOF_SERVICE_ACCOUNT_DIR=str(account), KUBERNETES_SERVICE_HOST="127.0.0.1",
               KUBERNETES_SERVICE_PORT=str(cluster.apiserver_port))
    return run_suite(tmp_path / "reports", "--cluster=in-cluster", "--no-dry-run", *args, env=env)


def _lack_of_permission(run) -> list[dict]:
    return [r for r in run.records("not_verified") if "403" in r["reason"] or "forbidden" in r["reason"].lower()]


def test_suite_runs_as_the_shipped_identity_with_every_permission_it_needs(deployed, tmp_path):
    run = _as_the_cronjob(deployed, tmp_path)
    assert run.returncode in (0, 1), run.output[-3000:]
    assert run.results["environment"]["identity"].startswith(IDENTITY)
    assert _lack_of_permission(run) == []
    assert run.records("passed")


def test_removing_list_secrets_from_the_role_is_noticed(deployed, tmp_path):
    status, role = deployed.api_request("GET", ROLE)
    original = [dict(rule) for rule in role["rules"]]
    for rule in role["rules"]:
        if rule.get("resources") == ["secrets"]:
            rule["verbs"] = [verb for verb in rule["verbs"] if verb != "list"]
    assert deployed.api_request("PUT", ROLE, role)[0] == 200
    try:
        run = _as_the_cronjob(deployed, tmp_path)
    finally:
        role["rules"] = original
        del role["metadata"]["resourceVersion"]
        deployed.api_request("PUT", ROLE, role)
    missing = _lack_of_permission(run)
    assert missing and all("Secret" in r["reason"] or "secrets" in r["reason"] for r in missing), missing
