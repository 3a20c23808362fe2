"""End-to-end: the workload practices (Pod Security per workload, secrets, images, isolation) against a
hardened embedded cluster seeded with compliant and violating controllers, bare pods, secrets, nodes
and namespaces. The suite reports exactly the seeded violations, passes their compliant neighbours,
judges each pod template once through its owner, and never repeats a credential it finds."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubeproof.controlplane import EmbeddedCluster

ROOT = Path(__file__).resolve().parents[1]
SUITE_FILES = ("tests_cluster/test_pod_security_workloads.py", "tests_cluster/test_secrets.py",
               "tests_cluster/test_images.py", "tests_cluster/test_isolation.py")
BUILT_IN = ("default", "kube-system", "kube-public", "kube-node-lease")
OURS = ("wp-good", "wp-bad", "wp-legacy", "wp-relaxed", "wp-pinned", "wp-sensitive")
DIGEST = "sha256:" + "5" * 64
GOOD_IMAGE = f"registry.k8s.io/pause:3.10@{DIGEST}"
# A literal credential seeded into a pod template; it must appear in no output of the run.
MARKER = "kp-e2e-literal-" + secrets.token_hex(8)

BASELINE = """\
pod_security:
  default: restricted
  namespaces:
    kube-system: privileged
    wp-relaxed: baseline
images:
  allowed_registries: [registry.k8s.io, ghcr.io/kubeproof-e2e]
  require_digest_namespaces: [wp-pinned]
isolation:
  sensitive_namespaces: [wp-sensitive]
