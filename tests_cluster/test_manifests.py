"""--manifests: every object in the repository is accepted by the real API server (server-side apply
through the whole admission chain). Only collected when a folder of manifests was applied."""

import pytest

from kubeproof.checks import manifests

pytestmark = [pytest.mark.manifests, pytest.mark.nsa("Upgrading and application security practices")]


def test_manifest_is_accepted_by_the_api_server(manifest, verdict):
    kind, namespace, name = manifest.key()
    verdict.observe(source=manifest.where, api_answer=manifest.answer)
    verdict(manifests.rejection_findings(manifest.where, kind, namespace, name, manifest.outcome, manifest.answer))
