"""Unit tests for kubeproof.baseline: loading, defaults, matching, and errors that name file, line
and field."""

from __future__ import annotations

import hashlib
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled

from kubeproof import baseline as bl
from kubeproof.baseline import Baseline, BaselineError

ROOT = Path(__file__).resolve().parents[1]

FULL = textwrap.dedent("""\
    # every field
    pod_security:
      default: baseline
      namespaces:
        kube-system: privileged
        "team-*": restricted
        monitoring: baseline
    network_policy:
      exempt_namespaces: [kube-system, "legacy-*"]
    rbac:
      wildcard_roles_allowed:
        - ClusterRole/ops-*
        - Role/ci/deployer
      cluster_admin_subjects:
        - Group/system:masters
        - ServiceAccount/kube-system/bootstrap
        - User/admin@example.com
      unauthenticated_bindings_allowed:
        - ClusterRoleBinding/health
        - RoleBinding/public/*
    """)


def write(tmp_path: Path, text: str | bytes, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text))
    return path


def load_error(path: Path) -> str:
    with pytest.raises(BaselineError) as raised:
        bl.load(path)
    return str(raised.value)


# -- valid files -----------------------------------------------------------------------------------
def test_full_file(tmp_path):
    path = write(tmp_path, FULL)
    loaded = bl.load(path)
    assert loaded.path == str(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.pod_security_default == "baseline"
    assert loaded.pod_security_namespaces == (("kube-system", "privileged"), ("team-*", "restricted"), ("monitoring", "baseline"))
    assert loaded.default_deny_exempt == ("kube-system", "legacy-*")
    assert loaded.wildcard_roles_allowed == ("ClusterRole/ops-*", "Role/ci/deployer")
    assert loaded.cluster_admin_subjects == ("Group/system:masters", "ServiceAccount/kube-system/bootstrap", "User/admin@example.com")
    assert loaded.unauthenticated_bindings_allowed == ("ClusterRoleBinding/health", "RoleBinding/public/*")


def test_matching_methods(tmp_path):
    loaded = bl.load(write(tmp_path, FULL))
    assert loaded.required_pod_security("kube-system") == "privileged"
    assert loaded.required_pod_security("team-a") == "restricted"
    assert loaded.required_pod_security("shop") == "baseline"  # the default
    assert loaded.required_pod_security("Team-a") == "baseline"  # patterns are case-sensitive
    assert loaded.default_deny_exempted("legacy-billing") and not loaded.default_deny_exempted("billing")
    assert loaded.wildcard_allowed("ClusterRole/ops-admin") and not loaded.wildcard_allowed("Role/ops/ops-admin")
    assert loaded.cluster_admin_allowed("ServiceAccount/kube-system/bootstrap")
    assert not loaded.cluster_admin_allowed("Group/system:master")
    assert loaded.unauthenticated_binding_allowed("RoleBinding/public/info")
    assert not loaded.unauthenticated_binding_allowed("ClusterRoleBinding/health-extra")


def test_first_matching_namespace_pattern_wins(tmp_path):
    loaded = bl.load(write(tmp_path, """\
        pod_security:
          namespaces:
            team-legacy: baseline
            team-*: restricted
        """))
    assert loaded.required_pod_security("team-legacy") == "baseline"
    assert loaded.required_pod_security("team-new") == "restricted"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "pod_security: {}\n"])
def test_empty_files_give_the_defaults(tmp_path, text):
    loaded = bl.load(write(tmp_path, text))
    assert loaded.pod_security_default == "restricted"
    assert loaded.pod_security_namespaces == ()
    assert loaded.default_deny_exempt == ()
    assert loaded.wildcard_roles_allowed == ()
    assert loaded.cluster_admin_subjects == ("Group/system:masters",)
    assert loaded.unauthenticated_bindings_allowed == ()


def test_null_lists_are_empty_and_stricter_than_the_default(tmp_path):
    loaded = bl.load(write(tmp_path, """\
        pod_security:
          namespaces:
        network_policy:
          exempt_namespaces:
        rbac:
          cluster_admin_subjects:
        """))
    assert loaded.pod_security_namespaces == ()
    assert loaded.default_deny_exempt == ()
    assert loaded.cluster_admin_subjects == ()  # an explicit empty list: nobody may hold cluster-admin


@pytest.mark.parametrize("name", ["default.yaml", "local.yaml"])
def test_the_shipped_baselines_load(name):
    loaded = bl.load(ROOT / "baselines" / name)
    assert loaded.pod_security_default == "restricted"
    assert loaded.required_pod_security("kube-system") == "privileged"
    assert loaded.cluster_admin_subjects == ("Group/system:masters",)


