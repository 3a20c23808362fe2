"""Platform practices end to end: node agents (monitoring), service-mesh mutual TLS, and network
enforcement, against one hardened embedded cluster the module seeds.

The embedded cluster has no kubelet and no scheduler, so this module plays both, writing only what
they would write through the API: Node objects with a Ready condition (and a heartbeat, so the node
lifecycle controller keeps them Ready), a Binding for each DaemonSet pod, and each pod's status. The
real DaemonSet controller creates the pods and reports the DaemonSet's status the suite then judges.

Three audits of the same cluster: pristine (nothing to prove: every test skipped or exempt, none
passed), seeded (exactly the seeded violations fail), and fixed (everything passes)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, SuiteRun, object_name

from kubeproof.controlplane import EmbeddedCluster

TEST_FILES = ("tests_cluster/test_monitoring.py", "tests_cluster/test_service_mesh.py", "tests_cluster/test_network.py")
APPS = "/apis/apps/v1"
NETPOL = "/apis/networking.k8s.io/v1"
ISTIO = "/apis/security.istio.io/v1"
STRATEGIC = "application/strategic-merge-patch+json"
WAIT_SECONDS = 30.0
NOWHERE = {"e2e.kubeproof.dev/never": "true"}  # a nodeSelector no node matches: objects that need not run

NODES = {"node-a": [], "node-b": [], "node-c": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}
MONITORING_NS = "e2e-monitoring"
AGENT = "node-agent"  # tolerates nothing extra: node-a and node-b
SECURITY_AGENT = "security-agent"  # tolerates every taint: all three nodes
BASELINE_PRISTINE = """\
isolation:
  sensitive_namespaces: []
monitoring:
  daemonsets: []
"""
BASELINE_SEEDED = """\
isolation:
  sensitive_namespaces: [e2e-vault]
monitoring:
  daemonsets: [e2e-monitoring/node-agent, "e2e-monitoring/security-*", e2e-monitoring/absent-agent]
"""
BASELINE_FIXED = """\
isolation:
  sensitive_namespaces: [e2e-vault]
monitoring:
  daemonsets: [e2e-monitoring/node-agent, "e2e-monitoring/security-*"]
"""


# -- talking to the cluster as its admin, its kubelet and its scheduler ---------------------------------
def _ok(cluster, method, path, body=None, content_type=None, expect=(200, 201)):
    status, answer = cluster.api_request(method, path, body, content_type=content_type)
    assert status in expect, (method, path, status, answer.get("message"))
    return answer


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _until(what: str, probe, timeout: float = WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


class Kubelet:
    """What the kubelets of NODES would write: their Node, its Ready condition and heartbeats, and the
    status of the pods bound to them."""

    def __init__(self, cluster: EmbeddedCluster):
        self.cluster = cluster
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeats, daemon=True)

    def register(self) -> None:
        for name, taints in NODES.items():
            _ok(self.cluster, "POST", "/api/v1/nodes", {"metadata": {"name": name, "labels": {
                "kubernetes.io/os": "linux", "kubernetes.io/hostname": name}}, "spec": {"taints": taints}})
        self.heartbeat()
        self._thread.start()

    def heartbeat(self) -> None:
        now = _now()
        for name in NODES:
            _ok(self.cluster, "PATCH", f"/api/v1/nodes/{name}/status", {"status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "e2e kubelet",
                 "lastHeartbeatTime": now, "lastTransitionTime": now}]}}, content_type=STRATEGIC)

    def _heartbeats(self) -> None:
        # Without heartbeats the node lifecycle controller would mark the nodes unknown (and their
        # pods not ready) after its grace period; a kubelet reports every few seconds.
        while not self._stop.wait(5.0):
            try:
                self.heartbeat()
            except (AssertionError, OSError):
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def pods_of(self, namespace: str, daemonset: str, count: int) -> dict[str, dict]:
        """The DaemonSet's pods by the node each is meant for, once the controller made `count`."""
        def made():
            items = _ok(self.cluster, "GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
            mine = [p for p in items if any(o.get("name") == daemonset for o in p["metadata"].get("ownerReferences", []))]
            return {_target_node(p): p for p in mine} if len(mine) == count else None
        return _until(f"{count} pods of DaemonSet {namespace}/{daemonset}", made)

    def bind(self, pod: dict, node: str) -> None:
        if pod["spec"].get("nodeName"):
            return
        meta = pod["metadata"]
        _ok(self.cluster, "POST", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding",
            {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"]},
             "target": {"apiVersion": "v1", "kind": "Node", "name": node}})

    def run(self, pod: dict, ready: bool) -> None:
        meta, now = pod["metadata"], _now()
        flag = "True" if ready else "False"
        containers = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": ready, "restartCount": 0,
                       "started": True, "state": {"running": {"startedAt": now}}} for c in pod["spec"]["containers"]]
        _ok(self.cluster, "PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status", {"status": {
            "phase": "Running", "hostIP": "10.0.0.10", "podIP": "10.244.0.10", "startTime": now,
            "conditions": [{"type": t, "status": s, "lastTransitionTime": now} for t, s in (
                ("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", flag), ("Ready", flag))],
            "containerStatuses": containers}})


