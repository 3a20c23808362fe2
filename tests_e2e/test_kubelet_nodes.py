"""End-to-end: the kubelet controls (CIS 4.2) on real kubelets, one setting apart.

One embedded cluster runs a compliant node and, for every 4.2 control, a node whose kubelet differs
from it in that one setting. The suite must fail each of those nodes under its own control only, with
the node, the field and the observed value, and pass the compliant neighbour. A further node's kubelet
is stopped before the audit reads it: its results are not verified, never passed.

The probes are part of it: the node with anonymous requests on and the one with its read-only port
open are caught by live requests (the finding quotes the answer), not only by their configuration."""

from __future__ import annotations

import pytest
from suite_runs import run_suite

from kubeproof.checks import kubelet
from kubeproof.controlplane import EmbeddedCluster
from kubeproof.controlplane.embedded import Settings
from kubeproof.controlplane.nodes import OPEN_PORT, STRONG_CIPHERS, node_address

SUITE = ("tests_cluster/test_kubelet.py",)

# For each control, the one setting that breaks it (flags start with --).
ONE_SETTING_APART = {
    "4.2.1": {"authentication.anonymous.enabled": True},
    "4.2.2": {"authorization.mode": "AlwaysAllow"},
    "4.2.3": {"authentication.x509.clientCAFile": ""},
    "4.2.4": {"readOnlyPort": OPEN_PORT},
    "4.2.5": {"--streaming-connection-idle-timeout": "0"},
    "4.2.6": {"makeIPTablesUtilChains": False},
    "4.2.7": {"--hostname-override": "set-below"},
    "4.2.8": {"eventRecordQPS": 5},
    "4.2.9": {"tlsCertFile": "", "tlsPrivateKeyFile": ""},
    "4.2.10": {"rotateCertificates": False},
    "4.2.11": {"featureGates": {"RotateKubeletServerCertificate": False}},
    "4.2.12": {"tlsCipherSuites": list(STRONG_CIPHERS) + ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"]},
    "4.2.13": {"podPidsLimit": -1},
    "4.2.14": {"seccompDefault": False},
}
CONTROLS = list(ONE_SETTING_APART)
COMPLIANT = 0  # node index 0 keeps the hardened profile's settings
STOPPED = len(CONTROLS) + 1  # the last node is stopped before the audit


def index_of(control: str) -> int:
    return CONTROLS.index(control) + 1


@pytest.fixture(scope="module")
def apart_cluster():
    overrides = {}
    for control, setting in ONE_SETTING_APART.items():
        index = index_of(control)
        overrides[index] = {k: (node_address(index) if v == "set-below" else v) for k, v in setting.items()}
    settings = Settings.for_profile("hardened")
    settings.kubelet_overrides = overrides
    with EmbeddedCluster(profile="hardened", settings=settings, node_count=STOPPED + 1) as cluster:
        cluster.stop_node(node_address(STOPPED))
        yield cluster


@pytest.fixture(scope="module")
def audit(apart_cluster, tmp_path_factory):
    run = run_suite(tmp_path_factory.mktemp("kubelet-reports"), "--cluster=local",
                    f"--local-attach={apart_cluster.workdir}", "--tb=line", paths=SUITE)
    assert run.results is not None, run.output[-3000:]
    return run


def results_of(run, node: str) -> dict[str, dict]:
    return {r["test"]: r for r in run.records() if (r["object"] or {}).get("name") == node}


def test_the_compliant_node_passes_every_control(audit):
    results = results_of(audit, node_address(COMPLIANT))
    assert {test: r["status"] for test, r in results.items()} == {
        "test_kubelet_configuration": "passed", "test_kubelet_command_line": "passed"}
    evidence = results["test_kubelet_configuration"]["evidence"]
    assert evidence["probes"]["4.2.1"]["answer"] == "HTTP 401"
    assert evidence["probes"]["4.2.2"]["answer"] == "HTTP 403"
    assert evidence["probes"]["4.2.4"]["answer"] == "connection refused"


@pytest.mark.parametrize("control", CONTROLS)
def test_a_node_one_setting_apart_fails_that_control_only(audit, control):
    node = node_address(index_of(control))
    results = results_of(audit, node)
    failed = {f["controls"][0]: f for r in results.values() for f in r["findings"]}
    assert set(failed) == {control}, (node, failed)
    finding = failed[control]
    assert finding["object"] == {"kind": "Node", "name": node, "namespace": None, "uid": None}
    row = kubelet.row(control)
    assert finding["path"] in {row.path, *(path for path, _ in row.reads)}
    assert finding["observed"] not in ("", None)
    test = "test_kubelet_command_line" if control == "4.2.7" else "test_kubelet_configuration"
    assert results[test]["status"] == "failed"
    others = [r for name, r in results.items() if name != test]
    # The neighbouring test on the same node passes, except where the one setting hides the kubelet's
    # configuration (4.2.9: an unverified serving certificate gets no credentials).
    assert all(r["status"] in ("passed", "not_verified") for r in others)


def test_the_probes_catch_anonymous_requests_and_an_open_read_only_port(audit):
    [anonymous] = [f for r in results_of(audit, node_address(index_of("4.2.1"))).values() for f in r["findings"]]
    assert anonymous["observed"].startswith("an unauthenticated GET /pods answered HTTP 403")
    [read_only] = [f for r in results_of(audit, node_address(index_of("4.2.4"))).values() for f in r["findings"]]
    assert read_only["observed"].startswith("a GET on the read-only port answered HTTP 200")


def test_a_stopped_kubelet_is_not_verified_never_passed(audit):
    results = results_of(audit, node_address(STOPPED))
    assert {r["status"] for r in results.values()} == {"not_verified"}, results
    assert all("did not answer" in r["reason"] or "refused" in r["reason"] for r in results.values())
