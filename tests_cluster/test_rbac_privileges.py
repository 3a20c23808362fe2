"""RBAC least privilege, binding by binding: nobody outside Kubernetes' own identities is given the
permissions that hand over the cluster. Every grant found is confirmed by the API server's own
authorizer (a SubjectAccessReview), whose answer is kept as evidence."""

import pytest

from kubeproof.checks import rbac_privileges as privileges
from kubeproof.rbac_effective import Policy

pytestmark = [pytest.mark.rbac, pytest.mark.nsa("Authentication and authorization")]


@pytest.fixture(scope="module")
def rbac_policy(snapshot):
    return Policy(
        roles=snapshot.items("roles"),
        clusterroles=snapshot.items("clusterroles"),
        rolebindings=snapshot.items("rolebindings"),
        clusterrolebindings=snapshot.items("clusterrolebindings"),
        serviceaccounts=snapshot.items("serviceaccounts"),
    )


def judge(control: str, binding, rbac_policy, baseline, probes, verdict) -> None:
    try:
        assessment = privileges.assess(control, binding, rbac_policy, baseline)
    except privileges.AuthorizerDisagrees as error:
        pytest.fail(str(error), pytrace=False)
    verdict.observe(**assessment.facts())
    reason = assessment.exempt_reason()
    if reason:
        verdict.exempt(reason)
    outcomes, reviews = {}, []
    for key, spec in assessment.reviews():
        answer = probes.access_review(spec)
        reviews.append({"subject": key[0], "request": key[1].describe(), "status": answer.status})
        verdict.observe(access_reviews=reviews)
        outcome = privileges.review_outcome(answer.status, answer.body, answer.message)
        reviews[-1].update(outcome)
        outcomes[key] = outcome
    try:
        findings = privileges.confirmed_findings(assessment, outcomes)
    except privileges.AuthorizerDisagrees as error:
        pytest.fail(str(error), pytrace=False)
    verdict(findings)


@pytest.mark.cis("5.1.2")
def test_binding_grants_no_read_access_to_secrets(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.2", binding, rbac_policy, baseline, probes, verdict)


@pytest.mark.cis("5.1.4")
def test_binding_grants_no_pod_creation(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.4", binding, rbac_policy, baseline, probes, verdict)


@pytest.mark.cis("5.1.5")
def test_binding_grants_nothing_to_default_service_accounts(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.5", binding, rbac_policy, baseline, probes, verdict)


@pytest.mark.cis("5.1.7")
def test_binding_does_not_name_system_masters(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.7", binding, rbac_policy, baseline, probes, verdict)


@pytest.mark.cis("5.1.8")
def test_binding_grants_no_bind_escalate_or_impersonate(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.8", binding, rbac_policy, baseline, probes, verdict)


@pytest.mark.cis("5.1.9")
def test_binding_grants_no_persistent_volume_creation(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.9", binding, rbac_policy, baseline, probes, verdict)


@pytest.mark.cis("5.1.10")
def test_binding_grants_no_node_proxy_access(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.10", binding, rbac_policy, baseline, probes, verdict)


@pytest.mark.cis("5.1.11")
def test_binding_grants_no_certificate_approval(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.11", binding, rbac_policy, baseline, probes, verdict)


@pytest.mark.cis("5.1.12")
def test_binding_grants_no_webhook_configuration_changes(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.12", binding, rbac_policy, baseline, probes, verdict)


@pytest.mark.cis("5.1.13")
def test_binding_grants_no_service_account_token_creation(binding, rbac_policy, baseline, probes, verdict):
    judge("5.1.13", binding, rbac_policy, baseline, probes, verdict)