def _target_node(pod: dict) -> str:
    """The node a DaemonSet pod is for: its nodeName once bound, else the controller's node affinity."""
    if pod["spec"].get("nodeName"):
        return pod["spec"]["nodeName"]
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return terms[0]["matchFields"][0]["values"][0]


def _daemonset(name: str, tolerations=None, node_selector=None, image="example.com/agent:1", labels=None,
               annotations=None) -> dict:
    spec = {"containers": [{"name": name, "image": image}]}
    if tolerations:
        spec["tolerations"] = tolerations
    if node_selector:
        spec["nodeSelector"] = node_selector
    selector = {"e2e.kubeproof.dev/daemonset": name}
    template_meta = {"labels": {**(labels or {}), **selector}}
    if annotations:
        template_meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"selector": {"matchLabels": selector}, "template": {"metadata": template_meta, "spec": spec}}}


def _daemonset_settled(cluster, namespace: str, name: str, desired: int, ready: int) -> None:
    def settled():
        ds = _ok(cluster, "GET", f"{APPS}/namespaces/{namespace}/daemonsets/{name}")
        status = ds.get("status", {})
        return (status.get("observedGeneration", 0) >= ds["metadata"]["generation"]
                and status.get("desiredNumberScheduled") == desired and status.get("numberReady") == ready)
    _until(f"DaemonSet {namespace}/{name} reporting {ready} of {desired} ready", settled)


def _namespace(cluster, name: str, annotations=None, labels=None) -> None:
    _ok(cluster, "POST", "/api/v1/namespaces", {"metadata": {"name": name, "annotations": annotations or {},
                                                             "labels": labels or {}}})


def _peer_authentication(name: str, namespace: str, mode: str) -> dict:
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"mtls": {"mode": mode}}}


def _policy(name: str, ingress=None, types=("Ingress",)) -> dict:
    spec = {"podSelector": {}, "policyTypes": list(types)}
    if ingress is not None:
        spec["ingress"] = ingress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name}, "spec": spec}


