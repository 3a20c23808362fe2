"""Safe to point at production: the suite writes nothing (its audit-log trail holds only reads,
dry-runs and reviews), no secret value leaves the cluster, and the report renders hostile object
names, subjects and images as inert text in a real browser."""

from __future__ import annotations

import json
import time

import pytest
from browser import rendered_dom
from suite_runs import run_suite

from kubeproof.controlplane import EmbeddedCluster
from kubeproof.controlplane.embedded import SUITE_USER

RBAC = "/apis/rbac.authorization.k8s.io/v1"
MARKERS = ("kp-marker-7f3a9c1e", "kp-marker-b24e6d05", "kp-marker-0c9e1f77", "kp-marker-5a1d3b92")
PAYLOADS = {
    "role": "<img src=x onerror=\"document.body.setAttribute('data-pwned','role')\">",
    # Names may not contain '/', so no closing tags: an element that runs script as it starts.
    "binding": "<svg><animate onbegin=\"document.body.setAttribute('data-pwned','binding')\" attributeName=x dur=1s>",
    "subject": "<svg onload=\"document.body.setAttribute('data-pwned','subject')\">",
    "image": "registry.example.com/app:1<img/src=x/onerror=document.body.setAttribute('data-pwned','image')>",
}
READ_VERBS = {"get", "list", "watch"}
REVIEWS = {"subjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectreviews"}


def _post(cluster, path, body):
    status, answer = cluster.api_request("POST", path, body)
    assert status == 201, (path, status, answer.get("message"))


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("safety")
    with EmbeddedCluster(profile="hardened") as cluster:
        _post(cluster, "/api/v1/namespaces", {"metadata": {"name": "safety"}})
        time.sleep(1)  # the controller-manager gives the namespace its default ServiceAccount
        _post(cluster, "/api/v1/namespaces/safety/secrets", {
            "metadata": {"name": "db-credentials", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"stringData": {"password": MARKERS[0]}})}},
            "stringData": {"password": MARKERS[1]}})
        _post(cluster, "/apis/apps/v1/namespaces/safety/deployments", {
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": PAYLOADS["image"], "env": [{"name": "DB_PASSWORD", "value": MARKERS[2]}]}]}}}})
        _post(cluster, "/api/v1/namespaces/safety/configmaps", {"metadata": {"name": "settings"}, "data": {"token": MARKERS[3]}})
        _post(cluster, f"{RBAC}/clusterroles", {"metadata": {"name": PAYLOADS["role"]},
              "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
        _post(cluster, f"{RBAC}/clusterrolebindings", {"metadata": {"name": PAYLOADS["binding"]},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
              "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": PAYLOADS["subject"]}]})
        run = run_suite(tmp / "reports", "--cluster=local", f"--local-attach={cluster.workdir}")
        time.sleep(2)  # the audit log is written in batches
        yield cluster, run, tmp


def test_suite_sent_only_reads_dry_runs_and_reviews(audited):
    cluster, run, _ = audited
    assert run.returncode == 1, run.output[-2000:]  # the seeded violations are found
    events = [json.loads(line) for line in cluster.audit_log_path.read_text().splitlines() if line.strip()]
    ours = [e for e in events if (e.get("user") or {}).get("username") == SUITE_USER]
    assert len(ours) > 20 and {"list", "get"} <= {e["verb"] for e in ours}
    writes = [
        f"{e['verb']} {e['requestURI']}" for e in ours
        if e["verb"] not in READ_VERBS
        and not (e["verb"] == "create" and (e.get("objectRef") or {}).get("resource") in REVIEWS)
        and "dryRun=All" not in e["requestURI"]
    ]
    assert writes == []
    assert any("dryRun=All" in e["requestURI"] for e in ours)


def test_no_secret_value_reaches_any_artifact_or_output(audited):
    _, run, tmp = audited
    texts = {"output": run.output}
    for path in (tmp / "reports").rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_text(errors="replace")
    assert len(texts) >= 6
    leaks = [(where, marker) for where, text in texts.items() for marker in MARKERS if marker in text]
    assert leaks == []
    # The variable was found by its name, so the check that could have leaked it did run.
    assert "DB_PASSWORD" in texts[str(run.run_folder / "results.json")]


@pytest.fixture(scope="module")
def rendered(audited):
    _, run, tmp = audited
    return rendered_dom(next(run.run_folder.glob("*.html")), tmp / "browser")


def test_hostile_names_are_inert_in_the_report(rendered):
    assert 'data-pwned="' not in rendered  # no injected script or handler ran
    for injected in ('<img src="x"', "<svg onload", "<animate onbegin"):
        assert injected not in rendered  # and no injected element exists
    # The names are there, as text: the auditor still sees what was found.
    assert "&lt;img src=x onerror=" in rendered
    assert "&lt;svg onload=" in rendered
