"""Unit tests for kubeproof.checks.network: which network plugin runs and whether it enforces
NetworkPolicy (CIS 5.3.1), and ingress rules of sensitive namespaces that admit every namespace."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled, never_passes, outcome, protect_prefixes

from kubeproof.checks import network as net
from kubeproof.results import NotVerified, ObjectRef


def daemonset(name, image="example.com/agent:1", namespace="kube-system", labels=None, containers=None,
              args=None) -> dict:
    containers = containers or [{"name": name, "image": image, **({"args": args} if args else {})}]
    return {"kind": "DaemonSet", "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"template": {"metadata": {"labels": labels or {}}, "spec": {"containers": containers}}}}


FLANNEL = daemonset("kube-flannel-ds", "docker.io/flannel/flannel:v0.25.1", "kube-flannel", {"app": "flannel"})
CALICO = daemonset("calico-node", "docker.io/calico/node:v3.28.0", "calico-system")
KUBE_PROXY = daemonset("kube-proxy", "registry.k8s.io/kube-proxy:v1.31.0", labels={"k8s-app": "kube-proxy"})


# -- examples: image references -------------------------------------------------------------------------
@pytest.mark.parametrize("image, repository, tag", [
    ("calico/node:v3.28.0", "calico/node", "v3.28.0"),
    ("docker.io/calico/node:v3.28.0", "calico/node", "v3.28.0"),
    ("quay.io/cilium/cilium:v1.16.0@sha256:abc", "cilium/cilium", "v1.16.0"),
    ("quay.io/cilium/cilium@sha256:abc", "cilium/cilium", None),
    ("localhost:5000/flannel/flannel", "flannel/flannel", None),
    ("registry:5000/a/b:1", "a/b", "1"),
    ("nginx", "nginx", None),
])
def test_image_repository_and_tag(image, repository, tag):
    assert net.image_repository(image) == repository
    assert net.image_tag(image) == tag


# -- examples: CNI identification -----------------------------------------------------------------------
@pytest.mark.parametrize("agent, plugin", [
    (CALICO, "Calico"),
    (daemonset("canal", containers=[{"name": "calico-node", "image": "calico/node:v3"},
                                    {"name": "kube-flannel", "image": "flannel/flannel:v0.25"}]), "Canal"),
    (daemonset("cilium", "quay.io/cilium/cilium:v1.16.0", labels={"k8s-app": "cilium"}), "Cilium"),
    (daemonset("agent", "mirror.example.com/hub/cilium/cilium:v1.16.0"), "Cilium"),
    (daemonset("antrea-agent", "antrea/antrea-agent-ubuntu:v2.1.0", labels={"component": "antrea-agent"}), "Antrea"),
    (daemonset("kube-router", "docker.io/cloudnativelabs/kube-router:v2.2"), "kube-router"),
    (daemonset("weave-net", containers=[{"name": "weave", "image": "weaveworks/weave-kube:2.8.1"},
                                        {"name": "weave-npc", "image": "weaveworks/weave-npc:2.8.1"}]), "Weave Net"),
    (daemonset("kube-network-policies", "registry.k8s.io/networking/kube-network-policies:v0.2.0"), "kube-network-policies"),
    (daemonset("kindnet", "docker.io/kindest/kindnetd:v20240813-c6f155d6"), "kindnet"),
    (daemonset("kindnet", "ghcr.io/aojea/kindnetd:stable", args=["--network-policy=true"]), "kindnet"),
])
def test_enforcing_plugins_pass(agent, plugin):
    [identified] = net.identify([KUBE_PROXY, agent])
    assert identified.plugin == plugin and identified.enforces is True
    assert net.cni_findings([KUBE_PROXY, agent]) == []


def test_flannel_alone_is_a_finding():
    [finding] = net.cni_findings([KUBE_PROXY, FLANNEL])
    assert finding.controls == ("5.3.1",)
    assert finding.object == ObjectRef("DaemonSet", "kube-flannel-ds", "kube-flannel")
    assert "does not enforce" in finding.observed


def test_flannel_with_a_policy_engine_beside_it_passes():
    assert net.cni_findings([FLANNEL, CALICO]) == []
    engine = daemonset("kube-network-policies", "registry.k8s.io/networking/kube-network-policies:v0.6.0")
    assert net.cni_findings([FLANNEL, engine]) == []


@pytest.mark.parametrize("agent", [
    daemonset("kube-router", "cloudnativelabs/kube-router:v2.2", args=["--run-router=true", "--run-firewall=false"]),
    daemonset("weave-net", "weaveworks/weave-kube:2.8.1"),
    daemonset("kindnet", "docker.io/kindest/kindnetd:v20240513-cd2ac642"),
    daemonset("kindnet", "ghcr.io/aojea/kindnetd:v1.8.0", args=["--network-policy=false"]),
    daemonset("aws-node", "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.0"),
    daemonset("aws-node", containers=[
        {"name": "aws-node", "image": "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.0"},
        {"name": "aws-network-policy-agent", "image": "x/aws-network-policy-agent:v1.1",
         "args": ["--enable-network-policy=false"]}]),
])
def test_plugins_configured_not_to_enforce_are_findings(agent):
    [finding] = net.cni_findings([agent])
    assert finding.object.name == agent["metadata"]["name"]


def test_the_amazon_vpc_cni_enforces_with_its_policy_agent_enabled():
    agent = daemonset("aws-node", containers=[
        {"name": "aws-node", "image": "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.0"},
        {"name": "aws-network-policy-agent", "image": "x/aws-network-policy-agent:v1.1",
         "args": ["--enable-network-policy=true"]}])
    assert net.cni_findings([agent]) == []


@pytest.mark.parametrize("daemonsets", [[], [KUBE_PROXY], [daemonset("mystery-cni", "example.com/net:1")]])
def test_an_unknown_plugin_is_not_verified_with_the_warning(daemonsets):
    with pytest.raises(NotVerified) as raised:
        net.cni_findings(daemonsets)
    assert raised.value.reason == net.UNKNOWN_CNI


def test_kindnet_whose_policy_support_cannot_be_told_is_not_verified():
    undetermined = daemonset("kindnet", "docker.io/kindest/kindnetd@sha256:abc")
    with pytest.raises(NotVerified, match="could not tell which CNI runs"):
        net.cni_findings([undetermined])
    # ... and stays undetermined beside flannel: not a pass, and not a finding either.
    with pytest.raises(NotVerified):
        net.cni_findings([undetermined, FLANNEL])
    assert net.cni_findings([undetermined, CALICO]) == []


@pytest.mark.parametrize("broken", [
    {"metadata": {"name": "calico-node"}, "spec": {"template": {"spec": {"containers": {"name": "c"}}}}},
    {"metadata": {"name": "x"}, "spec": {"template": {"spec": {"containers": [{"image": 5}]}}}},
    {"metadata": {"name": "x"}, "spec": {"template": {"spec": {"containers": [{"args": [1]}]}}}},
    {"metadata": {"name": "x", "labels": []}},
    {"metadata": {}}, None, "calico-node",
], ids=repr)
def test_uninterpretable_daemonsets_are_not_verified(broken):
    with pytest.raises(NotVerified):
        net.cni_findings([CALICO, broken])


# -- examples: ingress from every namespace -------------------------------------------------------------
def policy(*ingress, policy_types=("Ingress",), name="allow", namespace="vault") -> dict:
    spec = {"podSelector": {}, "policyTypes": list(policy_types)}
    if ingress:
        spec["ingress"] = list(ingress)
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


NODES = [{"metadata": {"name": "a"}, "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"]}},
         {"metadata": {"name": "b"}, "spec": {"podCIDR": "10.244.1.0/24"}}]
FRONTEND = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}},
            "podSelector": {"matchLabels": {"app": "frontend"}}}


def admits(findings) -> list[tuple[str, str]]:
    return [(f.path, f.observed) for f in findings]


@pytest.mark.parametrize("rule", [
    {"from": [FRONTEND], "ports": [{"port": 8200}]},
    {"from": [{"podSelector": {}}]},                               # every pod of its own namespace
    {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]},
    {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]},
    {"from": [{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}}]},
    {"from": [{"ipBlock": {"cidr": "192.168.10.0/24"}}]},
    {"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]},
    {"from": [{"ipBlock": {"cidr": "::/0", "except": ["fd00::/8"]}}]},
])
def test_narrow_rules_pass(rule):
    assert net.ingress_findings(policy(rule), NODES) == []


def test_a_policy_that_denies_ingress_passes():
    assert net.ingress_findings(policy(), NODES) == []


def test_a_rule_without_from_admits_everything():
    findings = net.ingress_findings(policy({"ports": [{"port": 443}]}), NODES)
    assert admits(findings) == [("spec.ingress[0]", "a rule without from: every source, every namespace")]
    assert findings[0].controls == ("5.3.2",)
    assert net.ingress_findings(policy({"from": []}), NODES) != []
    assert net.ingress_findings(policy({}), NODES) != []


@pytest.mark.parametrize("selector", [{}, {"matchLabels": {}}, {"matchExpressions": []},
                                      {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "Exists"}]}])
def test_a_namespace_selector_for_every_namespace_is_a_finding(selector):
    [finding] = net.ingress_findings(policy({"from": [FRONTEND, {"namespaceSelector": selector}]}), NODES)
    assert finding.path == "spec.ingress[0].from[1]"
    assert finding.observed == "a namespaceSelector that selects every namespace: every pod of every namespace"
    # With an empty podSelector beside it, still every pod of every namespace.
    assert net.ingress_findings(policy({"from": [{"namespaceSelector": selector, "podSelector": {}}]}), NODES) != []


def test_labelled_pods_of_every_namespace_count_as_every_namespace():
    peer = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}}
    [finding] = net.ingress_findings(policy({"from": [peer]}), NODES)
    assert finding.observed.startswith("every namespace's pods that carry the podSelector's labels")


def test_a_whole_address_family_without_except_is_a_finding_even_without_nodes():
    for cidr in ("0.0.0.0/0", "::/0"):
        [finding] = net.ingress_findings(policy({"from": [{"ipBlock": {"cidr": cidr}}]}), [])
        assert finding.path == "spec.ingress[0].from[0].ipBlock"


def test_an_except_that_leaves_pod_ranges_in_is_a_finding():
    block = {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/24", "169.254.169.254/32"]}}
    [finding] = net.ingress_findings(policy({"from": [block]}), NODES)
    assert "10.244.1.0/24" in finding.observed and "10.244.0.0/24)" not in finding.observed
    six = {"ipBlock": {"cidr": "::/0", "except": ["fd00:10:245::/64"]}}
    assert "fd00:10:244::/64" in net.ingress_findings(policy({"from": [six]}), NODES)[0].observed


def test_an_except_made_of_adjacent_ranges_covers_the_pod_network():
    block = {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/24", "10.244.1.0/24"]}}
    assert net.ingress_findings(policy({"from": [block]}), NODES) == []


def test_pod_ranges_are_needed_only_for_an_except_and_their_absence_is_not_verified():
    block = {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}
    unranged = [{"metadata": {"name": "a"}, "spec": {}}]
    with pytest.raises(NotVerified, match="records no pod address range"):
        net.ingress_findings(policy({"from": [block]}), unranged)
    with pytest.raises(NotVerified, match="no nodes"):
        net.ingress_findings(policy({"from": [block]}), [])
    unreadable = NotVerified("Node objects could not be read: 403")
    with pytest.raises(NotVerified, match="403"):
        net.ingress_findings(policy({"from": [block]}), unreadable)
    assert net.ingress_findings(policy({"from": [FRONTEND]}), unreadable) == []


def test_ingress_rules_of_an_egress_only_policy_are_ignored():
    assert net.ingress_findings(policy({}, policy_types=("Egress",)), NODES) == []
    # Without policyTypes the API server takes Ingress: the open rule counts.
    open_policy = policy({})
    del open_policy["spec"]["policyTypes"]
    assert net.ingress_findings(open_policy, NODES) != []


@pytest.mark.parametrize("rule", [
    {"from": [{}]},
    {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}, "podSelector": {}}]},
    {"from": [{"ipBlock": {"cidr": "not-a-cidr"}}]},
    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": "10.1.0.0/16"}}]},
    {"from": [{"namespaceSelector": []}]},
    {"from": [{"namespaceSelector": {"matchExpressions": [{"operator": "Exists"}]}}]},
    {"from": [{"podSelector": "app"}]},
    {"from": {"podSelector": {}}},
    "all",
], ids=repr)
def test_uninterpretable_rules_are_not_verified(rule):
    with pytest.raises(NotVerified):
        net.ingress_findings(policy(rule), NODES)


# -- properties -----------------------------------------------------------------------------------------
PEERS = st.sampled_from([
    FRONTEND, {"podSelector": {}}, {"namespaceSelector": {}}, {"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}},
    {"namespaceSelector": {"matchLabels": {"team": "x"}}}, {"ipBlock": {"cidr": "0.0.0.0/0"}},
    {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/16"]}}, {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/24"]}},
    {"ipBlock": {"cidr": "172.16.0.0/12"}},
])
RULES = st.one_of(st.just({}), st.builds(lambda peers: {"from": peers}, st.lists(PEERS, max_size=3)))


def oracle_open(rule) -> bool:
    peers = rule.get("from") or []
    if not peers:
        return True
    for peer in peers:
        if peer.get("namespaceSelector") == {}:
            return True
        block = peer.get("ipBlock")
        if block and block["cidr"] == "0.0.0.0/0" and "10.244.0.0/16" not in block.get("except", []):
            return True
    return False


@PROPERTY
@given(st.lists(RULES, max_size=3))
def test_well_formed_policies_follow_kubernetes_semantics(rules):
    assert (net.ingress_findings(policy(*rules), NODES) == []) == (not any(oracle_open(r) for r in rules))


@PROPERTY
@given(st.data())
def test_malformed_policies_give_findings_or_not_verified(data):
    rules = data.draw(st.lists(RULES, min_size=1, max_size=3))
    broken = data.draw(mangled(policy(*rules)))
    outcome(net.ingress_findings, broken, NODES)
    outcome(net.ingress_findings, policy(*rules), data.draw(mangled(NODES)))


@PROPERTY
@given(st.data())
def test_malformed_open_policies_are_never_passed(data):
    open_policy = policy({"from": [FRONTEND]}, {"from": [{"namespaceSelector": {}}]})
    broken = data.draw(mangled(open_policy, protected=protect_prefixes(
        ("spec", "ingress", 1, "from", 0, "namespaceSelector"), ("spec", "policyTypes"), ("metadata", "name"))))
    never_passes(net.ingress_findings, broken, NODES)


@PROPERTY
@given(st.lists(st.sampled_from([FLANNEL, CALICO, KUBE_PROXY, daemonset("mystery", "x/y:1")]), max_size=3), st.data())
def test_cni_identification_never_passes_without_an_enforcing_plugin(daemonsets, data):
    if CALICO in daemonsets:
        assert net.cni_findings(daemonsets) == []
    else:
        never_passes(net.cni_findings, daemonsets)
    index = data.draw(st.integers(min_value=0, max_value=max(len(daemonsets) - 1, 0)))
    if daemonsets:
        daemonsets = list(daemonsets)
        daemonsets[index] = data.draw(mangled(daemonsets[index]))
        outcome(net.cni_findings, daemonsets)


@PROPERTY
@given(st.lists(JSON, max_size=3), JSON)
def test_arbitrary_values_give_findings_or_not_verified(values, value):
    outcome(net.cni_findings, values)
    outcome(net.ingress_findings, value, NODES)
    outcome(net.ingress_findings, policy({"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}), values)
