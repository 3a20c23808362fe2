"""Nobody gets in without credentials, and RBAC grants nothing to those who try."""

import pytest

from kubeproof.checks import anonymous_access

pytestmark = [pytest.mark.anonymous_access, pytest.mark.nsa("Authentication and authorization")]


@pytest.mark.cis(*anonymous_access.PROBE_CONTROLS)
@pytest.mark.parametrize("path", anonymous_access.PROBE_PATHS)
def test_unauthenticated_request_is_refused(probes, path, verdict):
    answer = probes.anonymous(path)
    verdict.observe(answer=answer.summary())
    verdict(anonymous_access.probe_findings(path, answer.status, answer.message))


@pytest.mark.cis(*anonymous_access.BINDING_CONTROLS)
def test_binding_grants_nothing_to_unauthenticated_users(binding, baseline, verdict):
    verdict(anonymous_access.binding_findings(binding, baseline))
