"""Secrets handling: secrets handed to containers as environment variables (CIS 5.4.1), credentials
written literally into a pod template, long-lived service-account token secrets, and the default
ServiceAccount's token (CIS 5.1.5, 5.1.6).

No value ever leaves these functions: a finding names the variable, the container, the secret and
the key, never what they hold; a NotVerified reason names types, never contents."""

from __future__ import annotations

import re

from kubeproof.checks._shape import listing, mapping, metadata, text
from kubeproof.checks._workload import Container, PodTemplate, pod_template
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Secrets handling"

ENV_CONTROLS = ("5.4.1",)
DEFAULT_ACCOUNT_CONTROLS = ("5.1.5", "5.1.6")
DEFAULT_IDENTITY_CONTROLS = ("5.1.5",)
# No CIS 1.12 control is about legacy token secrets; the NSA guide's "protecting Pod service account
# tokens" is where they belong, and the test carries that marker.
TOKEN_SECRET_CONTROLS: tuple[str, ...] = ()
# The CIS ids each test of tests_cluster/test_secrets.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_secrets_are_not_passed_as_environment_variables": ENV_CONTROLS,
    "test_no_credential_is_written_into_environment_variables": ENV_CONTROLS,
    "test_no_long_lived_service_account_token_is_stored": TOKEN_SECRET_CONTROLS,
    "test_default_service_account_does_not_mount_its_token": DEFAULT_ACCOUNT_CONTROLS,
    "test_workload_does_not_use_the_default_service_account": DEFAULT_IDENTITY_CONTROLS,
}

# Secrets listed as metadata (PartialObjectMetadata) carry no `type`. API validation refuses a secret
# of type kubernetes.io/service-account-token without the name annotation, and the token controller
# adds the uid one, so every such secret carries at least one of them: judging by them never misses a
# token secret. It can over-report a secret of another type that copies the annotation; that is a
# finding to look at, not a silent pass.
SERVICE_ACCOUNT_ANNOTATIONS = ("kubernetes.io/service-account.name", "kubernetes.io/service-account.uid")
DEFAULT_ACCOUNT = "default"

_REMEDIATE_ENV = (
    "Mount the secret as a volume (a secret or projected volume) and have the application read the file; "
    "environment variables are copied into child processes, crash dumps and `kubectl describe` output."
)
_REMEDIATE_LITERAL = (
    "Move the value into a Secret, mount it as a file, and rotate it: it has been readable by everyone "
    "who can read this workload's spec."
)
_REMEDIATE_TOKEN_SECRET = (
    "Delete the secret and let pods use the short-lived, audience-bound tokens the kubelet projects "
    "(TokenRequest); if a client outside the cluster needs a token, issue one with an expiry."
)
_REMEDIATE_DEFAULT_ACCOUNT = (
    "Set automountServiceAccountToken: false on the namespace's default ServiceAccount, and give the "
    "workloads that call the API a ServiceAccount of their own."
)
_REMEDIATE_DEFAULT_IDENTITY = (
    "Create a ServiceAccount for this workload and set spec.serviceAccountName, or, if it never calls "
    "the API, set automountServiceAccountToken: false so it holds no credential."
)


# -- secrets as environment variables (CIS 5.4.1) ---------------------------------------------------
def _env(template: PodTemplate, container: Container) -> list[tuple[int, dict]]:
    where = f"{template.ref} {container.path}.env"
    return [(i, mapping(v, f"{where}[{i}]")) for i, v in enumerate(listing(container.fields.get("env"), where))]


def _shown(value) -> str:
    # Names of secrets and keys are metadata, not contents; anything else is shown by type only.
    return repr(value) if isinstance(value, str) and value else "(unnamed)"