PEER_AUTHENTICATION_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "peerauthentications.security.istio.io"},
    "spec": {"group": "security.istio.io", "scope": "Namespaced",
             "names": {"plural": "peerauthentications", "singular": "peerauthentication", "kind": "PeerAuthentication",
                       "listKind": "PeerAuthenticationList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}
INJECT = {"linkerd.io/inject": "enabled"}


# -- seeding --------------------------------------------------------------------------------------------
def seed(cluster: EmbeddedCluster, kubelet: Kubelet) -> None:
    # Monitoring: two agents, one pod of node-agent left not ready.
    kubelet.register()
    _namespace(cluster, MONITORING_NS)
    _ok(cluster, "POST", f"{APPS}/namespaces/{MONITORING_NS}/daemonsets", _daemonset(AGENT, annotations=INJECT))
    _ok(cluster, "POST", f"{APPS}/namespaces/{MONITORING_NS}/daemonsets",
        _daemonset(SECURITY_AGENT, tolerations=[{"operator": "Exists"}], annotations=INJECT))
    agent_pods = kubelet.pods_of(MONITORING_NS, AGENT, 2)
    assert set(agent_pods) == {"node-a", "node-b"}  # node-c's taint keeps it off, as the check expects
    security_pods = kubelet.pods_of(MONITORING_NS, SECURITY_AGENT, 3)
    for node, pod in agent_pods.items():
        kubelet.bind(pod, node)
        kubelet.run(pod, ready=node != "node-b")  # seeded: node-b's agent never gets ready
    for node, pod in security_pods.items():
        kubelet.bind(pod, node)
        kubelet.run(pod, ready=True)
    _daemonset_settled(cluster, MONITORING_NS, AGENT, desired=2, ready=1)
    _daemonset_settled(cluster, MONITORING_NS, SECURITY_AGENT, desired=3, ready=3)

    # Network plugin: flannel only (seeded). Stored, never scheduled.
    _ok(cluster, "POST", f"{APPS}/namespaces/kube-system/daemonsets",
        _daemonset("kube-flannel-ds", node_selector=NOWHERE, image="docker.io/flannel/flannel:v0.25.1",
                   labels={"app": "flannel"}))

    # Istio: a STRICT mesh-wide policy and a namespace that turns it down to PERMISSIVE (seeded).
    _ok(cluster, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", PEER_AUTHENTICATION_CRD)
    _until("the PeerAuthentication CRD established", lambda: any(
        c["type"] == "Established" and c["status"] == "True" for c in _ok(
            cluster, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/peerauthentications.security.istio.io"
        ).get("status", {}).get("conditions") or []))  # null until the CRD controller first writes it
    _until("security.istio.io/v1 served", lambda: cluster.api_request("GET", ISTIO)[0] == 200)
    _namespace(cluster, "istio-system", annotations=INJECT)
    _namespace(cluster, "e2e-mesh", annotations=INJECT)
    for name, namespace, mode in (("default", "istio-system", "STRICT"), ("permissive-override", "e2e-mesh", "PERMISSIVE")):
        _ok(cluster, "POST", f"{ISTIO}/namespaces/{namespace}/peerauthentications", _peer_authentication(name, namespace, mode))

    # Linkerd: its control-plane namespace; every application namespace meshed but one (seeded).
    _namespace(cluster, "linkerd", labels={"linkerd.io/is-control-plane": "true", "linkerd.io/control-plane-ns": "linkerd"})
    _ok(cluster, "PATCH", "/api/v1/namespaces/default", {"metadata": {"annotations": INJECT}})
    _namespace(cluster, "e2e-unmeshed")
    _ok(cluster, "POST", f"{APPS}/namespaces/e2e-unmeshed/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "example.com/web:1"}]}}}})

    # A sensitive namespace: default-deny, a narrow allow, and an allow from every namespace (seeded).
    _namespace(cluster, "e2e-vault", annotations=INJECT)
    for policy in (_policy("default-deny", types=("Ingress", "Egress")),
                   _policy("allow-from-frontend", [{"from": [{
                       "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "e2e-mesh"}},
                       "podSelector": {"matchLabels": {"app": "frontend"}}}], "ports": [{"port": 8200}]}]),
                   _policy("allow-from-everywhere", [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8200}]}])):
        _ok(cluster, "POST", f"{NETPOL}/namespaces/e2e-vault/networkpolicies", policy)


def fix(cluster: EmbeddedCluster, kubelet: Kubelet) -> None:
    pods = kubelet.pods_of(MONITORING_NS, AGENT, 2)
    kubelet.run(pods["node-b"], ready=True)
    _daemonset_settled(cluster, MONITORING_NS, AGENT, desired=2, ready=2)
    _ok(cluster, "POST", f"{APPS}/namespaces/kube-system/daemonsets",
        _daemonset("calico-node", node_selector=NOWHERE, image="docker.io/calico/node:v3.28.0",
                   labels={"k8s-app": "calico-node"}))
    _ok(cluster, "PATCH", f"{ISTIO}/namespaces/e2e-mesh/peerauthentications/permissive-override",
        {"spec": {"mtls": {"mode": "STRICT"}}})
    _ok(cluster, "PATCH", "/api/v1/namespaces/e2e-unmeshed", {"metadata": {"annotations": INJECT}})
    _ok(cluster, "DELETE", f"{NETPOL}/namespaces/e2e-vault/networkpolicies/allow-from-everywhere")


# -- running the suite ----------------------------------------------------------------------------------
def audit(cluster: EmbeddedCluster, report_dir: Path, baseline: Path) -> SuiteRun:
    command = [sys.executable, "-m", "pytest", *TEST_FILES, "-q", "-p", "no:cacheprovider", "--cluster=local",
               f"--local-attach={cluster.workdir}", f"--baseline={baseline}", f"--report-dir={report_dir}"]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    folders = sorted(p.parent for p in report_dir.glob("*/results.json")) if report_dir.exists() else []
    results = json.loads((folders[-1] / "results.json").read_text()) if folders else None
    return SuiteRun(process.returncode, process.stdout + process.stderr, results, folders[-1] if folders else report_dir)


def key(record: dict) -> tuple[str, str]:
    """(test, object); a case without an object (one per baseline agent) by its parameter."""
    subject = object_name(record["object"])
    if record["test"] == MONITORING and record["object"]:
        subject = record["object"]["name"]  # the baseline's NAMESPACE/NAME pattern
    if not subject and "[" in record["nodeid"]:
        subject = record["nodeid"].split("[", 1)[1].rstrip("]")
    return record["test"], subject


def outcomes(run: SuiteRun) -> dict[tuple[str, str], str]:
    return {key(record): record["status"] for record in run.records()}


def with_status(run: SuiteRun, status: str) -> set[tuple[str, str]]:
    return {key for key, found in outcomes(run).items() if found == status}


@pytest.fixture(scope="module")
def platform_cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("platform")
    baselines = {}
    for name, text in (("pristine", BASELINE_PRISTINE), ("seeded", BASELINE_SEEDED), ("fixed", BASELINE_FIXED)):
        baselines[name] = folder / f"{name}.yaml"
        baselines[name].write_text(text)
    with EmbeddedCluster(profile="hardened") as cluster:
        kubelet = Kubelet(cluster)
        try:
            pristine = audit(cluster, folder / "pristine", baselines["pristine"])
            seed(cluster, kubelet)
            seeded = audit(cluster, folder / "seeded", baselines["seeded"])
            fix(cluster, kubelet)
            fixed = audit(cluster, folder / "fixed", baselines["fixed"])
        finally:
            kubelet.stop()
        yield {"pristine": pristine, "seeded": seeded, "fixed": fixed}


MONITORING = "test_monitoring_agent_is_ready_on_every_node"
MESH_WIDE = "test_istio_requires_mutual_tls_mesh_wide"
PEER_AUTH = "test_peer_authentication_does_not_weaken_mutual_tls"
LINKERD = "test_linkerd_meshes_application_namespace"
CNI = "test_cni_enforces_network_policy"
INGRESS = "test_sensitive_namespace_admits_no_ingress_from_every_namespace"


def test_pristine_cluster_proves_nothing_it_cannot_see(platform_cluster):
    # No node, agent, mesh or sensitive namespace yet: nothing is passed and nothing fails.
    run = platform_cluster["pristine"]
    assert run.returncode == 0, run.output[-3000:]
    statuses = outcomes(run)
    assert set(statuses.values()) == {"skipped"}, statuses
    reasons = {r["test"]: r["reason"] for r in run.records()}
    assert set(reasons) == {MONITORING, MESH_WIDE, PEER_AUTH, LINKERD, CNI, INGRESS}
    assert reasons[CNI] == "exempt: the cluster has no nodes, so it has no pod network to enforce NetworkPolicy on"
    assert reasons[MESH_WIDE].startswith("exempt: no service mesh installed")
    assert reasons[LINKERD].startswith("exempt: no service mesh installed")
    assert reasons[INGRESS].startswith("exempt: the baseline's isolation.sensitive_namespaces does not include")
    assert reasons[MONITORING] == "the baseline expects no monitoring agents (monitoring.daemonsets)"
    assert reasons[PEER_AUTH] == "no PeerAuthentication objects in this cluster"


SEEDED_FAILURES = {
    (MONITORING, "e2e-monitoring/node-agent"),
    (MONITORING, "e2e-monitoring/absent-agent"),
    (PEER_AUTH, "PeerAuthentication/e2e-mesh/permissive-override"),
    (LINKERD, "Namespace/e2e-unmeshed"),
    (CNI, ""),
    (INGRESS, "NetworkPolicy/e2e-vault/allow-from-everywhere"),
}
SEEDED_PASSES = {
    (MONITORING, "e2e-monitoring/security-*"),
    (MESH_WIDE, ""),
    (PEER_AUTH, "PeerAuthentication/istio-system/default"),
    *((LINKERD, f"Namespace/{n}") for n in ("default", "istio-system", "e2e-mesh", "e2e-monitoring", "e2e-vault")),
    (INGRESS, "NetworkPolicy/e2e-vault/default-deny"),
    (INGRESS, "NetworkPolicy/e2e-vault/allow-from-frontend"),
}


def test_seeded_violations_fail_exactly(platform_cluster):
    run = platform_cluster["seeded"]
    assert run.returncode == 1, run.output[-3000:]
    assert with_status(run, "failed") == SEEDED_FAILURES
    assert with_status(run, "passed") == SEEDED_PASSES
    assert with_status(run, "not_verified") == set() and with_status(run, "error") == set()
    skipped = with_status(run, "skipped")
    assert {(LINKERD, f"Namespace/{n}") for n in ("kube-system", "kube-public", "kube-node-lease", "linkerd")} <= skipped
    assert all(test in (LINKERD, INGRESS) for test, _ in skipped), skipped


def test_seeded_findings_name_what_to_fix(platform_cluster):
    records = {key(r): r for r in platform_cluster["seeded"].records("failed")}
    [not_ready] = records[(MONITORING, "e2e-monitoring/node-agent")]["findings"]
    assert (not_ready["path"], not_ready["observed"]) == ("status.numberReady", "1 of 2 agent pods ready, 1 unavailable")
    assert not_ready["object"]["name"] == AGENT
    [absent] = records[(MONITORING, "e2e-monitoring/absent-agent")]["findings"]
    assert absent["observed"] == "no DaemonSet matches e2e-monitoring/absent-agent"
    [permissive] = records[(PEER_AUTH, "PeerAuthentication/e2e-mesh/permissive-override")]["findings"]
    assert (permissive["path"], permissive["observed"]) == ("spec.mtls.mode", "PERMISSIVE")
    [flannel] = records[(CNI, "")]["findings"]
    assert flannel["object"]["name"] == "kube-flannel-ds" and flannel["controls"] == ["5.3.1"]
    [wide] = records[(INGRESS, "NetworkPolicy/e2e-vault/allow-from-everywhere")]["findings"]
    assert (wide["path"], wide["controls"]) == ("spec.ingress[0].from[0]", ["5.3.2"])
    [unmeshed] = records[(LINKERD, "Namespace/e2e-unmeshed")]["findings"]
    assert unmeshed["object"] == {"kind": "Deployment", "name": "web", "namespace": "e2e-unmeshed", "uid": unmeshed["object"]["uid"]}
    # The evidence shows what the agent was measured against.
    evidence = next(r for r in platform_cluster["seeded"].records("passed") if r["test"] == MONITORING)["evidence"]
    assert evidence["daemonsets"]["DaemonSet/e2e-monitoring/security-agent"]["expected_nodes"] == ["node-a", "node-b", "node-c"]


def test_fixed_cluster_passes(platform_cluster):
    run = platform_cluster["fixed"]
    assert run.returncode == 0, run.output[-3000:]
    # The absent agent left the baseline and the open policy was deleted; every other seed now passes.
    gone = {(MONITORING, "e2e-monitoring/absent-agent"), (INGRESS, "NetworkPolicy/e2e-vault/allow-from-everywhere")}
    assert with_status(run, "passed") == SEEDED_PASSES | (SEEDED_FAILURES - gone)
    assert with_status(run, "failed") == set() and with_status(run, "not_verified") == set()
    assert with_status(run, "error") == set()