"""


# -- what the seeds are made of -----------------------------------------------------------------------
def container(name="main", image=GOOD_IMAGE, **extra) -> dict:
    return {
        "name": name, "image": image,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds", "readOnly": True}],
        **extra,
    }


def pod_spec(containers=None, **extra) -> dict:
    """Meets restricted, runs as a ServiceAccount of its own with no token, reads its secret as files."""
    return {
        "serviceAccountName": "app",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers or [container()],
        "volumes": [{"name": "creds", "secret": {"secretName": "app-creds"}}],
        **extra,
    }


def _template(name: str, spec: dict) -> dict:
    return {"metadata": {"labels": {"app": name}}, "spec": spec}


def deployment(name, spec, replicas=1):
    return "apps/v1", "deployments", {"metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": _template(name, spec)}}


def statefulset(name, spec):
    return "apps/v1", "statefulsets", {"metadata": {"name": name}, "spec": {
        "serviceName": name, "selector": {"matchLabels": {"app": name}}, "template": _template(name, spec)}}


def daemonset(name, spec):
    return "apps/v1", "daemonsets", {"metadata": {"name": name}, "spec": {
        "selector": {"matchLabels": {"app": name}}, "template": _template(name, spec)}}


def job(name, spec):
    return "batch/v1", "jobs", {"metadata": {"name": name}, "spec": {
        "backoffLimit": 0, "template": _template(name, {**spec, "restartPolicy": "Never"})}}


def cronjob(name, spec):
    return "batch/v1", "cronjobs", {"metadata": {"name": name}, "spec": {
        "schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"template": _template(name, {**spec, "restartPolicy": "Never"})}}}}


def pod(name, spec):
    return "v1", "pods", {"metadata": {"name": name, "labels": {"app": name}}, "spec": spec}


def _path(api_version: str, resource: str, namespace: str) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{resource}"


def _create(cluster, path, body):
    status, answer = cluster.api_request("POST", path, body)
    assert status == 201, (path, status, answer.get("message"))
    return answer


def _wait(what: str, ready, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _items(cluster, path) -> list[dict]:
    status, answer = cluster.api_request("GET", path)
    assert status == 200, (path, status)
    return answer["items"]


def _opt_default_account_out(cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    _wait(f"the default ServiceAccount of {namespace}", lambda: cluster.api_request("GET", path)[0] == 200)
    status, answer = cluster.api_request("PATCH", path, {"automountServiceAccountToken": False})
    assert status == 200, (status, answer.get("message"))


def _bound_resources(cluster, namespace: str) -> None:
    _create(cluster, f"/api/v1/namespaces/{namespace}/resourcequotas", {"metadata": {"name": "compute"}, "spec": {"hard": {
        "pods": "20", "requests.cpu": "2", "requests.memory": "2Gi", "limits.cpu": "4", "limits.memory": "4Gi"}}})
    _create(cluster, f"/api/v1/namespaces/{namespace}/limitranges", {"metadata": {"name": "defaults"}, "spec": {"limits": [{
        "type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
        "defaultRequest": {"cpu": "100m", "memory": "64Mi"}, "max": {"cpu": "2", "memory": "1Gi"}}]}})


def _seed(cluster) -> None:
    labels = {"wp-legacy": {"pod-security.kubernetes.io/enforce-version": "v1.22"}}
    for namespace in OURS:
        _create(cluster, "/api/v1/namespaces", {"metadata": {"name": namespace, "labels": labels.get(namespace, {})}})
    for namespace in OURS + ("default",):
        _create(cluster, f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "app"}})
    # Compliant namespaces bound their resources and keep the default ServiceAccount's token to itself;
    # wp-bad does neither (seeded). The hardened profile already does both for the built-in namespaces.
    for namespace in tuple(n for n in OURS if n != "wp-bad"):
        _opt_default_account_out(cluster, namespace)
        _bound_resources(cluster, namespace)

    for namespace in ("wp-good", "wp-bad"):
        _create(cluster, f"/api/v1/namespaces/{namespace}/secrets",
                {"metadata": {"name": "app-creds"}, "stringData": {"token": "e2e-placeholder"}})
    _create(cluster, "/api/v1/namespaces/wp-bad/serviceaccounts", {"metadata": {"name": "legacy-sa"}})
    _create(cluster, "/api/v1/namespaces/wp-bad/secrets", {  # seeded: a long-lived token secret
        "metadata": {"name": "legacy-token", "annotations": {"kubernetes.io/service-account.name": "legacy-sa"}},
        "type": "kubernetes.io/service-account-token"})

    taint = {"key": "dedicated", "value": "sensitive", "effect": "NoSchedule"}
    _create(cluster, "/api/v1/nodes", {"metadata": {"name": "wp-dedicated", "labels": {"pool": "sensitive"}},
                                       "spec": {"taints": [taint]}})
    _create(cluster, "/api/v1/nodes", {"metadata": {"name": "wp-general", "labels": {"pool": "general"}}})

    tolerate = [{"key": "dedicated", "operator": "Equal", "value": "sensitive", "effect": "NoSchedule"}]
    root_user = pod_spec(securityContext={"runAsNonRoot": True, "runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}})
    no_identity = {k: v for k, v in pod_spec().items() if k not in ("serviceAccountName", "automountServiceAccountToken")}
    leaky = container(env=[
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "PASSWORD_FILE", "value": "/etc/creds/password"},  # points at the mounted file: fine
        {"name": "DB_PASSWORD", "value": MARKER},                     # seeded: a literal credential
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-creds", "key": "token"}}},  # seeded
    ], envFrom=[{"secretRef": {"name": "app-creds"}}])                # seeded
    seeds = {
        "wp-good": [
            deployment("web", pod_spec(), replicas=2), statefulset("db", pod_spec()), daemonset("agent", pod_spec()),
            job("migrate", pod_spec()), cronjob("report", pod_spec()), pod("debug", pod_spec()),
        ],
        "wp-bad": [
            deployment("privileged", pod_spec([container(securityContext={"privileged": True, "capabilities": {"drop": ["ALL"]}})],
                                              hostNetwork=True), replicas=2),
            deployment("env-secrets", pod_spec([leaky])),
            statefulset("unpinned", pod_spec([container(image="nginx", imagePullPolicy="Always")])),
            daemonset("stale", pod_spec([container(image="ghcr.io/kubeproof-e2e/agent:1.2", imagePullPolicy="IfNotPresent")])),
            job("latest-job", pod_spec([container(image="registry.k8s.io/busybox:latest")])),
            cronjob("default-identity", no_identity),
            pod("hostpath", pod_spec(volumes=[{"name": "creds", "secret": {"secretName": "app-creds"}},
                                              {"name": "logs", "hostPath": {"path": "/var/log"}}])),
            deployment("root-user", root_user),
        ],
        # The same template as wp-bad/root-user: runAsUser 0 is a violation only from policy v1.23 on.
        "wp-legacy": [deployment("root-user", root_user)],
        # Breaks only restricted checks; the baseline asks this namespace for the baseline level.
        "wp-relaxed": [deployment("loose", {"serviceAccountName": "app", "automountServiceAccountToken": False,
                                            "containers": [{"name": "main", "image": GOOD_IMAGE}]})],
        "wp-pinned": [
            deployment("tagged", pod_spec([container(image="registry.k8s.io/pause:3.10", imagePullPolicy="Always")])),
            deployment("pinned", pod_spec()),
        ],
        "wp-sensitive": [
            deployment("confined", pod_spec(tolerations=tolerate, nodeSelector={"pool": "sensitive"})),
            deployment("tolerates-only", pod_spec(tolerations=tolerate)),
            deployment("selects-only", pod_spec(nodeSelector={"pool": "sensitive"})),
        ],
        "default": [deployment("web", pod_spec())],
    }
    for namespace, objects in seeds.items():
        for api_version, resource, body in objects:
            _create(cluster, _path(api_version, resource, namespace), body)

    # The controller-manager turns the seeds into ReplicaSets and pods; the audit must see them and
    # still judge each template once, through its owner.
    def replicas_exist() -> bool:
        pods = [p["metadata"]["name"] for p in _items(cluster, "/api/v1/namespaces/wp-good/pods")]
        bad = [p["metadata"]["name"] for p in _items(cluster, "/api/v1/namespaces/wp-bad/pods")]
        return (sum(n.startswith("web-") for n in pods) == 2 and any(n.startswith("migrate-") for n in pods)
                and sum(n.startswith("privileged-") for n in bad) == 2)

    _wait("the controllers' pods", replicas_exist)


@pytest.fixture(scope="module")
def workload_cluster():
    with EmbeddedCluster(profile="hardened") as cluster:
        _seed(cluster)
        yield cluster


# -- running the suite ------------------------------------------------------------------------------
@dataclass
class Run:
    returncode: int
    output: str
    results: dict
    report_dir: Path

    def keys(self, status: str) -> set[tuple[str, str]]:
        return {(r["test"], case_id(r)) for r in self.results["results"] if r["status"] == status}

    def record(self, test: str, case: str) -> dict:
        [found] = [r for r in self.results["results"] if r["test"] == test and case_id(r) == case]
        return found


def case_id(record: dict) -> str:
    """The object a record is about, as the test's parameter id (Kind/namespace/name)."""
    nodeid = record["nodeid"]
    return nodeid.split("[", 1)[1][:-1] if nodeid.endswith("]") else ""


