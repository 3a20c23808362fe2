"""End-to-end: CIS 4.3.1 read from the kube-proxy configuration kubeadm and kind keep in kube-system.

The embedded cluster runs no kube-proxy, so its 4.3.1 result is exempt with that reason. Here a
cluster of the module's own is given the ConfigMap kubeadm writes, once binding the metrics to every
address (a failure naming the ConfigMap, the field and the value) and once to loopback (a pass)."""

from __future__ import annotations

import pytest
from suite_runs import run_suite

from kubeproof.controlplane import EmbeddedCluster

SUITE = ("tests_cluster/test_kube_proxy.py",)
TEST = "test_kube_proxy_metrics_bound_to_localhost"
CONFIG = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
metricsBindAddress: {address}
mode: iptables
"""


@pytest.fixture(scope="module")
def cluster():
    with EmbeddedCluster(profile="hardened", node_count=0) as started:
        yield started


def audit(cluster, tmp_path, address: str | None) -> dict:
    path = "/api/v1/namespaces/kube-system/configmaps"
    cluster.api_request("DELETE", f"{path}/kube-proxy")
    if address is not None:
        status, answer = cluster.api_request("POST", path, {
            "metadata": {"name": "kube-proxy"}, "data": {"config.conf": CONFIG.format(address=address)}})
        assert status == 201, answer
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={cluster.workdir}", paths=SUITE)
    [record] = [r for r in run.records() if r["test"] == TEST]
    return record


def test_without_kube_proxy_the_control_is_exempt_with_the_reason(cluster, tmp_path):
    record = audit(cluster, tmp_path, None)
    assert record["status"] == "skipped" and "runs no kube-proxy" in record["reason"]


def test_metrics_on_every_address_fail(cluster, tmp_path):
    record = audit(cluster, tmp_path, "0.0.0.0:10249")
    assert record["status"] == "failed"
    [finding] = record["findings"]
    assert finding["controls"] == ["4.3.1"] and finding["object"]["name"] == "kube-proxy"
    assert finding["path"].endswith("metricsBindAddress") and "0.0.0.0:10249" in str(finding["observed"])


def test_metrics_on_loopback_pass(cluster, tmp_path):
    assert audit(cluster, tmp_path, "127.0.0.1:10249")["status"] == "passed"
