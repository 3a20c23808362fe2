"""End-to-end: kubeproof against real kind clusters, on a node image assembled on this machine.

kind-hardened is created as a user creates it (examples/kind/create.sh) and must pass every practice
kind can meet, with what kubeadm does by design waived by name (baselines/kind-kind-hardened.yaml);
kind-insecure must fail each headline practice, naming the object and what was observed. The
control-plane flags and files come from the node's real static pods through `docker exec`, the etcd
bytes are read inside the node, and the kubelet controls are judged on a real kubelet with a real
container runtime. Where no Docker engine can run, every test here is skipped with one reason that
says the lane is not verified."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess

import pytest
from suite_runs import object_name, run_suite

from kubeproof.artifacts import listed_digests
from kubeproof.kind import clusters, engine, incluster, nodeimage

HEADLINE = {"etcd_encryption", "anonymous_access", "rbac", "pod_security", "network_policy"}
HARDENED = f"--cluster=kind-{clusters.HARDENED}"
INSECURE = f"--cluster=kind-{clusters.INSECURE}"


@pytest.fixture(scope="module")
def kind_lane(request):
    """Both clusters running; those this module created are deleted again, and an engine it started
    is stopped, so a user's own kind clusters and Docker are left as they were."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        try:
            started = engine.start()
        except engine.EngineError as error:
            pytest.skip(f"kind lane not verified: no Docker engine can run here ({error})")
        image = nodeimage.ensure_image()
        before = clusters.existing(image)
        clusters.up()
    yield image
    with capture.global_and_fixture_disabled():
        clusters.down([name for name in clusters.CLUSTERS if name not in before])
        if started.started_here:
            engine.stop()


def assert_sealed(folder) -> None:
    """The run folder's SHA256SUMS lists every file, and each digest matches."""
    listed = listed_digests(folder)
    assert set(listed) == {p.name for p in folder.iterdir() if p.name != "SHA256SUMS"}, listed
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def failed_objects(run) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for record in run.records("failed"):
        found.setdefault(record["test"], set()).add(object_name(record["object"]))
    return found


def observed(run, test: str, control: str) -> list[str]:
    return [f"{finding['path']}={finding['observed']}" for record in run.records("failed") if record["test"] == test
            for finding in record["findings"] if control in finding["controls"]]


def test_hardened_kind_cluster_passes_every_practice_kind_can_meet(kind_lane, tmp_path):
    run = run_suite(tmp_path / "reports", HARDENED)
    assert run.returncode == 0, run.output[-3000:]
    assert run.records("failed") == [] and run.records("error") == [] and run.records("not_verified") == []
    assert HEADLINE <= {r["practice"] for r in run.records("passed")}
    # What kubeadm and kind do by design is waived by name, never passed.
    waived = {re.search(r"(?:waived by|as waiver) (\S+)", r["reason"]).group(1) for r in run.records("waived")}
    assert waived <= {"1.2.1", "1.2.11", "1.1.12", "5.3.1", "5.5.1", "5.1.10"}, waived
    environment = run.results["environment"]
    assert environment["backend"] == "kind" and environment["server version"] == f"{kind_lane.kubernetes_version}"
    node = f"{clusters.HARDENED}-control-plane"
    assert environment["nodes"].startswith(f"{node} (kubelet {kind_lane.kubernetes_version}, containerd://")
    page = next(run.run_folder.glob("*.html")).read_text()
    assert f"{node} (kubelet {kind_lane.kubernetes_version}" in page
    assert_sealed(run.run_folder)


def test_hardened_kind_evidence_comes_from_the_node_itself(kind_lane, tmp_path):
    run = run_suite(tmp_path / "reports", HARDENED, "-m", "cis", paths=(
        "tests_cluster/test_control_plane.py", "tests_cluster/test_etcd_encryption.py",
        "tests_cluster/test_kubelet.py", "tests_cluster/test_node_files.py"))
    assert run.returncode == 0, run.output[-3000:]
    passed = {r["test"]: r for r in run.records("passed")}
    # The API server's flags from its static pod manifest on the node, not from a mirror pod.
    sources = {(r.get("evidence") or {}).get("source") for r in run.records() if r["test"] == "test_api_server_setting"}
    assert sources == {f"kind node {clusters.HARDENED}-control-plane:/etc/kubernetes/manifests/kube-apiserver.yaml (docker exec)"}
    # Every stored Secret, read from etcd inside the node, starts with the encryption header.
    assert "test_every_stored_secret_is_encrypted" in passed
    # The kubelet controls (CIS 4.2) on a real kubelet, and the worker-node files (4.1) by stat.
    kubelet_controls = {c for r in run.records("passed") if r["test"] in ("test_kubelet_configuration", "test_kubelet_command_line")
                        for c in r["controls"]["cis"]}
    assert {f"4.2.{n}" for n in range(1, 15)} <= kubelet_controls
    files = {c for r in run.records("passed") if r["test"] == "test_worker_node_file" for c in r["controls"]["cis"]}
    assert {"4.1.1", "4.1.9"} <= files