def run_practices(tmp_path: Path, cluster) -> Run:
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(BASELINE)
    report_dir = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", *SUITE_FILES, "-q", "-p", "no:cacheprovider",
               f"--report-dir={report_dir}", "--cluster=local", f"--local-attach={cluster.workdir}",
               f"--baseline={baseline}"]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = process.stdout + process.stderr
    found = [json.loads(p.read_text()) for p in sorted(report_dir.rglob("*.json"))]
    results = [r for r in found if isinstance(r, dict) and "results" in r]
    assert len(results) == 1, output[-3000:]
    return Run(process.returncode, output, results[0], report_dir)


PSS = "test_workload_meets_the_required_pod_security_level"
SECRET_ENV = "test_secrets_are_not_passed_as_environment_variables"
LITERAL = "test_no_credential_is_written_into_environment_variables"
TOKEN_SECRET = "test_no_long_lived_service_account_token_is_stored"
DEFAULT_ACCOUNT = "test_default_service_account_does_not_mount_its_token"
DEFAULT_IDENTITY = "test_workload_does_not_use_the_default_service_account"
REGISTRY = "test_images_come_from_allowed_registries"
LATEST = "test_images_are_not_latest_or_untagged"
DIGEST_PINNED = "test_images_are_pinned_by_digest"
PULL = "test_mutable_images_are_always_pulled"
DEFAULT_NAMESPACE = "test_workload_is_not_in_the_default_namespace"
QUOTA = "test_namespace_has_a_resource_quota"
LIMITS = "test_namespace_has_a_limit_range"
DEDICATED = "test_sensitive_workload_runs_only_on_dedicated_nodes"
WORKLOAD_TESTS = (PSS, SECRET_ENV, LITERAL, DEFAULT_IDENTITY, REGISTRY, LATEST, PULL, DEFAULT_NAMESPACE)

