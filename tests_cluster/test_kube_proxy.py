"""kube-proxy serves its metrics on a loopback address only (CIS 4.3.1), read from the configuration
kubeadm and kind keep in the kube-system ConfigMap `kube-proxy` and from the flags of its DaemonSet.
A cluster with neither shows no kube-proxy configuration: not verified (or exempt where the suite
knows no kube-proxy runs, as on its embedded cluster)."""

import pytest

from kubeproof.checks import kube_proxy
from kubeproof.results import NotVerified

pytestmark = [pytest.mark.kube_proxy, pytest.mark.nsa("Network separation and hardening")]


@pytest.mark.cis(kube_proxy.CONTROL)
def test_kube_proxy_metrics_bound_to_localhost(cluster, snapshot, verdict):
    answer = cluster.request("GET", "/api/v1/namespaces/kube-system/configmaps/kube-proxy")
    verdict.observe(configmap={"request": "GET kube-system/configmaps/kube-proxy", "status": answer.status})
    daemonsets = [d for d in snapshot.in_namespace("daemonsets", "kube-system")
                  if (d.get("metadata") or {}).get("name") == "kube-proxy"]
    flags = kube_proxy.daemonset_flags(daemonsets[0]) if daemonsets else None
    if answer.status == 404 and not daemonsets:
        if cluster.kind in ("local", "manifests"):
            verdict.exempt("the embedded cluster runs no kube-proxy")
        raise NotVerified("no kube-proxy configuration in kube-system (no kube-proxy ConfigMap or DaemonSet): "
                          "kube-proxy runs from flags on the nodes, or not at all")
    if not answer.ok and answer.status != 404:
        raise NotVerified(f"the kube-proxy ConfigMap could not be read (HTTP {answer.status})")
    config = kube_proxy.config_from_configmap(answer.body) if answer.ok else None
    verdict.observe(**kube_proxy.evidence(config, flags))
    verdict(kube_proxy.findings(config, flags))
