"""RBAC least privilege, binding by binding: nobody outside Kubernetes' own identities is given the
permissions that hand over the cluster. One result per binding, since the binding is what a person
fixes; each finding names the CIS control it breaks. Every grant found is confirmed by the API
server's own authorizer (a SubjectAccessReview), whose answer is kept as evidence."""

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


def ask_the_authorizer(questions, probes, verdict) -> dict:
    """Each grant the engine found, put to the API server as a SubjectAccessReview; the answers are evidence."""
    reviews, outcomes = [], {}
    for key, spec in questions:
        answer = probes.access_review(spec)
        reviews.append({"subject": key[0], "request": key[1].describe(), "status": answer.status})
        verdict.observe(access_reviews=reviews)
        outcomes[key] = privileges.review_outcome(answer.status, answer.body, answer.message)
        reviews[-1].update(outcomes[key])
    return outcomes


@pytest.mark.cis(*privileges.CONTROL_IDS)
def test_binding_grants_no_permission_that_hands_over_the_cluster(binding, rbac_policy, baseline, probes, verdict):
    try:
        judged = privileges.assess_binding(binding, rbac_policy, baseline)
        verdict.observe(**judged.facts())
        findings = privileges.confirmed_binding_findings(judged, ask_the_authorizer(judged.reviews(), probes, verdict))
    except privileges.AuthorizerDisagrees as error:
        pytest.fail(str(error), pytrace=False)
    reason = judged.exempt_reason()
    if reason:
        verdict.exempt(reason)
    verdict(findings)