EXPECTED_FAILURES = {
    (PSS, "Deployment/wp-bad/privileged"),
    (PSS, "Pod/wp-bad/hostpath"),
    (PSS, "Deployment/wp-bad/root-user"),
    (SECRET_ENV, "Deployment/wp-bad/env-secrets"),
    (LITERAL, "Deployment/wp-bad/env-secrets"),
    (TOKEN_SECRET, "Secret/wp-bad/legacy-token"),
    (DEFAULT_ACCOUNT, "Namespace/wp-bad"),
    (DEFAULT_IDENTITY, "CronJob/wp-bad/default-identity"),
    (REGISTRY, "StatefulSet/wp-bad/unpinned"),
    (LATEST, "StatefulSet/wp-bad/unpinned"),
    (LATEST, "Job/wp-bad/latest-job"),
    (DIGEST_PINNED, "Deployment/wp-pinned/tagged"),
    (PULL, "DaemonSet/wp-bad/stale"),
    (DEFAULT_NAMESPACE, "Deployment/default/web"),
    (QUOTA, "Namespace/wp-bad"),
    (LIMITS, "Namespace/wp-bad"),
    (DEDICATED, "Deployment/wp-sensitive/tolerates-only"),
    (DEDICATED, "Deployment/wp-sensitive/selects-only"),
}
COMPLIANT_WORKLOADS = ("Deployment/wp-good/web", "StatefulSet/wp-good/db", "DaemonSet/wp-good/agent",
                       "Job/wp-good/migrate", "CronJob/wp-good/report", "Pod/wp-good/debug")


@pytest.fixture(scope="module")
def run(workload_cluster, tmp_path_factory) -> Run:
    return run_practices(tmp_path_factory.mktemp("workload-practices"), workload_cluster)


def test_exactly_the_seeded_violations_fail(run):
    assert run.returncode == 1, run.output[-3000:]
    assert run.keys("failed") == EXPECTED_FAILURES
    assert run.keys("not_verified") == set() and run.keys("error") == set()


def test_compliant_neighbours_pass_or_are_exempt_with_a_reason(run):
    passed = run.keys("passed")
    for case in COMPLIANT_WORKLOADS:
        for test in WORKLOAD_TESTS:
            assert (test, case) in passed, (test, case)
        for test, reason in ((DIGEST_PINNED, "require_digest_namespaces"), (DEDICATED, "sensitive_namespaces")):
            record = run.record(test, case)
            assert record["status"] == "skipped" and reason in record["reason"], record
    for expected in [
        (PSS, "Deployment/wp-legacy/root-user"), (PSS, "Deployment/wp-relaxed/loose"),
        (DIGEST_PINNED, "Deployment/wp-pinned/pinned"), (DEDICATED, "Deployment/wp-sensitive/confined"),
        (TOKEN_SECRET, "Secret/wp-bad/app-creds"), (TOKEN_SECRET, "Secret/kube-system/kubeproof-encryption-canary"),
        (QUOTA, "Namespace/default"), (LIMITS, "Namespace/default"), (QUOTA, "Namespace/wp-good"),
        (DEFAULT_ACCOUNT, "Namespace/wp-good"), (DEFAULT_ACCOUNT, "Namespace/kube-system"),
        (DEFAULT_IDENTITY, "Deployment/wp-bad/env-secrets"),
    ]:
        assert expected in passed, expected
    for namespace in ("kube-system", "kube-public", "kube-node-lease"):
        assert run.record(QUOTA, f"Namespace/{namespace}")["status"] == "skipped"


def test_each_template_is_judged_once_through_its_owner(run, workload_cluster):
    pods = _items(workload_cluster, "/api/v1/pods")
    owned = [p for p in pods if p["metadata"].get("ownerReferences")]
    assert len(owned) >= 5  # two web replicas, two privileged replicas, the migrate job's pod, ...
    assert _items(workload_cluster, "/apis/apps/v1/namespaces/wp-good/replicasets")
    judged = {case_id(r) for r in run.results["results"] if r["test"] == PSS}
    assert {c for c in judged if c.startswith("Pod/")} == {"Pod/wp-good/debug", "Pod/wp-bad/hostpath"}
    assert not any(c.startswith("ReplicaSet/") for c in judged)
    assert sum(c == "Deployment/wp-good/web" for c in judged) == 1


