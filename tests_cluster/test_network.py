"""Network enforcement: the cluster's network plugin enforces NetworkPolicy, and no policy of a
sensitive namespace admits traffic from every namespace."""

import pytest

from kubeproof.checks import network
from kubeproof.results import NotVerified

pytestmark = [pytest.mark.network, pytest.mark.nsa("Network separation and hardening")]


@pytest.mark.cis(*network.CNI_CONTROLS)
def test_cni_enforces_network_policy(cluster, snapshot, verdict):
    if not snapshot.items("nodes"):
        verdict.exempt(network.NO_NODES)
    daemonsets = snapshot.items("daemonsets")
    identified = network.identify(daemonsets)
    verdict.observe(identified=[i.summary() for i in identified])
    if not identified and cluster.kind in ("local", "manifests"):
        verdict.exempt(network.FAKE_RUNTIME)
    verdict(network.cni_findings(daemonsets))


@pytest.mark.cis(*network.INGRESS_CONTROLS)
def test_sensitive_namespace_admits_no_ingress_from_every_namespace(network_policy, snapshot, baseline, verdict):
    namespace = (network_policy.get("metadata") or {}).get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise NotVerified("the NetworkPolicy has no namespace; whether it is sensitive cannot be told")
    if not baseline.is_sensitive(namespace):
        verdict.exempt(f"the baseline's isolation.sensitive_namespaces does not include {namespace}")
    try:
        nodes = snapshot.items("nodes")  # only an ipBlock over a whole address family needs them
    except NotVerified as unreadable:
        nodes = unreadable
    verdict(network.ingress_findings(network_policy, nodes))
