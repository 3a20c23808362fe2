"""Workload isolation: nothing runs in `default`, every namespace bounds what its pods may consume,
and sensitive namespaces run only on nodes dedicated to them."""

import pytest

from kubeproof.checks import isolation
from kubeproof.checks._workload import namespace_of
from kubeproof.checks.pod_security_admission import namespace_name

pytestmark = [pytest.mark.isolation, pytest.mark.nsa("Network separation and hardening")]


@pytest.mark.cis(*isolation.DEFAULT_NAMESPACE_CONTROLS)
def test_workload_is_not_in_the_default_namespace(workload, verdict):
    verdict(isolation.default_namespace_findings(workload))


# Resource policies and node segmentation have no CIS 1.12 control: these carry the NSA section only.
def test_namespace_has_a_resource_quota(namespace, snapshot, verdict):
    name = namespace_name(namespace)
    if isolation.exempt_from_resource_policies(name):
        verdict.exempt(f"{name} is run by Kubernetes itself; see kubeproof.checks.isolation.RESOURCE_POLICY_EXEMPT")
    quotas = snapshot.in_namespace("resourcequotas", name)
    verdict.observe(resource_quotas=isolation.quota_caps_by_name(quotas))
    verdict(isolation.resource_quota_findings(namespace, quotas))


def test_namespace_has_a_limit_range(namespace, snapshot, verdict):
    name = namespace_name(namespace)
    if isolation.exempt_from_resource_policies(name):
        verdict.exempt(f"{name} is run by Kubernetes itself; see kubeproof.checks.isolation.RESOURCE_POLICY_EXEMPT")
    ranges = snapshot.in_namespace("limitranges", name)
    verdict.observe(limit_ranges=isolation.limit_range_bounds_by_name(ranges))
    verdict(isolation.limit_range_findings(namespace, ranges))


def test_sensitive_workload_runs_only_on_dedicated_nodes(workload, baseline, snapshot, verdict):
    namespace = namespace_of(workload)
    if not baseline.is_sensitive(namespace):
        verdict.exempt(f"the baseline's isolation.sensitive_namespaces does not include {namespace}")
    nodes = snapshot.items("nodes")
    placed = isolation.placement(workload, nodes)
    verdict.observe(placement=placed.summary())
    verdict(isolation.dedicated_node_findings(workload, nodes, placed))
