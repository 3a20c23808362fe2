"""Version currency on nodes, against a real API server: a kubelet past its end of life (and too far
behind the API server) fails, a current one passes.

The embedded cluster's own nodes run real kubelets, whose version is the binary's: they show only a
current kubelet. An old one cannot be run, so two more nodes are hand-made Node objects with the
nodeInfo a kubelet would report (node-current, node-ancient); no kubelet runs for them. The suite judges
all four, and the real nodes must pass beside the hand-made current one."""

from __future__ import annotations

import pytest
from suite_runs import run_suite

from kubeproof.controlplane import EmbeddedCluster


def _node(name: str, kubelet: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"nodeInfo": {"kubeletVersion": kubelet, "kubeProxyVersion": kubelet, "osImage": "test",
                                    "containerRuntimeVersion": "containerd://2.0", "kernelVersion": "6",
                                    "operatingSystem": "linux", "architecture": "amd64",
                                    "machineID": "m", "systemUUID": "s", "bootID": "b"}}}


@pytest.fixture(scope="module")
def cluster_with_nodes():
    with EmbeddedCluster(profile="hardened") as cluster:
        for name, kubelet in (("node-current", "v1.37.2"), ("node-ancient", "v1.25.16")):
            status, answer = cluster.api_request("POST", "/api/v1/nodes", _node(name, kubelet))
            assert status == 201, answer.get("message")
            status, answer = cluster.api_request("PATCH", f"/api/v1/nodes/{name}/status",
                                                 {"status": _node(name, kubelet)["status"]})
            assert status == 200, answer.get("message")
        yield cluster


def test_kubelets_past_end_of_life_or_skew_fail_and_current_ones_pass(cluster_with_nodes, tmp_path):
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={cluster_with_nodes.workdir}",
                    paths=("tests_cluster/test_version_currency.py",))
    assert run.returncode == 1, run.output[-2000:]
    by_node = {}
    for record in run.records():
        if record["object"] and record["object"].get("kind") == "Node":
            by_node.setdefault(record["object"]["name"], {})[record["test"]] = record
    real = [node.name for node in cluster_with_nodes.nodes]
    assert real and set(by_node) == {"node-current", "node-ancient", *real}, sorted(by_node)
    tests = {"test_kubelet_version_is_supported", "test_kubelet_is_within_skew_of_the_api_server"}
    for name in ("node-current", *real):
        assert set(by_node[name]) == tests and all(r["status"] == "passed" for r in by_node[name].values()), by_node[name]
    for name in real:
        # Judged by the version the running kubelet registered: the binary's own.
        status, answer = cluster_with_nodes.api_request("GET", f"/api/v1/nodes/{name}")
        assert status == 200, answer.get("message")
        reported = answer["status"]["nodeInfo"]["kubeletVersion"]
        assert reported == cluster_with_nodes.binaries.kubernetes_version
        assert by_node[name]["test_kubelet_version_is_supported"]["evidence"]["version"] == reported
        assert by_node[name]["test_kubelet_is_within_skew_of_the_api_server"]["evidence"]["kubelet"] == reported
    ancient = by_node["node-ancient"]
    assert ancient and all(r["status"] == "failed" for r in ancient.values()), ancient
    observed = " ".join(str(f["observed"]) for r in ancient.values() for f in r["findings"])
    assert "1.25" in observed
