"""RBAC least privilege: no wildcard grants, and cluster-admin only where the baseline allows it."""

import pytest

from kubeproof.checks import rbac

pytestmark = [pytest.mark.rbac, pytest.mark.nsa("Authentication and authorization")]


@pytest.mark.cis(*rbac.WILDCARD_CONTROLS)
def test_role_grants_no_wildcards(role, baseline, verdict):
    verdict(rbac.wildcard_findings(role, baseline))


@pytest.mark.cis(*rbac.CLUSTER_ADMIN_CONTROLS)
def test_cluster_admin_is_bound_only_to_allowed_subjects(binding, baseline, verdict):
    verdict.observe(role=rbac.role_ref(binding), subjects=rbac.subjects(binding))
    verdict(rbac.cluster_admin_findings(binding, baseline))
