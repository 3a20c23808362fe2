"""etcd encryption at rest: the API server's encryption configuration, and the bytes in etcd."""

from __future__ import annotations

import yaml

from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "etcd encryption at rest"

CONFIG_CONTROLS = ("1.2.27", "1.2.28")
STORED_CONTROLS = ("1.2.28",)
# The CIS ids each test of tests_cluster/test_etcd_encryption.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_encryption_configuration_encrypts_secrets_first": CONFIG_CONTROLS,
    "test_every_stored_secret_is_encrypted": STORED_CONTROLS,
}
ENCRYPTING_PROVIDERS = ("aescbc", "aesgcm", "secretbox", "kms")
FLAG = "encryption-provider-config"
ENCRYPTED_PREFIX = "k8s:enc:"

_REMEDIATE_CONFIG = (
    "Give kube-apiserver --encryption-provider-config with a resources entry for secrets whose first "
    "provider encrypts (kms v2, aescbc, aesgcm or secretbox); identity first means new secrets are "
    "stored in plain text."
)
_REMEDIATE_STORED = (
    "Rewrite every secret so the API server stores it again through the encrypting provider, e.g. "
    "`kubectl get secrets -A -o json | kubectl replace -f -`, then check again."
)


def _covers_secrets(resources) -> bool:
    return any(r in ("secrets", "*.", "*.*") for r in resources if isinstance(r, str))


def secret_providers(flags: dict, files: dict) -> list[str] | str:
    """The provider types that apply to secrets, in order, for the evidence (names only)."""
    path = flags.get(FLAG)
    if not path:
        return "no encryption configuration"
    if path not in files:
        return "configuration file not readable from here"
    try:
        config = yaml.safe_load(files[path])
        for entry in config["resources"]:
            if _covers_secrets(entry["resources"]):
                return [next(iter(p), "?") for p in entry.get("providers") or [] if isinstance(p, dict)]
    except (yaml.YAMLError, TypeError, KeyError):
        return "configuration not readable as an EncryptionConfiguration"
    return "secrets not covered"


def provider_findings(flags: dict, files: dict, source: str) -> list[Finding]:
    """The configuration must cover secrets and list an encrypting provider first.

    `files` maps paths to their text where the suite could read them; the text holds key material
    and is only parsed here, never returned."""
    apiserver = ObjectRef("Component", "kube-apiserver")
    path = flags.get(FLAG)
    if not path:
        return [Finding(CONFIG_CONTROLS, apiserver, f"--{FLAG}", "not set",
                        "a configuration that encrypts secrets", _REMEDIATE_CONFIG)]
    if path not in files:
        raise NotVerified(
            f"--{FLAG}={path} is set ({source}), but the file lives on the control-plane node and is not "
            "readable from here; the etcd check is the proof for this cluster"
        )
    try:
        config = yaml.safe_load(files[path])
    except yaml.YAMLError:
        raise NotVerified(f"the encryption configuration {path} is not valid YAML") from None
    if not isinstance(config, dict) or not isinstance(config.get("resources"), list):
        raise NotVerified(f"the encryption configuration {path} has no resources list")
    for index, entry in enumerate(config["resources"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("resources"), list):
            raise NotVerified(f"{path}: resources[{index}] is malformed")
        if not _covers_secrets(entry["resources"]):
            continue
        # The API server uses the first entry that names a resource; its first provider writes.
        providers = entry.get("providers")
        if not isinstance(providers, list) or not providers or not isinstance(providers[0], dict):
            raise NotVerified(f"{path}: resources[{index}].providers is missing or malformed")
        first = next(iter(providers[0]), None)
        if first not in ENCRYPTING_PROVIDERS:
            return [Finding(CONFIG_CONTROLS, apiserver, f"{path}: resources[{index}].providers[0]", first,
                            f"one of {', '.join(ENCRYPTING_PROVIDERS)}", _REMEDIATE_CONFIG)]
        return []
    return [Finding(CONFIG_CONTROLS, apiserver, f"{path}: resources[*].resources", "secrets not listed",
                    "an entry covering secrets", _REMEDIATE_CONFIG)]


def secret_ref_from_key(key: str) -> ObjectRef:
    # /registry/secrets/<namespace>/<name>
    parts = key.split("/", 4)
    if len(parts) == 5 and parts[1] == "registry" and parts[2] == "secrets":
        return ObjectRef("Secret", parts[4], parts[3])
    return ObjectRef("EtcdKey", key)


def stored_secret_findings(headers: list[tuple[str, str | None]]) -> list[Finding]:
    """`headers` pairs each etcd key under /registry/secrets/ with the encryption header its value
    starts with ("k8s:enc:aescbc:v1:key1"), or None when the value does not start with k8s:enc:."""
    findings = []
    for key, header in headers:
        if not isinstance(key, str):
            raise NotVerified("an etcd key could not be decoded")
        if header is not None and not isinstance(header, str):
            # Neither "plain" nor "encrypted" can be read from it; guessing either would be wrong.
            raise NotVerified(f"the stored header of etcd {key} could not be read")
        if header is None or not header.startswith(ENCRYPTED_PREFIX):
            findings.append(Finding(STORED_CONTROLS, secret_ref_from_key(key), f"etcd {key}",
                                    "stored without the k8s:enc: prefix (plain text)",
                                    "a value that starts with k8s:enc:", _REMEDIATE_STORED))
    return findings