def test_insecure_kind_cluster_fails_each_headline_practice_naming_the_object(kind_lane, tmp_path):
    run = run_suite(tmp_path / "reports", INSECURE)
    assert run.returncode == 1, run.output[-3000:]
    assert HEADLINE <= {r["practice"] for r in run.records("failed")}
    failed = failed_objects(run)
    # etcd: a Secret stored in plain text, named by its etcd key (never its value).
    plain = observed(run, "test_every_stored_secret_is_encrypted", "1.2.28")
    assert plain and all("/registry/secrets/" in line and "plain text" in line for line in plain), plain
    # Anonymous requests: the flag on the node, and kubeadm's anonymous read of cluster-info.
    assert "--anonymous-auth=true" in observed(run, "test_api_server_setting", "1.2.1")
    assert "RoleBinding/kube-public/kubeadm:bootstrap-signer-clusterinfo" in failed["test_binding_grants_nothing_to_unauthenticated_users"]
    # RBAC wildcards, Pod Security labels, default-deny: each names its object.
    assert "ClusterRole/kubeproof-lane-everything" in failed["test_role_grants_no_wildcards"]
    assert "Namespace/default" in failed["test_namespace_enforces_required_level"]
    assert "Namespace/default" in failed["test_namespace_denies_traffic_by_default"]
    # The permissive kubelet, caught by live requests to it as well as by its configuration.
    kubelet = " ".join(observed(run, "test_kubelet_configuration", "4.2.1") + observed(run, "test_kubelet_configuration", "4.2.4"))
    assert "answered HTTP 200" in kubelet, kubelet
    assert any("AlwaysAllow" in line for line in observed(run, "test_kubelet_configuration", "4.2.2"))
    # The node's files as kubeadm writes them (create.sh tightens them on kind-hardened only).
    assert any("/var/lib/kubelet/config.yaml=mode 0644" in line for line in observed(run, "test_worker_node_file", "4.1.9"))


def test_monitoring_agent_is_judged_on_real_pods(kind_lane, tmp_path):
    """A node agent whose image is in the node becomes ready and passes; one whose image is not
    there never starts, and fails with how many nodes it is ready on."""
    context = f"kind-{clusters.INSECURE}"
    clusters.load_agent_image(clusters.INSECURE)
    clusters.deploy_agents(context)
    baseline = tmp_path / "agents.yaml"
    baseline.write_text(
        "monitoring:\n  daemonsets: [kubeproof-lane/node-agent, kubeproof-lane/agent-without-image]\n")
    run = run_suite(tmp_path / "reports", INSECURE, f"--baseline={baseline}", paths=("tests_cluster/test_monitoring.py",))
    assert run.returncode == 1, run.output[-3000:]
    outcomes = {r["nodeid"].rsplit("[", 1)[-1]: r["status"] for r in run.records()}
    assert outcomes == {"kubeproof-lane/node-agent]": "passed", "kubeproof-lane/agent-without-image]": "failed"}, outcomes
    finding = run.records("failed")[0]["findings"][0]
    assert finding["object"]["name"] == "agent-without-image" and finding["observed"], finding
    # The pods are real: the ready one runs in containerd on the node.
    listed = subprocess.run(["docker", "exec", f"{clusters.INSECURE}-control-plane", "crictl", "ps", "--name", "agent",
                             "--state", "Running", "-q"], capture_output=True, text=True)
    assert listed.stdout.strip(), listed.stderr


def test_in_cluster_cronjob_runs_once_in_kind_hardened(kind_lane, tmp_path):
    """deploy/Containerfile built here, loaded into the node, and deploy/cronjob.yaml run once as a Job
    with the read-only ClusterRole: it completes, nothing is left not verified for lack of
    permission, and its sealed evidence comes out of the cluster."""
    outcome = incluster.run_cronjob_once(tmp_path / "evidence",
                                         extra_args=[f"--baseline=baselines/kind-{clusters.HARDENED}.yaml"])
    conditions = {c["type"] for c in outcome["status"].get("conditions") or [] if c.get("status") == "True"}
    assert "Complete" in conditions, outcome
    folders = [p for p in (tmp_path / "evidence").iterdir() if p.is_dir() and p.name.startswith("in-cluster-")]
    assert len(folders) == 1, list((tmp_path / "evidence").iterdir())
    assert_sealed(folders[0])
    results = json.loads((folders[0] / "results.json").read_text())
    assert results["environment"]["identity"].startswith("system:serviceaccount:kubeproof:kubeproof-auditor")
    assert results["counts"]["passed"] > 100 and results["counts"]["failed"] == 0
    lacking = [r for r in results["results"] if r["status"] == "not_verified"
               and re.search(r"403|forbidden|permission|not allowed", r.get("reason") or "", re.IGNORECASE)]
    assert lacking == [], lacking
