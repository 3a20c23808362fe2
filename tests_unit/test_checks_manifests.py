"""Unit tests for kubeproof.checks.manifests: an object of a configuration repository the API server
refuses is a finding that points at the file and line it came from; one never applied is not verified."""

from __future__ import annotations

import pytest

from kubeproof.checks import manifests
from kubeproof.results import NotVerified, ObjectRef

WHERE = "apps/web.yaml:12"


def test_an_applied_object_passes():
    assert manifests.rejection_findings(WHERE, "Deployment", "shop", "web", "applied", {"status": 200}) == []


def test_a_rejected_object_is_a_finding_at_its_source():
    answer = {"status": 422, "message": "spec.replicas: Invalid value: -1"}
    [finding] = manifests.rejection_findings(WHERE, "Deployment", "shop", "web", "rejected", answer)
    assert finding.object == ObjectRef("Deployment", "web", "shop")
    assert finding.path == WHERE
    assert finding.observed == "rejected (HTTP 422): spec.replicas: Invalid value: -1"
    assert finding.controls == ()


def test_an_object_without_kind_or_name_is_still_reported():
    [finding] = manifests.rejection_findings(WHERE, None, None, "", "rejected", {"status": 400})
    assert finding.object == ObjectRef("?", "?", None)


@pytest.mark.parametrize("outcome", ["skipped", "", None])
def test_an_object_never_applied_is_not_verified(outcome):
    with pytest.raises(NotVerified, match=WHERE):
        manifests.rejection_findings(WHERE, "ConfigMap", "shop", "settings", outcome, {})