def test_locate(tmp_path):
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "default.yaml").write_text("")
    assert bl.locate("/x/explicit.yaml", "prod", tmp_path) == Path("/x/explicit.yaml")
    assert bl.locate(None, "prod", tmp_path) == tmp_path / "baselines" / "default.yaml"
    (tmp_path / "baselines" / "prod.yaml").write_text("")
    assert bl.locate(None, "prod", tmp_path) == tmp_path / "baselines" / "prod.yaml"
    # A context named by an ARN has a '/': its baseline is found under the run folder's spelling.
    arn = "arn:aws:eks:eu-west-1:123456789012:cluster/prod"
    assert bl.locate(None, arn, tmp_path) == tmp_path / "baselines" / "default.yaml"
    (tmp_path / "baselines" / f"{bl.safe_name(arn)}.yaml").write_text("")
    assert bl.locate(None, arn, tmp_path) == tmp_path / "baselines" / "arn_aws_eks_eu-west-1_123456789012_cluster_prod.yaml"


# -- errors: file, line and field ------------------------------------------------------------------
def assert_names(message: str, path: Path, line: int, *fragments: str) -> None:
    assert message.startswith(f"{path}:{line}:"), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_unknown_top_level_field(tmp_path):
    path = write(tmp_path, """\
        pod_security:
          default: restricted
        pod_securty:
          default: baseline
        """)
    assert_names(load_error(path), path, 3, "unknown field 'pod_securty'", "known here:", "pod_security")


def test_unknown_nested_field(tmp_path):
    path = write(tmp_path, """\
        rbac:
          cluster_admin_subjects: []
          wildcard_role_allowed: [ClusterRole/x]
        """)
    assert_names(load_error(path), path, 3, "unknown field 'rbac.wildcard_role_allowed'", "wildcard_roles_allowed")


@pytest.mark.parametrize("text, line, fragments", [
    ("network_policy:\n  exempt_namespaces: kube-system\n", 2, ("'network_policy.exempt_namespaces'", "list of strings")),
    ("network_policy:\n  exempt_namespaces:\n    - kube-system\n    - 5\n", 4, ("'network_policy.exempt_namespaces'", "non-empty string")),
    ("network_policy:\n  exempt_namespaces:\n    - ''\n", 3, ("'network_policy.exempt_namespaces'",)),
    ("network_policy:\n  exempt_namespaces:\n    - [a]\n", 3, ("'network_policy.exempt_namespaces'",)),
    ("rbac:\n  cluster_admin_subjects:\n    - Group/system:masters\n    - null\n", 4, ("'rbac.cluster_admin_subjects'",)),
    ("rbac: [cluster_admin_subjects]\n", 1, ("'rbac'", "must be a mapping")),
    ("\n\nrbac: yes\n", 3, ("'rbac'", "must be a mapping")),
    ("pod_security:\n  namespaces: [kube-system]\n", 2, ("'pod_security.namespaces'", "must map names to levels")),
    ("- pod_security\n", 1, ("(top level)", "must be a mapping")),
    ("just words\n", 1, ("(top level)",)),
])
def test_wrong_types(tmp_path, text, line, fragments):
    path = write(tmp_path, text)
    assert_names(load_error(path), path, line, *fragments)


@pytest.mark.parametrize("text, line, field, shown", [
    ("pod_security:\n  default: strict\n", 2, "'pod_security.default'", "'strict'"),
    ("pod_security:\n  default: Restricted\n", 2, "'pod_security.default'", "'Restricted'"),
    ("pod_security:\n  default: [restricted]\n", 2, "'pod_security.default'", "a sequence"),
    ("pod_security:\n  default:\n", 2, "'pod_security.default'", "''"),
    ("pod_security:\n  namespaces:\n    kube-system: privileged\n    shop: high\n", 4, "'pod_security.namespaces.shop'", "'high'"),
])
def test_bad_levels(tmp_path, text, line, field, shown):
    path = write(tmp_path, text)
    assert_names(load_error(path), path, line, field, shown, "privileged, baseline, restricted")


