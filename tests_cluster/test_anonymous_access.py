"""Nobody gets in without credentials, and RBAC grants nothing to those who try."""

import pytest

from kubeproof.checks import anonymous

pytestmark = [pytest.mark.anonymous_access, pytest.mark.nsa("Authentication and authorization")]


@pytest.mark.cis("1.2.1")
@pytest.mark.parametrize("path", anonymous.PROBE_PATHS)
def test_unauthenticated_request_is_refused(probes, path, verdict):
    answer = probes.anonymous(path)
    verdict.observe(answer=answer.summary())
    verdict(anonymous.probe_findings(path, answer.status, answer.message))


@pytest.mark.cis("1.2.1", "5.1.1")
def test_binding_grants_nothing_to_unauthenticated_users(binding, baseline, verdict):
    verdict(anonymous.binding_findings(binding, baseline))
