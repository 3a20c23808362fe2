"""Platform practices end to end: node agents (monitoring), service-mesh mutual TLS, and network
enforcement, against one hardened embedded cluster the module seeds.

The cluster runs three real nodes (upstream kubelets on a fake container runtime) and its own
kube-scheduler: the DaemonSet controller makes the agents' pods, the scheduler binds them, the kubelets
run them and report their status, and the controller reports the DaemonSet status the suite judges.
The module only does what an operator or an outside controller would do through the API: it taints
the third node (dedicated=db:NoSchedule), so an agent without tolerations runs on two nodes and one
that tolerates every taint on three; and it plays the controller behind a readiness gate the agents'
pods carry, setting that gate's condition on every agent pod but one (seeded: that pod never gets
ready) and then on that one too (fixed).

Three audits of the same cluster: pristine (nothing to prove: every test skipped or exempt, none
passed), seeded (exactly the seeded violations fail), and fixed (everything passes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from suite_runs import ROOT, SuiteRun, object_name, until

from kubeproof.checks.network import FAKE_RUNTIME
from kubeproof.controlplane import EmbeddedCluster
from kubeproof.controlplane.nodes import node_address

TEST_FILES = ("tests_cluster/test_monitoring.py", "tests_cluster/test_service_mesh.py", "tests_cluster/test_network.py")
APPS = "/apis/apps/v1"
NETPOL = "/apis/networking.k8s.io/v1"
ISTIO = "/apis/security.istio.io/v1"
STRATEGIC = "application/strategic-merge-patch+json"
WAIT_SECONDS = 60.0
NOWHERE = {"e2e.kubeproof.dev/never": "true"}  # a nodeSelector no node matches: objects that need not run

NODE_COUNT = 3
NODES = [node_address(i) for i in range(NODE_COUNT)]  # 127.0.0.2, 127.0.0.3, 127.0.0.4
DEDICATED = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}  # on the third node
UNTAINTED = NODES[:2]
NOT_READY_NODE = NODES[1]  # seeded: the node-agent pod here never gets ready
READINESS_GATE = "e2e.kubeproof.dev/ready"  # a condition no kubelet sets: the module plays its controller
# Left without Pod Security labels, the namespace gets the cluster default (privileged), as node agents
# need; the hardened profile labels only the built-in namespaces restricted.
MONITORING_NS = "e2e-monitoring"
AGENT = "node-agent"  # tolerates nothing extra: the two untainted nodes
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


# -- talking to the cluster as its admin and as the readiness gate's controller -----------------------
def _ok(cluster, method, path, body=None, content_type=None, expect=(200, 201)):
    status, answer = cluster.api_request(method, path, body, content_type=content_type)
    assert status in expect, (method, path, status, answer.get("message"))
    return answer


def _until(what: str, probe, timeout: float = WAIT_SECONDS):
    return until(what, probe, timeout, interval=0.25)


def taint(cluster: EmbeddedCluster, node: str, added: dict) -> None:
    """Adds a taint to a node, as `kubectl taint` does: the kubelet keeps taints it did not set. The
    resourceVersion makes the write refused (and retried) if the kubelet updated the node meanwhile."""
    def written():
        current = _ok(cluster, "GET", f"/api/v1/nodes/{node}")
        taints = [t for t in current["spec"].get("taints") or [] if t["key"] != added["key"]] + [added]
        status, answer = cluster.api_request("PATCH", f"/api/v1/nodes/{node}", {"metadata": {
            "resourceVersion": current["metadata"]["resourceVersion"]}, "spec": {"taints": taints}})
        assert status in (200, 409), (node, status, answer.get("message"))
        return status == 200
    _until(f"taint {added} on node {node}", written)


def _condition(pod: dict, kind: str) -> str | None:
    return next((c["status"] for c in pod.get("status", {}).get("conditions") or [] if c["type"] == kind), None)


def running_pods(cluster: EmbeddedCluster, namespace: str, daemonset: str, count: int) -> dict[str, dict]:
    """The DaemonSet's pods by the node the scheduler bound each to, once the controller made `count`
    and their kubelets run them all."""
    def running():
        items = _ok(cluster, "GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
        mine = [p for p in items if any(o.get("name") == daemonset for o in p["metadata"].get("ownerReferences", []))]
        if len(mine) != count or not all(p["spec"].get("nodeName") and p["status"].get("phase") == "Running"
                                         and _condition(p, "ContainersReady") == "True" for p in mine):
            return None
        return {p["spec"]["nodeName"]: p for p in mine}
    return _until(f"{count} running pods of DaemonSet {namespace}/{daemonset}", running)


def open_gate(cluster: EmbeddedCluster, pod: dict) -> None:
    """What the readiness gate's controller writes: its condition, True, through the status subresource
    (a strategic merge on conditions, keyed by type, leaves the kubelet's own conditions alone)."""
    meta = pod["metadata"]
    _ok(cluster, "PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status", {"status": {
        "conditions": [{"type": READINESS_GATE, "status": "True", "reason": "E2EAgentReady",
                        "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}},
        content_type=STRATEGIC)


def _fresh(cluster: EmbeddedCluster, pod: dict) -> dict:
    return _ok(cluster, "GET", f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}")


def _daemonset(name: str, tolerations=None, node_selector=None, image="example.com/agent:1", labels=None,
               annotations=None, readiness_gate: str | None = None) -> dict:
    spec = {"containers": [{"name": name, "image": image}]}
    if tolerations:
        spec["tolerations"] = tolerations
    if node_selector:
        spec["nodeSelector"] = node_selector
    if readiness_gate:
        spec["readinessGates"] = [{"conditionType": readiness_gate}]
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
def seed(cluster: EmbeddedCluster) -> None:
    # Monitoring: the third node dedicated to databases; two agents whose pods wait on a readiness gate,
    # opened for every pod but node-agent's on the second node (seeded: that one never gets ready).
    taint(cluster, NODES[2], DEDICATED)
    _namespace(cluster, MONITORING_NS)
    _ok(cluster, "POST", f"{APPS}/namespaces/{MONITORING_NS}/daemonsets",
        _daemonset(AGENT, annotations=INJECT, readiness_gate=READINESS_GATE))
    _ok(cluster, "POST", f"{APPS}/namespaces/{MONITORING_NS}/daemonsets",
        _daemonset(SECURITY_AGENT, tolerations=[{"operator": "Exists"}], annotations=INJECT,
                   readiness_gate=READINESS_GATE))
    agent_pods = running_pods(cluster, MONITORING_NS, AGENT, 2)
    assert set(agent_pods) == set(UNTAINTED)  # the third node's taint keeps it off, as the check expects
    security_pods = running_pods(cluster, MONITORING_NS, SECURITY_AGENT, NODE_COUNT)
    assert set(security_pods) == set(NODES)
    # Running with ready containers, yet not Ready: the kubelet waits on the gate.
    assert {_condition(p, "Ready") for p in (*agent_pods.values(), *security_pods.values())} == {"False"}
    for node, pod in agent_pods.items():
        if node != NOT_READY_NODE:
            open_gate(cluster, pod)
    for pod in security_pods.values():
        open_gate(cluster, pod)
    _daemonset_settled(cluster, MONITORING_NS, AGENT, desired=2, ready=1)
    _daemonset_settled(cluster, MONITORING_NS, SECURITY_AGENT, desired=NODE_COUNT, ready=NODE_COUNT)

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


def fix(cluster: EmbeddedCluster) -> None:
    pods = running_pods(cluster, MONITORING_NS, AGENT, 2)
    # The kubelets kept the gate's condition through the seeded audit (it is not theirs to write), and
    # the seeded pod is still held back by its gate alone.
    for node, pod in pods.items():
        gate, ready = _condition(pod, READINESS_GATE), _condition(pod, "Ready")
        assert (gate, ready) == ((None, "False") if node == NOT_READY_NODE else ("True", "True")), (node, pod["status"])
    held = next(c for c in pods[NOT_READY_NODE]["status"]["conditions"] if c["type"] == "Ready")
    assert held.get("reason") == "ReadinessGatesNotReady", held
    assert _condition(pods[NOT_READY_NODE], "ContainersReady") == "True"
    open_gate(cluster, pods[NOT_READY_NODE])
    _daemonset_settled(cluster, MONITORING_NS, AGENT, desired=2, ready=2)
    assert all(_condition(_fresh(cluster, pod), READINESS_GATE) == "True" for pod in pods.values())
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
    with EmbeddedCluster(profile="hardened", node_count=NODE_COUNT) as cluster:
        pristine = audit(cluster, folder / "pristine", baselines["pristine"])
        seed(cluster)
        seeded = audit(cluster, folder / "seeded", baselines["seeded"])
        fix(cluster)
        fixed = audit(cluster, folder / "fixed", baselines["fixed"])
        yield {"pristine": pristine, "seeded": seeded, "fixed": fixed}


MONITORING = "test_monitoring_agent_is_ready_on_every_node"
MESH_WIDE = "test_istio_requires_mutual_tls_mesh_wide"
PEER_AUTH = "test_peer_authentication_does_not_weaken_mutual_tls"
LINKERD = "test_linkerd_meshes_application_namespace"
CNI = "test_cni_enforces_network_policy"
INGRESS = "test_sensitive_namespace_admits_no_ingress_from_every_namespace"


def test_pristine_cluster_proves_nothing_it_cannot_see(platform_cluster):
    # No agent, mesh or sensitive namespace yet: nothing is passed and nothing fails. The nodes are
    # there, but their pods (on the fake runtime) have no network for a plugin to enforce policy on.
    run = platform_cluster["pristine"]
    assert run.returncode == 0, run.output[-3000:]
    statuses = outcomes(run)
    assert set(statuses.values()) == {"skipped"}, statuses
    reasons = {r["test"]: r["reason"] for r in run.records()}
    assert set(reasons) == {MONITORING, MESH_WIDE, PEER_AUTH, LINKERD, CNI, INGRESS}
    assert reasons[CNI] == f"exempt: {FAKE_RUNTIME}"
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
    # The evidence shows what each agent was measured against: the nodes as their kubelets registered
    # them, the tainted one only for the agent that tolerates its taint.
    evidence = {key(r): r["evidence"] for r in platform_cluster["seeded"].records() if r["test"] == MONITORING}
    security = evidence[(MONITORING, "e2e-monitoring/security-*")]["daemonsets"]["DaemonSet/e2e-monitoring/security-agent"]
    assert security["expected_nodes"] == NODES and security["numberReady"] == NODE_COUNT
    agent = evidence[(MONITORING, "e2e-monitoring/node-agent")]["daemonsets"]["DaemonSet/e2e-monitoring/node-agent"]
    assert agent["expected_nodes"] == UNTAINTED
    assert agent["nodes_it_does_not_tolerate_or_other_platform"] == [NODES[2]]


def test_fixed_cluster_passes(platform_cluster):
    run = platform_cluster["fixed"]
    assert run.returncode == 0, run.output[-3000:]
    # The absent agent left the baseline and the open policy was deleted; every other seed now passes.
    gone = {(MONITORING, "e2e-monitoring/absent-agent"), (INGRESS, "NetworkPolicy/e2e-vault/allow-from-everywhere")}
    assert with_status(run, "passed") == SEEDED_PASSES | (SEEDED_FAILURES - gone)
    assert with_status(run, "failed") == set() and with_status(run, "not_verified") == set()
    assert with_status(run, "error") == set()