def test_findings_name_the_check_control_and_field(run):
    privileged = run.record(PSS, "Deployment/wp-bad/privileged")
    ids = {f["observed"].split(":", 1)[0] for f in privileged["findings"]}
    assert ids == {"privileged", "hostNamespaces", "allowPrivilegeEscalation"}
    assert {c for f in privileged["findings"] for c in f["controls"]} == {"5.2.2", "5.2.5", "5.2.6"}
    assert "spec.template.spec.containers[0].securityContext.privileged" in {f["path"] for f in privileged["findings"]}
    assert {f["observed"].split(":", 1)[0] for f in run.record(PSS, "Pod/wp-bad/hostpath")["findings"]} == {
        "hostPathVolumes", "restrictedVolumes"}
    root = run.record(PSS, "Deployment/wp-bad/root-user")
    assert [f["observed"].split(":", 1)[0] for f in root["findings"]] == ["runAsUser"]
    legacy = run.record(PSS, "Deployment/wp-legacy/root-user")
    assert legacy["evidence"]["policy_version"] == "v1.22"
    assert run.record(PSS, "Deployment/wp-relaxed/loose")["evidence"]["required_level"] == "baseline"

    env = run.record(SECRET_ENV, "Deployment/wp-bad/env-secrets")
    assert {f["path"] for f in env["findings"]} == {
        "spec.template.spec.containers[0].env[3].valueFrom.secretKeyRef",
        "spec.template.spec.containers[0].envFrom[0].secretRef"}
    [literal] = run.record(LITERAL, "Deployment/wp-bad/env-secrets")["findings"]
    assert literal["path"] == "spec.template.spec.containers[0].env[2].value"
    assert "DB_PASSWORD" in literal["observed"] and "'main'" in literal["observed"]
    [token] = run.record(TOKEN_SECRET, "Secret/wp-bad/legacy-token")["findings"]
    assert "legacy-sa" in token["observed"] and token["object"]["kind"] == "Secret"
    [account] = run.record(DEFAULT_ACCOUNT, "Namespace/wp-bad")["findings"]
    assert account["object"] == {**account["object"], "kind": "ServiceAccount", "name": "default", "namespace": "wp-bad"}

    [registry] = run.record(REGISTRY, "StatefulSet/wp-bad/unpinned")["findings"]
    assert registry["observed"] == "nginx (registry docker.io)"
    [pull] = run.record(PULL, "DaemonSet/wp-bad/stale")["findings"]
    assert pull["observed"].startswith("IfNotPresent for ghcr.io/kubeproof-e2e/agent:1.2")
    [only_tolerates] = run.record(DEDICATED, "Deployment/wp-sensitive/tolerates-only")["findings"]
    assert only_tolerates["path"].endswith(".nodeSelector")
    [only_selects] = run.record(DEDICATED, "Deployment/wp-sensitive/selects-only")["findings"]
    assert only_selects["path"].endswith(".tolerations") and "dedicated=sensitive:NoSchedule" in only_selects["observed"]
    confined = run.record(DEDICATED, "Deployment/wp-sensitive/confined")
    assert confined["evidence"]["placement"]["runnable"] == ["wp-dedicated"]
    for record in run.results["results"]:
        for finding in record["findings"]:
            assert set(finding["controls"]) <= set(record["controls"]["cis"]), record["nodeid"]


def test_the_literal_credential_appears_nowhere(run, workload_cluster):
    status, seeded = workload_cluster.api_request("GET", "/apis/apps/v1/namespaces/wp-bad/deployments/env-secrets")
    assert status == 200 and MARKER in json.dumps(seeded)  # it is there to be found
    assert MARKER not in run.output
    written = [p for p in run.report_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in written) and any(p.suffix == ".json" for p in written)
    for path in written:
        assert MARKER not in path.read_text(errors="replace"), path