def secret_env_findings(workload) -> list[Finding]:
    template = pod_template(workload)
    findings = []
    for container in template.containers:
        for index, variable in _env(template, container):
            name = text(variable.get("name"), f"{template.ref} {container.path}.env[{index}].name")
            source = mapping(variable.get("valueFrom"), f"{template.ref} {container.path}.env[{index}].valueFrom")
            if source.get("secretKeyRef") is None:
                continue
            reference = mapping(source["secretKeyRef"], f"{template.ref} {container.path}.env[{index}].valueFrom.secretKeyRef")
            findings.append(Finding(
                ENV_CONTROLS, template.ref, f"{container.path}.env[{index}].valueFrom.secretKeyRef",
                f"{name} in {container.describe()} takes key {_shown(reference.get('key'))} of secret "
                f"{_shown(reference.get('name'))}",
                "secrets mounted as files, not passed in environment variables", _REMEDIATE_ENV))
        where = f"{template.ref} {container.path}.envFrom"
        for index, source in enumerate(listing(container.fields.get("envFrom"), where)):
            source = mapping(source, f"{where}[{index}]")
            if source.get("secretRef") is None:
                continue
            reference = mapping(source["secretRef"], f"{where}[{index}].secretRef")
            findings.append(Finding(
                ENV_CONTROLS, template.ref, f"{container.path}.envFrom[{index}].secretRef",
                f"{container.describe()} takes every key of secret {_shown(reference.get('name'))} as variables",
                "secrets mounted as files, not passed in environment variables", _REMEDIATE_ENV))
    return findings


# -- credentials written into the spec --------------------------------------------------------------
# Words that name a credential wherever they appear in a variable name ...
_CREDENTIAL_WORDS = ("password", "passwd", "passphrase", "secret", "credential")
# ... words that do when they end a part of the name (API_TOKEN, authToken, API_KEY, DB_PASS) ...
_CREDENTIAL_ENDINGS = ("token", "tokens")
_CREDENTIAL_LAST_PARTS = {"key", "keys", "apikey", "pass", "creds", "pat"}
# ... and last parts that say the variable holds something *about* a credential, not the credential:
# PASSWORD_FILE points at the mounted secret (the practice this module asks for), SECRET_NAME names one.
_ABOUT_A_CREDENTIAL = {
    "file", "files", "path", "dir", "directory", "name", "names", "ref", "url", "uri", "endpoint", "id",
    "type", "ttl", "length", "size", "enabled", "timeout", "expiry", "header", "location", "mode",
    "prefix", "suffix", "format", "algorithm", "version", "namespace",
}
# `$(OTHER)` only expands another variable of the container; it holds no literal.
_ONLY_REFERENCES = re.compile(r"(?:\$\([A-Za-z_][A-Za-z0-9_.-]*\))+")


