"""Unit tests for kubeproof.checks.kube_proxy (CIS 4.3.1): kubeadm's kube-proxy configuration passes
(its empty metricsBindAddress means the loopback default); an address on any other interface fails;
the flag counts only when kube-proxy runs without --config, as kube-proxy itself decides; and what
cannot be read is NotVerified."""

from __future__ import annotations

import ipaddress

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled, never_passes, outcome, protect_prefixes

from kubeproof import cis
from kubeproof.checks import kube_proxy as kp
from kubeproof.results import NotVerified, ObjectRef

# config.conf as kubeadm writes it into the kube-proxy ConfigMap (abridged).
KUBEADM = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
clusterCIDR: 10.244.0.0/16
healthzBindAddress: ""
kind: KubeProxyConfiguration
metricsBindAddress: ""
mode: iptables
"""
CONFIG_FLAG = {"config": "/var/lib/kube-proxy/config.conf", "hostname-override": "worker-1"}


def config(**fields) -> dict:
    document = yaml.safe_load(KUBEADM)
    for key, value in fields.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def text(**fields) -> str:
    return yaml.safe_dump(config(**fields))


def test_the_control_is_the_only_kube_proxy_control():
    assert {c["id"] for c in cis.controls() if c["id"].startswith("4.3.")} == {kp.CONTROL}


# -- the configuration document ---------------------------------------------------------------------
def test_kubeadm_configuration_passes_on_the_default():
    assert kp.findings(KUBEADM) == []
    shown = kp.evidence(KUBEADM)
    assert shown["metricsBindAddress"] == ""
    assert shown["metrics address in effect"] == "127.0.0.1:10249"
    assert "default" in shown["from"] and "empty" in shown["from"] and "assumed" in shown["from"]


def test_absent_field_means_the_loopback_default():
    assert kp.findings(text(metricsBindAddress=None)) == []
    shown = kp.evidence(config(metricsBindAddress=None))
    assert shown["metricsBindAddress"] == "not set" and "absent" in shown["from"]
    assert kp.findings("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                       "metricsBindAddress: null\n") == []


@pytest.mark.parametrize("address", ["127.0.0.1:10249", "127.0.0.1:9999", "127.1.2.3:10249", "[::1]:10249",
                                     "localhost:10249", "127.0.0.1", "::1", "localhost"])
def test_loopback_address_passes(address):
    assert kp.findings(text(metricsBindAddress=address)) == []
    assert kp.findings(config(metricsBindAddress=address)) == []


@pytest.mark.parametrize("address", ["0.0.0.0:10249", ":10249", "[::]:10249", "10.0.0.5:10249", "0.0.0.0",
                                     "::", "[2001:db8::1]:10249", "192.168.1.10"])
def test_address_on_another_interface_fails(address):
    [finding] = kp.findings(text(metricsBindAddress=address))
    assert finding.controls == ("4.3.1",) and finding.object == kp.CONFIGMAP
    assert (finding.path, finding.observed) == ("metricsBindAddress", address)
    assert finding.expected == kp.EXPECTED and finding.remediation


def test_finding_points_at_the_object_given():
    node = ObjectRef("Node", "worker-1")
    assert kp.findings(text(metricsBindAddress="0.0.0.0:10249"), None, node)[0].object == node


@pytest.mark.parametrize("address", ["metrics.example:10249", "127.0.0.1:http", "127.0.0.1:99999", "[::1",
                                     "[::1]10249", "a:b:c", "127.0.0.1:", "localhost:-1"])
def test_address_kube_proxy_could_not_bind_is_not_verified(address):
    with pytest.raises(NotVerified):
        kp.findings(text(metricsBindAddress=address))


@pytest.mark.parametrize("value", [10249, True, ["127.0.0.1:10249"], {"host": "127.0.0.1"}])
def test_field_that_is_not_text_is_not_verified(value):
    with pytest.raises(NotVerified):
        kp.findings(config(metricsBindAddress=value))


@pytest.mark.parametrize("document", [
    "", "{", "- a\n- b\n", "just text", "42",
    "metricsBindAddress: 127.0.0.1:10249\n",  # no kind: kube-proxy would not load it
    "apiVersion: v1\nkind: ConfigMap\n",
    "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n",
    "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeProxyConfiguration\n",
    "kind: KubeProxyConfiguration\n",
])
def test_document_kube_proxy_would_refuse_is_not_verified(document):
    with pytest.raises(NotVerified):
        kp.findings(document)


@pytest.mark.parametrize("value", [None, [], 3, {}, {"metricsBindAddress": "0.0.0.0:10249"}])
def test_configuration_not_read_or_not_a_document_is_not_verified(value):
    with pytest.raises(NotVerified):
        kp.findings(value)
    with pytest.raises(NotVerified):
        kp.evidence(value)


def test_configmap_text_is_read():
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                 "data": {"config.conf": KUBEADM, "kubeconfig.conf": "..."}}
    assert kp.config_from_configmap(configmap) == KUBEADM
    for broken in (None, {}, {"data": None}, {"data": {"kubeconfig.conf": "x"}}, {"data": {"config.conf": 1}}):
        with pytest.raises(NotVerified):
            kp.config_from_configmap(broken)


# -- the command line --------------------------------------------------------------------------------
def test_with_config_the_file_decides_and_the_flag_is_ignored():
    flags = {**CONFIG_FLAG, "metrics-bind-address": "0.0.0.0:10249"}
    assert kp.findings(KUBEADM, flags) == []
    assert "ignore --metrics-bind-address=0.0.0.0:10249" in kp.evidence(KUBEADM, flags)["from"]
    flags = {**CONFIG_FLAG, "metrics-bind-address": "127.0.0.1:10249"}
    [finding] = kp.findings(text(metricsBindAddress="0.0.0.0:10249"), flags)
    assert finding.path == "metricsBindAddress"


def test_with_config_not_readable_is_not_verified():
    with pytest.raises(NotVerified, match="/var/lib/kube-proxy/config.conf"):
        kp.findings(None, CONFIG_FLAG)


def test_without_config_the_flag_decides():
    [finding] = kp.findings(KUBEADM, {"metrics-bind-address": "0.0.0.0:10249"})
    assert (finding.path, finding.observed) == ("--metrics-bind-address", "0.0.0.0:10249")
    assert kp.findings(None, {"--metrics-bind-address": "0.0.0.0:10249"})[0].path == "--metrics-bind-address"
    # The document given is not what runs: a loopback flag passes whatever it says.
    assert kp.findings(text(metricsBindAddress="0.0.0.0:10249"), {"metrics-bind-address": "127.0.0.1:10249"}) == []
    assert "not what it runs with" in kp.evidence(KUBEADM, {"metrics-bind-address": "127.0.0.1:10249"})["from"]


def test_without_config_or_flag_the_default_applies():
    assert kp.findings(None, {}) == []
    assert kp.findings(None, {"config": ""}) == []  # an empty --config is no file
    shown = kp.evidence(None, {"hostname-override": "x"})
    assert shown["metrics address in effect"] == "127.0.0.1:10249" and "default" in shown["from"]


@pytest.mark.parametrize("flags", [{"metrics-bind-address": ""}, {"metrics-port": "0"},
                                   {"metrics-port": "0", "metrics-bind-address": "0.0.0.0:10249"}])
def test_metrics_server_switched_off_passes(flags):
    assert kp.findings(None, flags) == []
    assert kp.evidence(None, flags)["metrics address in effect"] == "none (metrics server off)"


@pytest.mark.parametrize("flags", [["metrics-bind-address"], "x", {"metrics-bind-address": None},
                                   {1: "0.0.0.0:10249"}, {"metrics-port": "ten"}, {"metrics-port": "-1"}])
def test_malformed_command_line_is_not_verified(flags):
    with pytest.raises(NotVerified):
        kp.findings(KUBEADM, flags)


def test_deprecated_metrics_port_does_not_move_the_host():
    [finding] = kp.findings(None, {"metrics-port": "9999", "metrics-bind-address": "0.0.0.0"})
    assert finding.observed == "0.0.0.0"
    assert kp.findings(None, {"metrics-port": "9999"}) == []


# -- properties -------------------------------------------------------------------------------------------
FLAG_NAMES = ["config", "metrics-bind-address", "metrics-port", "hostname-override"]
VALUES = st.one_of(st.sampled_from(["", "0", "127.0.0.1:10249", "0.0.0.0:10249", ":10249", "[::1]:1", "x"]),
                   st.text(max_size=12))


@PROPERTY
@given(document=st.one_of(JSON, st.text(max_size=60)), flags=st.one_of(st.none(), JSON))
def test_anything_gives_findings_or_not_verified(document, flags):
    outcome(kp.findings, document, flags)


@PROPERTY
@given(data=st.data(), flags=st.one_of(st.none(), st.dictionaries(st.sampled_from(FLAG_NAMES), VALUES, max_size=3)))
def test_damaged_configuration_gives_findings_or_not_verified(data, flags):
    document = data.draw(mangled(config(metricsBindAddress="127.0.0.1:10249")))
    result = outcome(kp.findings, document, flags)
    if isinstance(result, list):
        assert all(f.controls == ("4.3.1",) and f.observed for f in result)


@PROPERTY
@given(data=st.data(), address=st.sampled_from(["0.0.0.0:10249", ":10249", "[::]:10249", "10.1.2.3:10249"]))
def test_an_exposed_address_is_never_passed_whatever_else_is_damaged(data, address):
    document = data.draw(mangled(config(metricsBindAddress=address), protected=protect_prefixes(("metricsBindAddress",))))
    never_passes(kp.findings, document)
    never_passes(kp.findings, document, CONFIG_FLAG)


@PROPERTY
@given(ip=st.ip_addresses(), port=st.integers(min_value=0, max_value=65535), in_flag=st.booleans())
def test_an_address_passes_only_on_loopback(ip, port, in_flag):
    address = f"[{ip}]:{port}" if isinstance(ip, ipaddress.IPv6Address) else f"{ip}:{port}"
    if in_flag:
        found = kp.findings(None, {"metrics-bind-address": address})
    else:
        found = kp.findings(text(metricsBindAddress=address))
    assert (found == []) == ip.is_loopback


# -- the DaemonSet's command line ----------------------------------------------------------------------
def daemonset(*containers) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
            "spec": {"template": {"spec": {"containers": list(containers)}}}}


KUBEADM_CONTAINER = {"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.33.0",
                     "command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf",
                                 "--hostname-override=$(NODE_NAME)"]}


def test_daemonset_flags_as_kubeadm_writes_them():
    flags = kp.daemonset_flags(daemonset(KUBEADM_CONTAINER))
    assert flags == {"config": "/var/lib/kube-proxy/config.conf", "hostname-override": "$(NODE_NAME)"}
    assert kp.findings(KUBEADM, flags) == []


def test_daemonset_flags_in_args_and_separate_values():
    container = {"name": "proxy", "command": ["kube-proxy"],
                 "args": ["--metrics-bind-address", "0.0.0.0:10249", "--v=2", "--cleanup", "-x=1"]}
    flags = kp.daemonset_flags(daemonset({"name": "sidecar", "command": ["pause"]}, container))
    assert flags == {"metrics-bind-address": "0.0.0.0:10249", "v": "2", "cleanup": "true", "x": "1"}
    assert kp.findings(None, flags)[0].path == "--metrics-bind-address"


@pytest.mark.parametrize("container", [
    {"name": "kube-proxy", "command": ["/bin/sh", "-c", "kube-proxy --config=/x"]},  # a wrapper: not readable
    {"name": "kube-proxy", "args": ["--config=/x"]},  # the image's entrypoint: not known
    {"name": "kube-proxy"},
])
def test_daemonset_that_does_not_show_the_command_line(container):
    assert kp.daemonset_flags(daemonset(container)) is None


@pytest.mark.parametrize("broken", [
    None, {}, {"spec": {"template": {"spec": {"containers": "x"}}}}, daemonset("x"),
    daemonset({"name": "kube-proxy", "command": "kube-proxy --config=/x"}),
    daemonset({"name": "kube-proxy", "command": ["kube-proxy", 3]}),
    daemonset({"name": "kube-proxy", "command": ["kube-proxy", "positional"]}),
    daemonset({"name": "kube-proxy", "command": ["kube-proxy", "--"]}),
])
def test_unreadable_daemonset_is_not_verified(broken):
    with pytest.raises(NotVerified):
        kp.daemonset_flags(broken)


@PROPERTY
@given(data=st.data())
def test_damaged_daemonset_gives_flags_none_or_not_verified(data):
    damaged = data.draw(mangled(daemonset(KUBEADM_CONTAINER)))
    try:
        flags = kp.daemonset_flags(damaged)
    except NotVerified as unknown:
        assert unknown.reason
        return
    assert flags is None or all(isinstance(k, str) and isinstance(v, str) for k, v in flags.items())
