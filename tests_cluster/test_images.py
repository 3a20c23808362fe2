"""Image provenance: every container (init and ephemeral ones too) runs an image from a registry the
baseline trusts, under a reference that cannot silently change, pulled so the node re-checks it."""

import pytest

from kubeproof.checks import images
from kubeproof.checks._workload import namespace_of

pytestmark = [pytest.mark.images, pytest.mark.nsa("Kubernetes Pod security")]


@pytest.mark.cis(*images.PROVENANCE_CONTROLS)
def test_images_come_from_allowed_registries(workload, baseline, verdict):
    if not baseline.allowed_registries:
        verdict.exempt("the baseline's images.allowed_registries is empty, which allows any registry")
    verdict.observe(allowed_registries=list(baseline.allowed_registries))
    verdict(images.registry_findings(workload, baseline.allowed_registries))


@pytest.mark.cis(*images.PROVENANCE_CONTROLS)
def test_images_are_not_latest_or_untagged(workload, verdict):
    verdict(images.mutable_tag_findings(workload))


@pytest.mark.cis(*images.PROVENANCE_CONTROLS)
def test_images_are_pinned_by_digest(workload, baseline, verdict):
    namespace = namespace_of(workload)
    if not baseline.requires_digest(namespace):
        verdict.exempt(f"the baseline's images.require_digest_namespaces does not include {namespace}")
    verdict(images.digest_findings(workload))


@pytest.mark.cis(*images.PROVENANCE_CONTROLS)
def test_mutable_images_are_always_pulled(workload, verdict):
    verdict(images.pull_policy_findings(workload))
