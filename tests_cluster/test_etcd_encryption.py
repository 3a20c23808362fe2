"""Secrets are encrypted at rest: by configuration, and in the bytes etcd actually holds."""

from collections import Counter

import pytest

from kubeproof.checks import encryption

pytestmark = [pytest.mark.encryption, pytest.mark.nsa("Protecting data at rest: encrypt secrets in etcd")]


@pytest.mark.cis("1.2.27", "1.2.28")
def test_encryption_configuration_encrypts_secrets_first(snapshot, verdict):
    apiserver = snapshot.component_config("kube-apiserver")
    verdict.observe(source=apiserver.source, flag=apiserver.flags.get(encryption.FLAG, "not set"))
    verdict.observe(providers_for_secrets=encryption.secret_providers(apiserver.flags, apiserver.files))
    verdict(encryption.provider_findings(apiserver.flags, apiserver.files, apiserver.source))


@pytest.mark.cis("1.2.28")
def test_every_stored_secret_is_encrypted(snapshot, verdict):
    stored = snapshot.etcd_secrets()
    verdict.observe(keys_read=len(stored), headers=dict(Counter(header or "plain text" for _, header in stored)))
    verdict(encryption.stored_secret_findings(stored))
