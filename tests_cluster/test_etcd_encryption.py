"""Secrets are encrypted at rest: by configuration, and in the bytes etcd actually holds."""

from collections import Counter

import pytest

from kubeproof.checks import etcd_encryption

pytestmark = [pytest.mark.etcd_encryption, pytest.mark.nsa("Protecting data at rest: encrypt secrets in etcd")]


@pytest.mark.cis(*etcd_encryption.CONFIG_CONTROLS)
def test_encryption_configuration_encrypts_secrets_first(snapshot, verdict):
    apiserver = snapshot.component_config("kube-apiserver")
    verdict.observe(source=apiserver.source, flag=apiserver.flags.get(etcd_encryption.FLAG, "not set"))
    verdict.observe(providers_for_secrets=etcd_encryption.secret_providers(apiserver.flags, apiserver.files))
    verdict(etcd_encryption.provider_findings(apiserver.flags, apiserver.files, apiserver.source))


@pytest.mark.cis(*etcd_encryption.STORED_CONTROLS)
def test_every_stored_secret_is_encrypted(snapshot, verdict):
    stored = snapshot.etcd_secrets()
    verdict.observe(keys_read=len(stored), headers=dict(Counter(header or "plain text" for _, header in stored)))
    verdict(etcd_encryption.stored_secret_findings(stored))