def name_parts(name: str) -> list[str]:
    """DB_PASSWORD -> [db, password]; apiKey -> [api, key]; HTTPSProxy -> [https, proxy]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
    return [part for part in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if part]


def looks_like_a_credential(name: str) -> bool:
    parts = name_parts(name)
    if not parts or parts[-1] in _ABOUT_A_CREDENTIAL:
        return False
    if any(word in part for part in parts for word in _CREDENTIAL_WORDS):
        return True
    if any(part.endswith(_CREDENTIAL_ENDINGS) for part in parts):
        return True
    return parts[-1] in _CREDENTIAL_LAST_PARTS


def literal_secret_env_findings(workload) -> list[Finding]:
    template = pod_template(workload)
    findings = []
    for container in template.containers:
        for index, variable in _env(template, container):
            name = text(variable.get("name"), f"{template.ref} {container.path}.env[{index}].name")
            value = variable.get("value")
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise NotVerified(f"{template.ref} {container.path}.env[{index}].value is a {type(value).__name__}, "
                                  "not a string; it cannot be judged")
            if not looks_like_a_credential(name) or _ONLY_REFERENCES.fullmatch(value):
                continue
            findings.append(Finding(
                ENV_CONTROLS, template.ref, f"{container.path}.env[{index}].value",
                f"{name} in {container.describe()} is set to a literal value (not shown)",
                "credentials taken from a Secret mounted as a file, never written into the spec",
                _REMEDIATE_LITERAL))
    return findings


# -- long-lived service-account token secrets ------------------------------------------------------
def token_secret_account(secret) -> str | None:
    """The ServiceAccount a secret holds a long-lived token for, judged from metadata only; None
    when the secret is not a service-account token."""
    meta = metadata(secret, "secret")
    annotations = mapping(meta.get("annotations"), "secret metadata.annotations")
    present = [key for key in SERVICE_ACCOUNT_ANNOTATIONS if key in annotations]
    if not present:
        return None
    account = annotations.get(SERVICE_ACCOUNT_ANNOTATIONS[0])
    return account if isinstance(account, str) and account else f"(named by {present[0]} only)"


def service_account_token_findings(secret) -> list[Finding]:
    account = token_secret_account(secret)
    if account is None:
        return []
    return [Finding(TOKEN_SECRET_CONTROLS, ObjectRef.of(secret, "Secret"),
                    f"metadata.annotations[{SERVICE_ACCOUNT_ANNOTATIONS[0]}]",
                    f"a non-expiring token secret for ServiceAccount {account}",
                    "no long-lived service-account token secrets; short-lived projected tokens instead",
                    _REMEDIATE_TOKEN_SECRET)]


# -- the default ServiceAccount (CIS 5.1.5, 5.1.6) -------------------------------------------------
def default_service_account(service_accounts) -> dict | None:
    for index, account in enumerate(listing(service_accounts, "the namespace's ServiceAccounts")):
        if metadata(account, f"ServiceAccount [{index}]")["name"] == DEFAULT_ACCOUNT:
            return account
    return None


def _automount(value, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise NotVerified(f"{where} is a {type(value).__name__}, not true or false; it cannot be judged")


def default_service_account_findings(namespace: str, service_accounts) -> list[Finding]:
    account = default_service_account(service_accounts)
    if account is None:
        # The controller-manager creates it with every namespace; missing, it is being (re)made, or
        # the controller is not running, and its setting cannot be seen.
        raise NotVerified(f"namespace {namespace} has no default ServiceAccount to judge")
    ref = ObjectRef.of(account, "ServiceAccount")
    setting = _automount(account.get("automountServiceAccountToken"), f"{ref} automountServiceAccountToken")
    if setting is False:
        return []
    observed = "true" if setting else "unset (tokens are mounted)"
    return [Finding(DEFAULT_ACCOUNT_CONTROLS, ref, "automountServiceAccountToken", observed, "false",
                    _REMEDIATE_DEFAULT_ACCOUNT)]


def service_account_of(workload) -> str:
    template = pod_template(workload)
    for field in ("serviceAccountName", "serviceAccount"):  # the second is the deprecated alias
        value = text(template.spec.get(field), f"{template.ref} {template.spec_path}.{field}", required=False)
        if value:
            return value
    return DEFAULT_ACCOUNT


MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def is_mirror_pod(workload) -> bool:
    """A static pod's mirror in the API. The kubelet runs static pods without any ServiceAccount (the
    API server refuses a mirror pod that names one or mounts an API token), so an empty
    serviceAccountName there does not mean the default account's token is mounted."""
    if not isinstance(workload, dict) or workload.get("kind") != "Pod":
        return False
    annotations = (workload.get("metadata") or {}).get("annotations") or {}
    if not isinstance(annotations, dict) or MIRROR_ANNOTATION not in annotations:
        return False
    # The annotation alone is not trusted: a pod that does carry an API token is judged as any other.
    volumes = (workload.get("spec") or {}).get("volumes") or []
    return not any(isinstance(v, dict) and _carries_token(v) for v in volumes)


def _carries_token(volume: dict) -> bool:
    sources = ((volume.get("projected") or {}).get("sources") or []) if isinstance(volume.get("projected"), dict) else []
    return any(isinstance(source, dict) and "serviceAccountToken" in source for source in sources)


def default_identity_findings(workload, default_account: dict | None) -> list[Finding]:
    """A workload runs as the default ServiceAccount with its token mounted. Running as it with no
    token mounted holds no credential of it, so it is not "using" it (CIS 5.1.5's concern)."""
    template = pod_template(workload)
    if service_account_of(workload) != DEFAULT_ACCOUNT or is_mirror_pod(workload):
        return []
    pod_setting = _automount(template.spec.get("automountServiceAccountToken"),
                             f"{template.ref} {template.spec_path}.automountServiceAccountToken")
    account_setting = None
    if default_account is not None:
        account_setting = _automount(mapping(default_account, "the default ServiceAccount").get("automountServiceAccountToken"),
                                     "the default ServiceAccount's automountServiceAccountToken")
    mounted = pod_setting if pod_setting is not None else account_setting is not False
    if not mounted:
        return []
    said = {None: "unset", True: "true", False: "false"}
    account_said = said[account_setting] if default_account is not None else "not found"
    return [Finding(DEFAULT_IDENTITY_CONTROLS, template.ref, f"{template.spec_path}.serviceAccountName",
                    f"default, with its token mounted (pod automountServiceAccountToken: {said[pod_setting]}; "
                    f"default ServiceAccount: {account_said})",
                    "a ServiceAccount of the workload's own, or no token mounted", _REMEDIATE_DEFAULT_IDENTITY)]
