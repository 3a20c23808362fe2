"""Unit tests for kubeproof.checks.kubelet: a hardened kubelet's /configz passes every row; each row
fails on its own violation, including a field /configz left out because it holds the zero value;
what cannot be read (a malformed answer, a field of the wrong type, the command line not known for
4.2.7) is NotVerified; and the rows are exactly CIS 4.2.x."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled, never_passes, outcome, protect_prefixes

from kubeproof import cis
from kubeproof.checks import kubelet as kl
from kubeproof.checks.control_plane import STRONG_CIPHER_SUITES
from kubeproof.results import Finding, NotVerified, ObjectRef

NODE = "worker-1"
DELETE = object()
STRONG = ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
WEAK = "TLS_RSA_WITH_AES_128_CBC_SHA"

# A hardened kubelet's /configz answer, shaped as the endpoint serves it (zero values left out:
# readOnlyPort is 0, so it is absent).
GOOD = {"kubeletconfig": {
    "enableServer": True,
    "staticPodPath": "/etc/kubernetes/manifests",
    "syncFrequency": "1m0s",
    "authentication": {
        "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
        "webhook": {"enabled": True, "cacheTTL": "2m0s"},
        "anonymous": {"enabled": False},
    },
    "authorization": {"mode": "Webhook", "webhook": {"cacheAuthorizedTTL": "5m0s", "cacheUnauthorizedTTL": "30s"}},
    "streamingConnectionIdleTimeout": "4h0m0s",
    "makeIPTablesUtilChains": True,
    "eventRecordQPS": 50,
    "tlsCertFile": "/var/lib/kubelet/pki/kubelet.crt",
    "tlsPrivateKeyFile": "/var/lib/kubelet/pki/kubelet.key",
    "serverTLSBootstrap": True,
    "rotateCertificates": True,
    "featureGates": {"RotateKubeletServerCertificate": True},
    "tlsCipherSuites": STRONG,
    "podPidsLimit": 4096,
    "seccompDefault": True,
}}
GOOD_FLAGS = {"config": "/var/lib/kubelet/config.yaml", "kubeconfig": "/etc/kubernetes/kubelet.conf",
              "node-ip": "10.0.0.5"}
ROWS = {row.id: row for row in kl.ROWS}
CONFIG_ROWS = [row for row in kl.ROWS if not row.uses_flags]


def changed(changes: dict, wrapped: bool = True) -> dict:
    """GOOD with dotted paths set (or removed, with DELETE)."""
    configz = copy.deepcopy(GOOD)
    for path, value in changes.items():
        node = configz["kubeletconfig"]
        *parents, last = path.split(".")
        for step in parents:
            node = node.setdefault(step, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return configz if wrapped else configz["kubeletconfig"]


def check(control_id: str, configz, flags=GOOD_FLAGS) -> list[Finding]:
    return kl.findings(ROWS[control_id], configz, flags, NODE)


def only(control_id: str, configz, flags=GOOD_FLAGS) -> Finding:
    [finding] = check(control_id, configz, flags)
    assert finding.controls == (control_id,)
    assert finding.object == ObjectRef("Node", NODE)
    assert finding.expected == ROWS[control_id].expected and finding.remediation
    assert finding.observed not in (None, "")
    return finding


# -- the table ---------------------------------------------------------------------------------------
def test_rows_are_exactly_the_cis_kubelet_controls_in_order():
    wanted = [c["id"] for c in cis.controls() if c["id"].startswith("4.2.")]
    assert [row.id for row in kl.ROWS] == wanted
    assert len(set(ROWS)) == len(kl.ROWS)


def test_row_looks_a_control_up():
    assert kl.row("4.2.4") is ROWS["4.2.4"]
    assert kl.row("4.2.4").path == "readOnlyPort"
    with pytest.raises(KeyError):
        kl.row("4.2.99")


def test_every_row_has_its_own_remediation():
    remediations = [row.remediation for row in kl.ROWS]
    assert len(set(remediations)) == len(remediations) and all(len(r) > 40 for r in remediations)


# One configuration per row that violates that row (and, where SHARED says, a related one).
VIOLATING = {
    "4.2.1": changed({"authentication.anonymous.enabled": True}),
    "4.2.2": changed({"authorization.mode": "AlwaysAllow"}),
    "4.2.3": changed({"authentication.x509.clientCAFile": DELETE}),
    "4.2.4": changed({"readOnlyPort": 10255}),
    "4.2.5": changed({"streamingConnectionIdleTimeout": "0s"}),
    "4.2.6": changed({"makeIPTablesUtilChains": DELETE}),
    "4.2.8": changed({"eventRecordQPS": 1}),
    "4.2.9": changed({"serverTLSBootstrap": False, "tlsCertFile": DELETE, "featureGates": DELETE}),
    "4.2.10": changed({"rotateCertificates": DELETE}),
    "4.2.11": changed({"serverTLSBootstrap": True, "featureGates.RotateKubeletServerCertificate": False}),
    "4.2.12": changed({"tlsCipherSuites": STRONG + [WEAK], "tlsMinVersion": "VersionTLS12"}),
    "4.2.13": changed({"podPidsLimit": -1}),
    "4.2.14": changed({"seccompDefault": DELETE}),
}
# serverTLSBootstrap false without a gate breaks both serving-certificate rows.
SHARED = {"4.2.9": ("4.2.11",)}


# -- compliant ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", kl.ROWS, ids=lambda r: r.id)
def test_hardened_kubelet_passes(row):
    assert kl.findings(row, GOOD, GOOD_FLAGS, NODE) == []
    assert kl.evidence(row, GOOD, GOOD_FLAGS)


@pytest.mark.parametrize("row", CONFIG_ROWS, ids=lambda r: r.id)
def test_bare_configuration_reads_like_the_wrapped_answer(row):
    assert kl.findings(row, GOOD["kubeletconfig"], None, NODE) == []
    violating = VIOLATING.get(row.id)
    if violating is not None:
        assert kl.findings(row, violating["kubeletconfig"], None, NODE) == kl.findings(row, violating, None, NODE)


# -- each row on its own violation -------------------------------------------------------------------
ABSENT = f"({kl.ABSENT_NOTE})"


@pytest.mark.parametrize("control_id, changes, path, observed", [
    ("4.2.1", {"authentication.anonymous.enabled": True}, "authentication.anonymous.enabled", "true"),
    ("4.2.2", {"authorization.mode": "AlwaysAllow"}, "authorization.mode", "AlwaysAllow"),
    ("4.2.3", {"authentication.x509.clientCAFile": DELETE}, "authentication.x509.clientCAFile", "not set"),
    ("4.2.3", {"authentication.x509.clientCAFile": ""}, "authentication.x509.clientCAFile", "not set"),
    ("4.2.3", {"authentication.x509": DELETE}, "authentication.x509.clientCAFile", "not set"),
    ("4.2.4", {"readOnlyPort": 10255}, "readOnlyPort", "10255"),
    ("4.2.5", {"streamingConnectionIdleTimeout": "0s"}, "streamingConnectionIdleTimeout", "0s"),
    ("4.2.5", {"streamingConnectionIdleTimeout": "0h0m0s"}, "streamingConnectionIdleTimeout", "0h0m0s"),
    ("4.2.5", {"streamingConnectionIdleTimeout": "-5m"}, "streamingConnectionIdleTimeout", "-5m"),
    ("4.2.5", {"streamingConnectionIdleTimeout": DELETE}, "streamingConnectionIdleTimeout", f"0s {ABSENT}"),
    ("4.2.6", {"makeIPTablesUtilChains": False}, "makeIPTablesUtilChains", "false"),
    ("4.2.6", {"makeIPTablesUtilChains": DELETE}, "makeIPTablesUtilChains", f"false {ABSENT}"),
    ("4.2.8", {"eventRecordQPS": 5}, "eventRecordQPS", "5: below the kubelet's default of 50 events a second"),
    ("4.2.9", {"serverTLSBootstrap": False, "tlsCertFile": DELETE}, "tlsCertFile", "not set"),
    ("4.2.9", {"serverTLSBootstrap": DELETE, "tlsPrivateKeyFile": ""}, "tlsPrivateKeyFile", "not set"),
    ("4.2.10", {"rotateCertificates": False}, "rotateCertificates", "false"),
    ("4.2.10", {"rotateCertificates": DELETE}, "rotateCertificates", f"false {ABSENT}"),
    ("4.2.11", {"featureGates.RotateKubeletServerCertificate": False},
     "featureGates.RotateKubeletServerCertificate", "false"),
    ("4.2.11", {"serverTLSBootstrap": False, "featureGates": DELETE}, "serverTLSBootstrap",
     "serverTLSBootstrap false and no rotation of the serving certificate"),
    ("4.2.11", {"serverTLSBootstrap": DELETE, "featureGates": {"Other": True}}, "serverTLSBootstrap",
     "serverTLSBootstrap false and no rotation of the serving certificate"),
    ("4.2.12", {"tlsCipherSuites": STRONG + [WEAK]}, "tlsCipherSuites", WEAK),
    ("4.2.12", {"tlsCipherSuites": ["TLS_RSA_WITH_AES_128_GCM_SHA256", WEAK]}, "tlsCipherSuites",
     f"TLS_RSA_WITH_AES_128_GCM_SHA256,{WEAK}"),
    ("4.2.12", {"tlsCipherSuites": DELETE}, "tlsCipherSuites", "not set (Go's default list, which includes CBC-mode suites)"),
    ("4.2.12", {"tlsCipherSuites": []}, "tlsCipherSuites", "not set (Go's default list, which includes CBC-mode suites)"),
    ("4.2.13", {"podPidsLimit": -1}, "podPidsLimit", "-1: no limit"),
    ("4.2.13", {"podPidsLimit": 0}, "podPidsLimit", "0: no limit"),
    ("4.2.13", {"podPidsLimit": DELETE}, "podPidsLimit", f"0 {ABSENT}: no limit"),
    ("4.2.14", {"seccompDefault": False}, "seccompDefault", "false"),
    ("4.2.14", {"seccompDefault": DELETE}, "seccompDefault", f"false {ABSENT}"),
])
def test_violation(control_id, changes, path, observed):
    finding = only(control_id, changed(changes))
    assert (finding.path, finding.observed) == (path, observed)


@pytest.mark.parametrize("control_id", sorted(VIOLATING, key=cis.id_key))
def test_each_violation_fails_its_own_row_and_no_other(control_id):
    failing = {row.id for row in kl.ROWS if check(row.id, VIOLATING[control_id]) != []}
    assert failing == {control_id, *SHARED.get(control_id, ())}


def test_both_serving_files_missing_are_two_findings():
    found = check("4.2.9", changed({"serverTLSBootstrap": False, "tlsCertFile": DELETE, "tlsPrivateKeyFile": DELETE}))
    assert [f.path for f in found] == ["tlsCertFile", "tlsPrivateKeyFile"]


# -- absent means the zero value -----------------------------------------------------------------------
@pytest.mark.parametrize("control_id, changes", [
    ("4.2.1", {"authentication.anonymous.enabled": DELETE}),  # false: anonymous off
    ("4.2.1", {"authentication.anonymous": DELETE}),
    ("4.2.1", {"authentication.anonymous.enabled": None}),  # JSON null is a nil pointer: the same
    ("4.2.4", {"readOnlyPort": DELETE}),  # 0: the port is closed
    ("4.2.4", {"readOnlyPort": 0}),
    ("4.2.8", {"eventRecordQPS": DELETE}),  # 0: no limit
    ("4.2.8", {"eventRecordQPS": 0}),
    ("4.2.9", {"serverTLSBootstrap": DELETE}),  # the files are set
    ("4.2.9", {"tlsCertFile": DELETE, "tlsPrivateKeyFile": DELETE}),  # serverTLSBootstrap is true
    ("4.2.11", {"featureGates": DELETE}),  # the gate's default, and serverTLSBootstrap true
    ("4.2.11", {"serverTLSBootstrap": DELETE}),  # the gate explicitly on
    ("4.2.12", {"tlsCipherSuites": DELETE, "tlsMinVersion": "VersionTLS13"}),
    ("4.2.12", {"tlsMinVersion": "VersionTLS12"}),
])
def test_absent_or_zero_field_that_is_compliant_passes(control_id, changes):
    assert check(control_id, changed(changes)) == []


def test_absent_authorization_mode_is_not_a_kubelet_answer():
    for changes in ({"authorization.mode": DELETE}, {"authorization": DELETE}, {"authorization.mode": ""}):
        for row in CONFIG_ROWS:
            with pytest.raises(NotVerified, match="authorization.mode"):
                kl.findings(row, changed(changes), GOOD_FLAGS, NODE)


@pytest.mark.parametrize("configz", [{}, {"kubeletconfig": {}}, {"kubeletconfig": None}])
def test_an_empty_answer_passes_nothing(configz):
    # Read as zeros it would pass 4.2.1, 4.2.4 and 4.2.8; it is not a kubelet's answer.
    for row in CONFIG_ROWS:
        with pytest.raises(NotVerified):
            kl.findings(row, configz, GOOD_FLAGS, NODE)


@pytest.mark.parametrize("control_id, field, want", [
    ("4.2.1", "authentication.anonymous.enabled", False), ("4.2.6", "makeIPTablesUtilChains", True),
    ("4.2.10", "rotateCertificates", True), ("4.2.14", "seccompDefault", True),
])
@pytest.mark.parametrize("value", [True, False, DELETE, None])
def test_boolean_rows_read_absent_as_false(control_id, field, want, value):
    effective = value is True
    assert (check(control_id, changed({field: value})) == []) == (effective == want)


# -- 4.2.7: the command line -------------------------------------------------------------------------
def test_hostname_override_flag_fails():
    finding = only("4.2.7", GOOD, {**GOOD_FLAGS, "hostname-override": "node-a"})
    assert (finding.path, finding.observed) == ("--hostname-override", "node-a")
    assert only("4.2.7", GOOD, {"--hostname-override": "node-a"}).observed == "node-a"
    assert check("4.2.7", GOOD, {"hostname-override": ""}) == []  # /flagz lists unset flags empty


def test_hostname_override_needs_no_configz():
    assert check("4.2.7", None, GOOD_FLAGS) == []
    assert check("4.2.7", "garbage", {}) == []


def test_hostname_override_unknown_command_line_is_not_verified():
    with pytest.raises(NotVerified, match="command-line flag that /configz does not show"):
        check("4.2.7", GOOD, None)


@pytest.mark.parametrize("flags", [["hostname-override"], "hostname-override=x", {"hostname-override": 1},
                                   {1: "x"}, {"hostname-override": None}])
def test_malformed_command_line_is_not_verified(flags):
    with pytest.raises(NotVerified):
        check("4.2.7", GOOD, flags)


@pytest.mark.parametrize("row", CONFIG_ROWS, ids=lambda r: r.id)
def test_configuration_rows_ignore_the_command_line(row):
    assert kl.findings(row, GOOD, None, NODE) == []
    assert kl.findings(row, GOOD, {"hostname-override": "x"}, NODE) == []


# -- values the kubelet would not run with, and malformed answers ------------------------------------------
@pytest.mark.parametrize("control_id, changes", [
    ("4.2.1", {"authentication.anonymous.enabled": "false"}),
    ("4.2.1", {"authentication.anonymous": "off"}),
    ("4.2.1", {"authentication": ["anonymous"]}),
    ("4.2.2", {"authorization.mode": "Bogus"}),
    ("4.2.2", {"authorization.mode": "webhook"}),
    ("4.2.2", {"authorization.mode": 1}),
    ("4.2.3", {"authentication.x509.clientCAFile": True}),
    ("4.2.4", {"readOnlyPort": "0"}),
    ("4.2.4", {"readOnlyPort": False}),
    ("4.2.4", {"readOnlyPort": 0.0}),
    ("4.2.4", {"readOnlyPort": -1}),
    ("4.2.4", {"readOnlyPort": 70000}),
    ("4.2.5", {"streamingConnectionIdleTimeout": "forever"}),
    ("4.2.5", {"streamingConnectionIdleTimeout": "5"}),
    ("4.2.5", {"streamingConnectionIdleTimeout": 300}),
    ("4.2.6", {"makeIPTablesUtilChains": 1}),
    ("4.2.8", {"eventRecordQPS": -1}),
    ("4.2.8", {"eventRecordQPS": "5"}),
    ("4.2.8", {"eventRecordQPS": 5.5}),
    ("4.2.9", {"tlsCertFile": ["a"]}),  # read even though serverTLSBootstrap is true
    ("4.2.9", {"serverTLSBootstrap": "true"}),
    ("4.2.10", {"rotateCertificates": "true"}),
    ("4.2.11", {"featureGates": ["RotateKubeletServerCertificate=true"]}),
    ("4.2.11", {"featureGates.RotateKubeletServerCertificate": "true"}),
    ("4.2.11", {"serverTLSBootstrap": 1}),
    ("4.2.12", {"tlsCipherSuites": ",".join(STRONG)}),
    ("4.2.12", {"tlsCipherSuites": [1, 2]}),
    ("4.2.12", {"tlsMinVersion": "TLS13"}),
    ("4.2.12", {"tlsMinVersion": "VersionTLS13", "tlsCipherSuites": "x"}),
    ("4.2.13", {"podPidsLimit": "4096"}),
    ("4.2.13", {"podPidsLimit": 1.5}),
    ("4.2.14", {"seccompDefault": "true"}),
])
def test_uninterpretable_field_is_not_verified(control_id, changes):
    with pytest.raises(NotVerified):
        check(control_id, changed(changes))


@pytest.mark.parametrize("configz", [None, [], "kubeletconfig", 3, {"kubeletconfig": []}, {"kubeletconfig": "x"}])
@pytest.mark.parametrize("row", CONFIG_ROWS, ids=lambda r: r.id)
def test_malformed_answer_is_not_verified(row, configz):
    with pytest.raises(NotVerified):
        kl.findings(row, configz, GOOD_FLAGS, NODE)
    with pytest.raises(NotVerified):
        kl.evidence(row, configz, GOOD_FLAGS)


# -- Go durations -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seconds", [
    ("4h0m0s", 14400), ("5m", 300), ("1.5h", 5400), ("300ms", 0.3), ("1h30m", 5400), ("0", 0), ("0s", 0),
    ("-3m", -180), ("+2s", 2), ("1m0.5s", 60.5), (".5s", 0.5), ("2us", 2e-6), ("2µs", 2e-6),
])
def test_go_duration(text, seconds):
    assert kl.go_duration_seconds(text, "t") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "h", "5d", "1.2.3s", "5 m", "-", "m5", "1h-5m", "."])
def test_not_a_go_duration(text):
    with pytest.raises(NotVerified):
        kl.go_duration_seconds(text, "t")


# -- evidence -------------------------------------------------------------------------------------------
def test_evidence_shows_effective_values_and_which_were_absent():
    shown = kl.evidence(ROWS["4.2.10"], changed({"rotateCertificates": DELETE}), None)
    assert shown == {"rotateCertificates": False, kl.ABSENT_KEY: ["rotateCertificates"]}
    shown = kl.evidence(ROWS["4.2.4"], GOOD, None)
    assert shown == {"readOnlyPort": 0, kl.ABSENT_KEY: ["readOnlyPort"]}
    shown = kl.evidence(ROWS["4.2.9"], GOOD, None)
    assert shown == {"tlsCertFile": "/var/lib/kubelet/pki/kubelet.crt",
                     "tlsPrivateKeyFile": "/var/lib/kubelet/pki/kubelet.key", "serverTLSBootstrap": True}
    shown = kl.evidence(ROWS["4.2.11"], changed({"featureGates": DELETE}), None)
    assert shown["featureGates.RotateKubeletServerCertificate"] == "not set (the gate's default applies)"
    assert kl.ABSENT_KEY not in shown  # an unset gate is not a zero value


def test_evidence_marks_what_it_could_not_read():
    shown = kl.evidence(ROWS["4.2.5"], changed({"streamingConnectionIdleTimeout": 5}), None)
    assert shown["streamingConnectionIdleTimeout"].startswith("not readable:")
    assert kl.evidence(ROWS["4.2.7"], None, None)["--hostname-override"].startswith("not readable:")
    assert kl.evidence(ROWS["4.2.7"], None, {"hostname-override": "a"}) == {"--hostname-override": "a"}
    assert kl.evidence(ROWS["4.2.7"], None, {}) == {"--hostname-override": "not set"}


# -- properties -------------------------------------------------------------------------------------------
def _read_paths(row) -> list[tuple]:
    return [("kubeletconfig",) + tuple(path.split(".")) for path, _ in row.reads]


@PROPERTY
@given(row=st.sampled_from(kl.ROWS), configz=JSON, flags=JSON)
def test_any_answer_gives_findings_or_not_verified(row, configz, flags):
    result = outcome(kl.findings, row, configz, flags, NODE)
    if isinstance(result, list):
        assert all(f.controls == (row.id,) and f.observed not in (None, "") for f in result)


@PROPERTY
@given(data=st.data(), row=st.sampled_from(kl.ROWS))
def test_damaged_hardened_answer_gives_findings_or_not_verified(data, row):
    configz = data.draw(mangled(GOOD))
    flags = data.draw(mangled(GOOD_FLAGS))
    outcome(kl.findings, row, configz, flags, NODE)
    try:
        assert isinstance(kl.evidence(row, configz, flags), dict)
    except NotVerified as unknown:
        assert unknown.reason


@PROPERTY
@given(data=st.data(), control_id=st.sampled_from(sorted(VIOLATING)))
def test_a_violation_is_never_passed_whatever_else_is_damaged(data, control_id):
    row = ROWS[control_id]
    configz = data.draw(mangled(VIOLATING[control_id], protected=protect_prefixes(*_read_paths(row))))
    never_passes(kl.findings, row, configz, GOOD_FLAGS, NODE)


def _wrong(kind: str):
    return JSON.filter(lambda value: value is not None and not kl._is(value, kind))


@PROPERTY
@given(data=st.data(), row=st.sampled_from(CONFIG_ROWS))
def test_a_field_of_the_wrong_type_is_never_judged(data, row):
    path, kind = data.draw(st.sampled_from(row.reads))
    configz = changed({path: data.draw(_wrong(kind))})
    with pytest.raises(NotVerified):
        kl.findings(row, configz, GOOD_FLAGS, NODE)


@PROPERTY
@given(data=st.data(), row=st.sampled_from(kl.ROWS))
def test_unrelated_fields_change_nothing(data, row):
    read = {path.split(".")[0] for path, _ in row.reads} | {"authorization"}
    extra = data.draw(st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k not in read), JSON, max_size=5))
    configz = copy.deepcopy(GOOD)
    configz["kubeletconfig"].update(extra)
    assert kl.findings(row, configz, GOOD_FLAGS, NODE) == []


@PROPERTY
@given(suites=st.lists(st.sampled_from(sorted(STRONG_CIPHER_SUITES) + [WEAK, "TLS_RSA_WITH_AES_256_GCM_SHA384",
                                                                         "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]),
                       max_size=5))
def test_cipher_list_passes_only_when_every_suite_is_strong(suites):
    found = check("4.2.12", changed({"tlsCipherSuites": suites}))
    assert (found == []) == (bool(suites) and set(suites) <= STRONG_CIPHER_SUITES)
    if found:
        named = found[0].observed
        assert all(suite in named for suite in suites if suite not in STRONG_CIPHER_SUITES)


@PROPERTY
@given(limit=st.integers(min_value=-(2**40), max_value=2**40))
def test_pids_limit_passes_only_when_positive(limit):
    assert (check("4.2.13", changed({"podPidsLimit": limit})) == []) == (limit > 0)


@PROPERTY
@given(port=st.integers(min_value=0, max_value=65535))
def test_read_only_port_passes_only_when_closed(port):
    assert (check("4.2.4", changed({"readOnlyPort": port})) == []) == (port == 0)


@PROPERTY
@given(hours=st.integers(0, 99), minutes=st.integers(0, 59), seconds=st.integers(0, 59), negative=st.booleans())
def test_idle_timeout_passes_only_when_above_zero(hours, minutes, seconds, negative):
    text = f"{'-' if negative else ''}{hours}h{minutes}m{seconds}s"
    total = hours * 3600 + minutes * 60 + seconds
    assert (check("4.2.5", changed({"streamingConnectionIdleTimeout": text})) == []) == (total > 0 and not negative)


@PROPERTY
@given(bootstrap=st.sampled_from([True, False, DELETE]), gate=st.sampled_from([True, False, DELETE]))
def test_serving_certificate_rotation_truth_table(bootstrap, gate):
    configz = changed({"serverTLSBootstrap": bootstrap, "featureGates.RotateKubeletServerCertificate": gate})
    passes = gate is not False and (bootstrap is True or gate is True)
    assert (check("4.2.11", configz) == []) == passes
