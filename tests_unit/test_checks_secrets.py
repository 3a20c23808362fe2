"""Unit tests for kubeproof.checks.secrets: secrets in environment variables, credentials written into
specs (whose values must never appear in anything the check returns), token secrets and the default
ServiceAccount."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, NAMES, PROPERTY, mangled, never_passes, outcome, protect_prefixes
from workloads import container, pod_spec, spec_of, with_container, workload, workloads

from kubeproof.checks import secrets
from kubeproof.results import NotVerified, ObjectRef

MARKER = "kubeproof-unit-marker-9f2c7e"


def everything_said(result) -> str:
    """All text a check hands on: findings as the report stores them, or the NotVerified reason."""
    if isinstance(result, NotVerified):
        return result.reason + repr(result)
    return json.dumps([f.to_dict() for f in result], default=str) + repr(result) + "".join(f.describe() for f in result)


# -- secrets as environment variables ----------------------------------------------------------------
def test_secret_key_reference_in_env_is_a_finding():
    env = [{"name": "LOG_LEVEL", "value": "info"},
           {"name": "DB_USER", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}}]
    [finding] = secrets.secret_env_findings(workload(spec=pod_spec([container(env=env)])))
    assert finding.controls == ("5.4.1",)
    assert finding.path == "spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef"
    assert "DB_USER" in finding.observed and "'db'" in finding.observed and "'user'" in finding.observed
    assert finding.object == ObjectRef("Deployment", "web", "team", "uid-web")


def test_env_from_a_whole_secret_is_a_finding():
    envfrom = [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "db"}, "prefix": "DB_"}]
    [finding] = secrets.secret_env_findings(workload("Job", spec=pod_spec([container(envFrom=envfrom)])))
    assert finding.path == "spec.template.spec.containers[0].envFrom[1].secretRef"
    assert "'db'" in finding.observed


def test_init_and_ephemeral_containers_are_checked_too():
    ref = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    spec = pod_spec(initContainers=[container("init", env=ref)], ephemeralContainers=[container("debug", env=ref)])
    paths = {f.path for f in secrets.secret_env_findings(workload("Pod", spec=spec))}
    assert paths == {"spec.initContainers[0].env[0].valueFrom.secretKeyRef",
                     "spec.ephemeralContainers[0].env[0].valueFrom.secretKeyRef"}


def test_secret_volumes_config_maps_and_field_refs_pass():
    env = [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
           {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    spec = pod_spec([container(env=env, envFrom=[{"configMapRef": {"name": "c"}}])],
                    volumes=[{"name": "creds", "secret": {"secretName": "db"}}])
    assert secrets.secret_env_findings(workload(spec=spec)) == []


def test_unnamed_secret_reference_is_still_reported():
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {}}}]
    [finding] = secrets.secret_env_findings(workload(spec=pod_spec([container(env=env)])))
    assert "(unnamed)" in finding.observed


@pytest.mark.parametrize("env", ["x", [5], [{"name": "X", "valueFrom": "s"}], [{"name": "X", "valueFrom": {"secretKeyRef": 1}}],
                                 [{"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]])
def test_unreadable_env_is_not_verified(env):
    with pytest.raises(NotVerified):
        secrets.secret_env_findings(workload(spec=pod_spec([container(env=env)])))


# -- credentials written literally ---------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "DB_PASSWORD", "MYSQL_ROOT_PASSWORD", "password", "Passwd", "apiKey", "API_KEY", "APIKEY", "GITHUB_TOKEN",
    "authToken", "TOKEN", "JWT_SECRET", "client_secret", "AWS_SECRET_ACCESS_KEY", "SMTP_PASS", "REGISTRY_CREDENTIALS",
    "SSH_PASSPHRASE", "KEY", "ENCRYPTION_KEY", "SECRET", "db.password", "slack-webhook-secret", "GITLAB_PAT",
    "REFRESH_TOKENS", "DB_CREDS",
])
def test_credential_names_are_recognised(name):
    assert secrets.looks_like_a_credential(name)


@pytest.mark.parametrize("name", [
    "LOG_LEVEL", "HOME", "PATH", "PORT", "PASSWORD_FILE", "SECRET_NAME", "TOKEN_URL", "KEYCLOAK_URL", "MONKEY",
    "TOKENIZER_MODEL", "ACCESS_KEY_ID", "KEY_ALGORITHM", "CACHE_KEY_PREFIX", "TOKEN_TTL", "SECRETS_DIR",
    "PASSWORD_MIN_LENGTH", "", "__", "JWT_SECRET_PATH",
])
def test_other_names_are_not(name):
    assert not secrets.looks_like_a_credential(name)


def test_name_parts_split_snake_kebab_dots_and_camel_case():
    assert secrets.name_parts("DB_PASSWORD") == ["db", "password"]
    assert secrets.name_parts("apiKey") == ["api", "key"]
    assert secrets.name_parts("HTTPSProxy") == ["https", "proxy"]
    assert secrets.name_parts("a.b-c__d") == ["a", "b", "c", "d"]


def test_literal_credential_is_reported_by_name_and_container_never_by_value():
    env = [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "DB_PASSWORD", "value": MARKER}]
    result = secrets.literal_secret_env_findings(workload(spec=pod_spec([container("api", env=env)])))
    [finding] = result
    assert finding.controls == ("5.4.1",)
    assert finding.path == "spec.template.spec.containers[0].env[1].value"
    assert "DB_PASSWORD" in finding.observed and "'api'" in finding.observed and "not shown" in finding.observed
    assert MARKER not in everything_said(result)


@pytest.mark.parametrize("value", ["", None, "$(OTHER_PASSWORD)", "$(A)$(B)"])
def test_empty_values_and_pure_variable_references_are_not_literals(value):
    env = [{"name": "DB_PASSWORD", **({"value": value} if value is not None else {})}]
    assert secrets.literal_secret_env_findings(workload(spec=pod_spec([container(env=env)]))) == []


def test_reference_mixed_with_text_is_a_literal():
    env = [{"name": "DB_PASSWORD", "value": f"$(PREFIX){MARKER}"}]
    result = secrets.literal_secret_env_findings(workload(spec=pod_spec([container(env=env)])))
    assert len(result) == 1 and MARKER not in everything_said(result)


def test_secret_references_are_not_literals():
    env = [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    assert secrets.literal_secret_env_findings(workload(spec=pod_spec([container(env=env)]))) == []


@pytest.mark.parametrize("value", [[MARKER], {"v": MARKER}, 12345, True])
def test_non_string_value_is_not_verified_without_showing_it(value):
    env = [{"name": "DB_PASSWORD", "value": value}]
    with pytest.raises(NotVerified) as raised:
        secrets.literal_secret_env_findings(workload(spec=pod_spec([container(env=env)])))
    assert MARKER not in raised.value.reason and "12345" not in raised.value.reason


# -- token secrets -------------------------------------------------------------------------------
def secret(annotations=None, name="legacy", namespace="team") -> dict:
    metadata = {"name": name, "namespace": namespace}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}


def test_token_secret_is_recognised_by_its_service_account_annotation():
    [finding] = secrets.service_account_token_findings(secret({"kubernetes.io/service-account.name": "builder"}))
    assert finding.object == ObjectRef("Secret", "legacy", "team")
    assert "builder" in finding.observed and finding.controls == ()
    assert secrets.token_secret_account(secret({"kubernetes.io/service-account.name": "builder"})) == "builder"


def test_uid_annotation_alone_also_marks_a_token_secret():
    [finding] = secrets.service_account_token_findings(secret({"kubernetes.io/service-account.uid": "1"}))
    assert "service-account.uid" in finding.observed


@pytest.mark.parametrize("annotations", [None, {}, {"other": "x"}, {"kubernetes.io/service-account": "x"}])
def test_other_secrets_pass(annotations):
    assert secrets.service_account_token_findings(secret(annotations)) == []


@pytest.mark.parametrize("bad", ["x", {"metadata": {"name": "a", "annotations": ["x"]}}, {"metadata": {}}])
def test_unreadable_secret_metadata_is_not_verified(bad):
    with pytest.raises(NotVerified):
        secrets.service_account_token_findings(bad)


# -- the default ServiceAccount ------------------------------------------------------------------
def account(name="default", namespace="team", automount="unset") -> dict:
    obj = {"kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
    if automount != "unset":
        obj["automountServiceAccountToken"] = automount
    return obj


def test_default_account_that_opts_out_passes():
    assert secrets.default_service_account_findings("team", [account("app"), account(automount=False)]) == []


@pytest.mark.parametrize("automount, observed", [("unset", "unset (tokens are mounted)"), (True, "true"), (None, "unset (tokens are mounted)")])
def test_default_account_that_mounts_its_token_is_a_finding(automount, observed):
    [finding] = secrets.default_service_account_findings("team", [account(automount=automount)])
    assert finding.object == ObjectRef("ServiceAccount", "default", "team")
    assert finding.observed == observed and finding.controls == ("5.1.5", "5.1.6")


def test_a_namespace_without_a_default_account_is_not_verified():
    with pytest.raises(NotVerified):
        secrets.default_service_account_findings("team", [account("app")])


@pytest.mark.parametrize("bad", [[account(automount="false")], "x", [5], [{"metadata": {}}]])
def test_unreadable_accounts_are_not_verified(bad):
    with pytest.raises(NotVerified):
        secrets.default_service_account_findings("team", bad)


@pytest.mark.parametrize("spec_fields, default_account, reported", [
    ({"serviceAccountName": None, "automountServiceAccountToken": None}, account(), True),
    ({"serviceAccountName": "default", "automountServiceAccountToken": None}, account(), True),
    ({"serviceAccountName": "", "automountServiceAccountToken": None}, account(), True),
    ({"serviceAccountName": None, "automountServiceAccountToken": None}, account(automount=False), False),
    ({"serviceAccountName": None, "automountServiceAccountToken": False}, account(), False),
    ({"serviceAccountName": None, "automountServiceAccountToken": True}, account(automount=False), True),
    ({"serviceAccountName": None, "automountServiceAccountToken": None}, None, True),
    ({"serviceAccountName": None, "serviceAccount": "builder", "automountServiceAccountToken": None}, account(), False),
    ({"serviceAccountName": "builder", "automountServiceAccountToken": True}, account(), False),
])
def test_workloads_running_as_the_default_account_with_its_token(spec_fields, default_account, reported):
    spec = pod_spec()
    for key, value in spec_fields.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    findings = secrets.default_identity_findings(workload("CronJob", spec=spec), default_account)
    assert bool(findings) == reported
    if reported:
        assert findings[0].controls == ("5.1.5",)
        assert findings[0].path == "spec.jobTemplate.spec.template.spec.serviceAccountName"


def _static_pod(annotated: bool, token_volume: bool) -> dict:
    spec = pod_spec()
    del spec["serviceAccountName"], spec["automountServiceAccountToken"]
    if token_volume:
        spec["volumes"] = [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
    pod = workload("Pod", spec=spec)
    if annotated:
        pod["metadata"]["annotations"] = {secrets.MIRROR_ANNOTATION: "0f3c"}
    return pod


@pytest.mark.parametrize("annotated, token_volume, reported", [
    (True, False, False),   # kubeadm's etcd, API server...: the kubelet runs them with no ServiceAccount
    (False, False, True),   # the same spec created through the API gets the default account's token
    (True, True, True),     # the annotation is not taken on trust when a token is mounted after all
])
def test_a_static_pods_mirror_holds_no_service_account_token(annotated, token_volume, reported):
    assert bool(secrets.default_identity_findings(_static_pod(annotated, token_volume), account())) == reported


def test_service_account_of_reads_the_name_and_its_deprecated_alias():
    assert secrets.service_account_of(workload()) == "app"
    spec = pod_spec()
    del spec["serviceAccountName"]
    assert secrets.service_account_of(workload(spec=spec)) == "default"
    spec["serviceAccount"] = "old"
    assert secrets.service_account_of(workload(spec=spec)) == "old"


@pytest.mark.parametrize("field, value", [("automountServiceAccountToken", "no"), ("serviceAccountName", 5)])
def test_unreadable_identity_fields_are_not_verified(field, value):
    spec = pod_spec(**{field: value})
    spec.pop("serviceAccountName") if field == "automountServiceAccountToken" else None
    with pytest.raises(NotVerified):
        secrets.default_identity_findings(workload(spec=spec), account())


# -- properties ------------------------------------------------------------------------------------
WORKLOAD_CHECKS = [secrets.secret_env_findings, secrets.literal_secret_env_findings]


@PROPERTY
@given(st.data(), st.sampled_from(WORKLOAD_CHECKS))
def test_malformed_workloads_give_findings_or_not_verified(data, check):
    outcome(check, data.draw(mangled(data.draw(workloads()))))


@PROPERTY
@given(JSON, st.sampled_from(WORKLOAD_CHECKS + [secrets.service_account_token_findings]))
def test_arbitrary_values_give_findings_or_not_verified(value, check):
    outcome(check, value)


@PROPERTY
@given(JSON, JSON)
def test_arbitrary_accounts_give_findings_or_not_verified(accounts, default_account):
    outcome(secrets.default_service_account_findings, "team", accounts)
    outcome(secrets.default_identity_findings, workload(spec={"containers": [container()]}), default_account)


@PROPERTY
@given(st.data())
def test_a_literal_credential_is_never_passed_and_its_value_never_shown(data):
    obj = data.draw(workloads())
    name = data.draw(st.sampled_from(["DB_PASSWORD", "apiKey", "GITHUB_TOKEN", "client_secret", "SMTP_PASS"]))
    value = MARKER + data.draw(st.text(min_size=0, max_size=8))
    lists = ["initContainers", "containers"] + (["ephemeralContainers"] if obj["kind"] == "Pod" else [])
    leaky = container("leaky", env=[{"name": "PORT", "value": "80"}, {"name": name, "value": value}])
    obj, where = with_container(obj, data.draw(st.sampled_from(lists)), data.draw(st.integers(0, 3)), leaky)
    result = never_passes(secrets.literal_secret_env_findings, obj)
    assert MARKER not in everything_said(result)
    mangled_obj = data.draw(mangled(obj, protect_prefixes(where, ("kind",), ("metadata",)), root=False))
    result = never_passes(secrets.literal_secret_env_findings, mangled_obj)
    assert MARKER not in everything_said(result)
    # The other checks see the same spec: none of them may repeat the value either.
    for check in (secrets.secret_env_findings, secrets.service_account_of):
        try:
            said = check(mangled_obj)
        except NotVerified as error:
            said = error.reason
        assert MARKER not in repr(said)


@PROPERTY
@given(st.data())
def test_a_secret_in_env_is_never_passed(data):
    obj = data.draw(workloads())
    env = [{"name": data.draw(NAMES), "valueFrom": {"secretKeyRef": {"name": data.draw(NAMES), "key": "k"}}}]
    obj, where = with_container(obj, "containers", data.draw(st.integers(0, 3)), container("reader", env=env))
    findings = never_passes(secrets.secret_env_findings, obj)
    assert any(f.path.endswith(".env[0].valueFrom.secretKeyRef") for f in findings)
    never_passes(secrets.secret_env_findings, data.draw(mangled(obj, protect_prefixes(where, ("kind",), ("metadata",)), root=False)))


@PROPERTY
@given(st.data())
def test_the_default_account_with_its_token_is_never_passed(data):
    obj = data.draw(workloads())
    spec = spec_of(obj)
    spec.pop("serviceAccountName")
    spec.pop("automountServiceAccountToken")
    never_passes(secrets.default_identity_findings, obj, data.draw(st.sampled_from([None, account(), account(automount=True)])))
