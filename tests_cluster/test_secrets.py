"""Secrets handling: secrets reach containers as files, no credential is written into a pod spec, no
long-lived service-account tokens are stored, and the default ServiceAccount lends no token.

Evidence here holds names only (variables, containers, secrets, keys); values never leave the checks."""

import pytest

from kubeproof.checks import secrets
from kubeproof.checks._workload import namespace_of
from kubeproof.checks.pod_security_admission import namespace_name

pytestmark = [pytest.mark.secrets, pytest.mark.nsa("Network separation and hardening")]


@pytest.mark.cis(*secrets.ENV_CONTROLS)
def test_secrets_are_not_passed_as_environment_variables(workload, verdict):
    verdict(secrets.secret_env_findings(workload))


@pytest.mark.cis(*secrets.ENV_CONTROLS)
def test_no_credential_is_written_into_environment_variables(workload, verdict):
    verdict(secrets.literal_secret_env_findings(workload))


# No CIS 1.12 control covers stored token secrets; see kubeproof.checks.secrets.TOKEN_SECRET_CONTROLS.
@pytest.mark.nsa("Kubernetes Pod security")
def test_no_long_lived_service_account_token_is_stored(secret, verdict):
    verdict.observe(service_account=secrets.token_secret_account(secret))
    verdict(secrets.service_account_token_findings(secret))


@pytest.mark.cis(*secrets.DEFAULT_ACCOUNT_CONTROLS)
@pytest.mark.nsa("Kubernetes Pod security")
def test_default_service_account_does_not_mount_its_token(namespace, snapshot, verdict):
    name = namespace_name(namespace)
    verdict(secrets.default_service_account_findings(name, snapshot.in_namespace("serviceaccounts", name)))


@pytest.mark.cis(*secrets.DEFAULT_IDENTITY_CONTROLS)
@pytest.mark.nsa("Kubernetes Pod security")
def test_workload_does_not_use_the_default_service_account(workload, snapshot, verdict):
    account = secrets.default_service_account(snapshot.in_namespace("serviceaccounts", namespace_of(workload)))
    verdict.observe(service_account=secrets.service_account_of(workload))
    verdict(secrets.default_identity_findings(workload, account))