@pytest.mark.parametrize("field, entry", [
    ("cluster_admin_subjects", "Group/a/b"),
    ("cluster_admin_subjects", "ServiceAccount/bootstrap"),
    ("cluster_admin_subjects", "user/alice"),
    ("cluster_admin_subjects", "alice"),
    ("cluster_admin_subjects", "User/"),
    ("cluster_admin_subjects", "ServiceAccount/kube-system/"),
    ("cluster_admin_subjects", "ServiceAccount//bootstrap"),
    ("wildcard_roles_allowed", "Role/deployer"),
    ("wildcard_roles_allowed", "ClusterRole/ns/name"),
    ("wildcard_roles_allowed", "Clusterrole/x"),
    ("unauthenticated_bindings_allowed", "RoleBinding/x"),
    ("unauthenticated_bindings_allowed", "ClusterRoleBinding/"),
    ("unauthenticated_bindings_allowed", "ClusterRole/system:public-info-viewer"),
])
def test_bad_reference_forms(tmp_path, field, entry):
    path = write(tmp_path, f"rbac:\n  {field}:\n    - {'Group/system:masters' if field == 'cluster_admin_subjects' else 'ClusterRoleBinding/a' if 'bindings' in field else 'ClusterRole/a'}\n    - \"{entry}\"\n")
    assert_names(load_error(path), path, 4, f"rbac.{field}", repr(entry))


@pytest.mark.parametrize("text, line, field", [
    ("rbac:\n  cluster_admin_subjects: []\nrbac:\n  cluster_admin_subjects: []\n", 3, "'rbac'"),
    ("pod_security:\n  default: restricted\n  default: privileged\n", 3, "'pod_security.default'"),
    ("pod_security:\n  namespaces:\n    kube-system: privileged\n    shop: restricted\n    kube-system: restricted\n", 5,
     "'pod_security.namespaces.kube-system'"),
])
def test_duplicate_keys(tmp_path, text, line, field):
    path = write(tmp_path, text)
    assert_names(load_error(path), path, line, field, "twice")


@pytest.mark.parametrize("text, line", [
    ("pod_security:\n  default: restricted\n  namespaces: [unclosed\n", 4),
    ("rbac:\n  cluster_admin_subjects:\n  - a\n - b\n", 4),
    ("pod_security: {default: restricted\n", 2),
    ("a: b: c\n", 1),
    ("rbac:\n\tcluster_admin_subjects: []\n", 2),
    ("pod_security:\n  default: restricted\n---\nrbac: {}\n", 3),
    ("pod_security:\n  default: *undefined\n", 2),
])
def test_invalid_yaml(tmp_path, text, line):
    path = write(tmp_path, text)
    assert_names(load_error(path), path, line, "not valid YAML")


def test_control_characters_name_the_line(tmp_path):
    path = write(tmp_path, "pod_security:\n  default: restricted\n  namespaces:\n    shop\x07: baseline\n")
    assert_names(load_error(path), path, 4, "not valid YAML")


def test_not_utf8(tmp_path):
    path = write(tmp_path, "pod_security:\n  default: restricted # caf\xe9\n".encode("latin-1"))
    message = load_error(path)
    assert message.startswith(f"{path}:") and "not UTF-8" in message


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    message = load_error(path)
    assert message.startswith(f"{path}:") and "cannot read" in message


def test_a_directory_is_not_a_baseline(tmp_path):
    message = load_error(tmp_path)
    assert message.startswith(f"{tmp_path}:") and "cannot read" in message


# -- properties ------------------------------------------------------------------------------------
VALID = yaml.safe_load(FULL)


def assert_well_formed(loaded: Baseline) -> None:
    assert loaded.pod_security_default in bl.LEVELS
    assert all(isinstance(p, str) and p and lvl in bl.LEVELS for p, lvl in loaded.pod_security_namespaces)
    for patterns in (loaded.default_deny_exempt, loaded.wildcard_roles_allowed, loaded.cluster_admin_subjects,
                     loaded.unauthenticated_bindings_allowed):
        assert isinstance(patterns, tuple) and all(isinstance(p, str) and p for p in patterns)


@PROPERTY
@given(st.data())
def test_mangled_baselines_load_well_formed_or_fail_with_a_located_error(tmp_path_factory, data):
    broken = data.draw(mangled(VALID))
    path = tmp_path_factory.mktemp("b") / "b.yaml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True))
    try:
        loaded = bl.load(path)
    except BaselineError as error:
        assert re.match(re.escape(str(path)) + r"(:\d+)?: ", str(error)), str(error)
    else:
        assert_well_formed(loaded)


@PROPERTY
@given(st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode), JSON.map(lambda v: yaml.safe_dump(v).encode())))
def test_arbitrary_bytes_load_or_fail_with_a_baseline_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("b") / "b.yaml"
    path.write_bytes(raw)
    try:
        loaded = bl.load(path)
    except BaselineError as error:
        assert str(error).startswith(str(path))
    else:
        assert_well_formed(loaded)
