"""Unit tests for kubeproof.checks.etcd_encryption (the EncryptionConfiguration and the stored secrets) and
kubeproof.backends.etcd.encryption_header. Key material must never reach any output."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, NAMES, PROPERTY, mangled, never_passes, outcome, protect_prefixes

from kubeproof.backends.etcd import PREFIX_BYTES, encryption_header
from kubeproof.checks import etcd_encryption
from kubeproof.results import NotVerified, ObjectRef

PATH = "/etc/kubernetes/enc/config.yaml"
FLAGS = {etcd_encryption.FLAG: PATH}
APISERVER = ObjectRef("Component", "kube-apiserver")
KEY = "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Cg=="  # base64 of the key; must never be shown
KEY_PLAIN = base64.b64decode(KEY).decode()
KMS_ENDPOINT = "unix:///var/run/kms-plugin/socket.sock"


def provider(kind: str) -> dict:
    if kind == "identity":
        return {"identity": {}}
    if kind == "kms":
        return {"kms": {"apiVersion": "v2", "name": "vault", "endpoint": KMS_ENDPOINT, "timeout": "3s"}}
    return {kind: {"keys": [{"name": "key1", "secret": KEY}]}}


def config(*entries: tuple[list[str], list[str]]) -> dict:
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{"resources": resources, "providers": [provider(p) for p in providers]}
                      for resources, providers in entries],
    }


def files(document) -> dict:
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    return {PATH: text}


def check(document):
    return etcd_encryption.provider_findings(FLAGS, files(document), "unit test")


def shown(result) -> str:
    """Everything a result puts in front of a reader: findings, their descriptions, NotVerified reasons."""
    if isinstance(result, NotVerified):
        return result.reason
    return "\n".join(json.dumps(f.to_dict(), default=str) + f.describe() for f in result)


def assert_no_key_material(text: str) -> None:
    assert KEY not in text
    assert KEY_PLAIN not in text
    assert "c2VjcmV0" not in text


# -- the configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize("flags", [{}, {etcd_encryption.FLAG: ""}, {"other-flag": PATH}])
def test_flag_missing_is_a_finding(flags):
    [finding] = etcd_encryption.provider_findings(flags, files(config((["secrets"], ["aescbc"]))), "unit test")
    assert finding.controls == ("1.2.27", "1.2.28")
    assert finding.object == APISERVER
    assert finding.path == "--encryption-provider-config"
    assert finding.observed == "not set"
    assert etcd_encryption.secret_providers(flags, {}) == "no encryption configuration"


def test_configuration_file_not_readable_is_not_verified():
    with pytest.raises(NotVerified) as raised:
        etcd_encryption.provider_findings(FLAGS, {}, "mirror pod kube-system/kube-apiserver-cp")
    assert PATH in raised.value.reason and "mirror pod" in raised.value.reason
    assert etcd_encryption.secret_providers(FLAGS, {}) == "configuration file not readable from here"


def test_identity_first_is_a_finding_naming_identity():
    [finding] = check(config((["secrets"], ["identity", "aescbc"])))
    assert finding.controls == ("1.2.27", "1.2.28")
    assert finding.object == APISERVER
    assert finding.path == f"{PATH}: resources[0].providers[0]"
    assert finding.observed == "identity"
    assert_no_key_material(shown([finding]))


@pytest.mark.parametrize("first", ["aescbc", "aesgcm", "secretbox", "kms"])
def test_encrypting_provider_first_passes(first):
    assert check(config((["secrets"], [first, "identity"]))) == []


@pytest.mark.parametrize("covering", ["*.", "*.*"])
def test_wildcard_resources_cover_secrets(covering):
    assert check(config((["configmaps"], ["identity"]), ([covering], ["aescbc"]))) == []
    [finding] = check(config(([covering], ["identity", "aescbc"])))
    assert finding.path == f"{PATH}: resources[0].providers[0]"


def test_the_first_entry_covering_secrets_decides():
    # The API server uses the first entry that names a resource; later entries do not rescue it.
    [finding] = check(config((["configmaps"], ["aescbc"]), (["secrets"], ["identity"]), (["*.*"], ["aescbc"])))
    assert finding.path == f"{PATH}: resources[1].providers[0]"
    assert check(config((["configmaps"], ["identity"]), (["secrets", "configmaps"], ["kms", "identity"]))) == []


@pytest.mark.parametrize("resources", [["configmaps"], ["secrets.apps"], ["Secrets"], ["*.apps"], []])
def test_secrets_not_covered_is_a_finding(resources):
    [finding] = check(config((resources, ["aescbc"])))
    assert finding.path == f"{PATH}: resources[*].resources"
    assert finding.observed == "secrets not listed"
    assert etcd_encryption.secret_providers(FLAGS, files(config((resources, ["aescbc"])))) == "secrets not covered"


def test_no_entries_at_all_is_a_finding():
    [finding] = check({"kind": "EncryptionConfiguration", "resources": []})
    assert finding.observed == "secrets not listed"


def test_an_empty_provider_is_a_finding_not_a_pass():
    document = config((["secrets"], ["aescbc"]))
    document["resources"][0]["providers"][0] = {}
    [finding] = check(document)
    assert finding.observed is None


@pytest.mark.parametrize("document", [
    "resources: [unclosed",
    "just text",
    "",
    "- resources: [secrets]",
    {"kind": "EncryptionConfiguration"},
    {"resources": {"secrets": ["aescbc"]}},
    {"resources": ["secrets"]},
    {"resources": [{"resources": "secrets", "providers": [{"aescbc": {}}]}]},
    {"resources": [{"resources": ["secrets"]}]},
    {"resources": [{"resources": ["secrets"], "providers": []}]},
    {"resources": [{"resources": ["secrets"], "providers": "aescbc"}]},
    {"resources": [{"resources": ["secrets"], "providers": ["aescbc"]}]},
], ids=repr)
def test_unreadable_configurations_are_not_verified(document):
    with pytest.raises(NotVerified) as raised:
        check(document)
    assert_no_key_material(raised.value.reason)


def test_secret_providers_names_providers_only():
    document = config((["configmaps"], ["identity"]), (["secrets"], ["aescbc", "kms", "identity"]))
    names = etcd_encryption.secret_providers(FLAGS, files(document))
    assert names == ["aescbc", "kms", "identity"]
    assert_no_key_material(repr(names))
    assert KMS_ENDPOINT not in repr(names)


@pytest.mark.parametrize("text", ["resources: [unclosed", "7", "resources: 3", "resources: [{resources: 3}]"])
def test_secret_providers_of_an_unreadable_configuration(text):
    assert etcd_encryption.secret_providers(FLAGS, {PATH: text}) == "configuration not readable as an EncryptionConfiguration"


def test_key_material_never_appears_in_any_output():
    variants = [
        config((["secrets"], ["aescbc"])),
        config((["secrets"], ["identity", "aescbc", "secretbox"])),
        config((["*.*"], ["aesgcm"])),
        config((["configmaps"], ["aescbc"])),
        config((["secrets"], ["kms", "aescbc"])),
    ]
    for document in variants:
        text = yaml.safe_dump(document)
        assert KEY in text  # the fixture really holds key material
        assert_no_key_material(shown(outcome(check, text)))
        assert_no_key_material(repr(etcd_encryption.secret_providers(FLAGS, {PATH: text})))


# -- stored secrets --------------------------------------------------------------------------------
def test_encrypted_secrets_pass():
    headers = [("/registry/secrets/a/one", "k8s:enc:aescbc:v1:key1"), ("/registry/secrets/b/two", "k8s:enc:kms:v2:vault")]
    assert etcd_encryption.stored_secret_findings(headers) == []


def test_no_secrets_no_findings():
    assert etcd_encryption.stored_secret_findings([]) == []


def test_a_plain_secret_is_a_finding_naming_the_secret():
    headers = [("/registry/secrets/a/one", "k8s:enc:aescbc:v1:key1"), ("/registry/secrets/kube-system/token", None)]
    [finding] = etcd_encryption.stored_secret_findings(headers)
    assert finding.controls == ("1.2.28",)
    assert finding.object == ObjectRef("Secret", "token", "kube-system")
    assert finding.path == "etcd /registry/secrets/kube-system/token"
    assert "plain text" in finding.observed


def test_a_header_without_the_prefix_is_a_finding():
    [finding] = etcd_encryption.stored_secret_findings([("/registry/secrets/a/one", "k8s:identity")])
    assert finding.object == ObjectRef("Secret", "one", "a")


def test_an_unusual_key_is_named_as_an_etcd_key():
    [finding] = etcd_encryption.stored_secret_findings([("/custom-prefix/secrets/a/one", None)])
    assert finding.object == ObjectRef("EtcdKey", "/custom-prefix/secrets/a/one")
    assert etcd_encryption.secret_ref_from_key("/registry/secrets/ns") == ObjectRef("EtcdKey", "/registry/secrets/ns")


@pytest.mark.parametrize("pair", [(b"/registry/secrets/a/b", None), (None, "k8s:enc:aescbc:v1:k"),
                                  ("/registry/secrets/a/b", b"k8s:enc:aescbc:v1:k"), ("/registry/secrets/a/b", 0)],
                         ids=repr)
def test_undecodable_entries_are_not_verified(pair):
    with pytest.raises(NotVerified):
        etcd_encryption.stored_secret_findings([("/registry/secrets/x/y", "k8s:enc:aescbc:v1:k"), pair])


# -- etcd: the header and nothing else -------------------------------------------------------------
CIPHERTEXT = b"\x8a\x01SUPERSECRETPAYLOAD-" + bytes(range(256))


@pytest.mark.parametrize("value", [
    b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x20password=SUPERSECRET",  # protobuf, unencrypted
    b'{"kind":"Secret","data":{"password":"U1VQRVJTRUNSRVQ="}}',
    b"",
    b"k8s:en",
    b"K8S:ENC:aescbc:v1:key1:" + CIPHERTEXT,
])
def test_a_plain_value_gives_none(value):
    assert encryption_header(value) is None


@pytest.mark.parametrize("header", ["k8s:enc:aescbc:v1:key1", "k8s:enc:secretbox:v1:key1", "k8s:enc:aesgcm:v1:k",
                                    "k8s:enc:kms:v2:vault", "k8s:enc:kms:v1:my-plugin"])
def test_an_encrypted_value_gives_the_header_only(header):
    for tail in (CIPHERTEXT, b"ASCIIONLYCIPHERTEXT:with:colons", b""):
        found = encryption_header(header.encode() + b":" + tail)
        assert found == header
        assert b"SUPERSECRET" not in found.encode() and "ASCII" not in found


def test_a_header_with_unprintable_bytes_is_not_shown():
    assert encryption_header(b"k8s:enc:aescbc:v1:\x00\xffkey:" + CIPHERTEXT) == "k8s:enc:?"


def test_the_header_never_reaches_past_the_prefix_window():
    found = encryption_header(b"k8s:enc:aescbc:v1:" + b"k" * 200 + b":" + CIPHERTEXT)
    assert len(found) <= PREFIX_BYTES


@PROPERTY
@given(st.binary(max_size=128).filter(lambda b: not b.startswith(b"k8s:enc:")))
def test_any_unencrypted_value_gives_none(value):
    assert encryption_header(value) is None


@PROPERTY
@given(st.sampled_from(["aescbc", "aesgcm", "secretbox", "kms"]), st.sampled_from(["v1", "v2"]), NAMES,
       st.binary(max_size=96))
def test_any_encrypted_value_gives_its_header_and_none_of_the_rest(provider_name, version, key_name, tail):
    header = f"k8s:enc:{provider_name}:{version}:{key_name}"
    found = encryption_header(header.encode() + b":" + tail)
    assert found == header


# -- properties of the configuration check ---------------------------------------------------------
PROVIDERS = st.sampled_from(["aescbc", "aesgcm", "secretbox", "kms", "identity"])
OTHER_RESOURCES = st.lists(st.sampled_from(["configmaps", "events", "deployments.apps", "*.apps", "leases.coordination.k8s.io"]),
                           min_size=1, max_size=3)
OTHER_ENTRIES = st.lists(st.tuples(OTHER_RESOURCES, st.lists(PROVIDERS, min_size=1, max_size=3)), max_size=3)
COVERING = st.lists(st.sampled_from(["secrets", "*.", "*.*"]), min_size=1, max_size=2)


@PROPERTY
@given(OTHER_ENTRIES, COVERING, st.lists(PROVIDERS, min_size=1, max_size=3), OTHER_ENTRIES)
def test_well_formed_configurations_pass_only_with_an_encrypting_provider_first(before, covering, providers, after):
    document = config(*before, (covering, providers), *after)
    result = check(document)
    if providers[0] == "identity":
        [finding] = result
        assert finding.path == f"{PATH}: resources[{len(before)}].providers[0]"
        assert finding.observed == "identity"
    else:
        assert result == []
    assert etcd_encryption.secret_providers(FLAGS, files(document)) == providers
    assert_no_key_material(shown(result))


@PROPERTY
@given(OTHER_ENTRIES)
def test_configurations_that_miss_secrets_are_never_passed(entries):
    [finding] = never_passes(check, config(*entries))
    assert finding.observed == "secrets not listed"


@PROPERTY
@given(st.data())
def test_malformed_configurations_give_findings_or_not_verified_and_never_key_material(data):
    document = config(*data.draw(OTHER_ENTRIES), (data.draw(COVERING), data.draw(st.lists(PROVIDERS, min_size=1, max_size=3))))
    broken = data.draw(mangled(document))
    result = outcome(check, broken)
    assert_no_key_material(shown(result))
    assert_no_key_material(repr(etcd_encryption.secret_providers(FLAGS, files(broken))))


@PROPERTY
@given(st.data())
def test_identity_first_for_secrets_is_never_passed_whatever_else_is_broken(data):
    before = data.draw(OTHER_ENTRIES)
    document = config(*before, (data.draw(COVERING), ["identity", "aescbc"]), *data.draw(OTHER_ENTRIES))
    index = len(before)
    keep = protect_prefixes(("resources", index), *(("resources", i, "resources") for i in range(index)))
    never_passes(check, data.draw(mangled(document, keep, root=False)))


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(["/registry/secrets/a/b", "/registry/secrets/c/d", "/other"]),
                          st.none() | st.sampled_from(["k8s:enc:aescbc:v1:key1", "k8s:enc:kms:v2:p", "plain"]) | JSON),
                max_size=6))
def test_stored_headers_give_findings_or_not_verified_and_plain_values_are_never_passed(headers):
    result = outcome(etcd_encryption.stored_secret_findings, headers)
    if any(header is None or header == "plain" for _, header in headers):
        assert result != []
