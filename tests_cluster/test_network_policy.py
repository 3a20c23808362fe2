"""Every namespace denies ingress and egress by default; workloads open only what they need."""

import pytest

from kubeproof.checks import network_policy
from kubeproof.checks.pod_security_admission import namespace_name

pytestmark = [pytest.mark.network_policy, pytest.mark.nsa("Network separation and hardening")]


@pytest.mark.cis(*network_policy.CONTROLS)
def test_namespace_denies_traffic_by_default(namespace, snapshot, baseline, verdict):
    name = namespace_name(namespace)
    if baseline.default_deny_exempted(name):
        verdict.exempt(f"the baseline exempts namespace {name} from default-deny")
    policies = snapshot.in_namespace("networkpolicies", name)
    verdict.observe(policies=[(p.get("metadata") or {}).get("name") for p in policies])
    verdict(network_policy.default_deny_findings(namespace, policies))
