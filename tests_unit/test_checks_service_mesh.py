"""Unit tests for kubeproof.checks.service_mesh: Istio's mesh-wide STRICT mutual TLS and the policies
that would weaken it; Linkerd's detection and its meshing of application namespaces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled, never_passes, outcome, protect_prefixes

from kubeproof.checks import service_mesh as sm
from kubeproof.results import NotVerified, ObjectRef


def peer_auth(name="default", namespace="istio-system", mode="STRICT", selector=None, ports=None) -> dict:
    spec = {}
    if mode is not None:
        spec["mtls"] = {"mode": mode}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    if ports is not None:
        spec["portLevelMtls"] = {str(port): {"mode": m} for port, m in ports.items()}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


MESH_STRICT = peer_auth()


# -- Istio: mesh-wide -----------------------------------------------------------------------------------
def test_a_strict_mesh_wide_policy_passes():
    assert sm.mesh_wide_findings([MESH_STRICT, peer_auth("ns", "shop", "PERMISSIVE")]) == []


def test_no_mesh_wide_policy_is_a_finding():
    [finding] = sm.mesh_wide_findings([peer_auth("ns", "shop", "STRICT")])
    assert finding.object == ObjectRef("PeerAuthentication", "(mesh-wide)", "istio-system")
    assert "defaults to PERMISSIVE" in finding.observed


def test_a_policy_with_a_selector_in_the_root_namespace_is_not_mesh_wide():
    assert sm.mesh_wide_findings([peer_auth(selector={"app": "gw"})]) != []
    # An empty matchLabels selects the whole namespace, as no selector does.
    assert sm.mesh_wide_findings([peer_auth(selector={})]) == []


@pytest.mark.parametrize("mode", ["PERMISSIVE", "DISABLE", "UNSET", None])
def test_a_mesh_wide_policy_that_is_not_strict_is_a_finding(mode):
    [finding] = sm.mesh_wide_findings([peer_auth(mode=mode)])
    assert finding.path == "spec.mtls.mode" and finding.object.name == "default"
    assert finding.observed.startswith(mode or "UNSET")


def test_a_second_mesh_wide_policy_that_is_weaker_is_a_finding():
    findings = sm.mesh_wide_findings([MESH_STRICT, peer_auth("legacy", mode="PERMISSIVE")])
    assert [(f.object.name, f.observed) for f in findings] == [("legacy", "PERMISSIVE")]


def test_another_root_namespace_can_be_given():
    assert sm.mesh_wide_findings([peer_auth(namespace="mesh-root")], root_namespace="mesh-root") == []


# -- Istio: per policy ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["STRICT", "UNSET", None])
def test_strict_or_inheriting_policies_pass(mode):
    assert sm.weakening_findings(peer_auth("ns", "shop", mode)) == []


@pytest.mark.parametrize("mode", ["PERMISSIVE", "DISABLE"])
def test_namespace_and_workload_overrides_that_weaken_are_findings(mode):
    [namespace_wide] = sm.weakening_findings(peer_auth("ns", "shop", mode))
    assert (namespace_wide.path, namespace_wide.observed) == ("spec.mtls.mode", mode)
    [workload] = sm.weakening_findings(peer_auth("db", "shop", mode, selector={"app": "db"}))
    assert workload.object == ObjectRef("PeerAuthentication", "db", "shop")


def test_a_weak_port_is_a_finding_even_under_a_strict_policy():
    policy = peer_auth("db", "shop", "STRICT", selector={"app": "db"}, ports={8080: "PERMISSIVE", 9090: "STRICT", 15020: "DISABLE"})
    findings = sm.weakening_findings(policy)
    assert [(f.path, f.observed) for f in findings] == [("spec.portLevelMtls[15020].mode", "DISABLE"),
                                                       ("spec.portLevelMtls[8080].mode", "PERMISSIVE")]


def test_a_port_without_a_mode_inherits():
    assert sm.weakening_findings(peer_auth("db", "shop", ports={8080: None})) == []


@pytest.mark.parametrize("spec", [
    {"mtls": {"mode": "strict"}}, {"mtls": {"mode": 3}}, {"mtls": "STRICT"}, {"mtls": {"mode": "OPTIONAL"}},
    {"portLevelMtls": [{"mode": "PERMISSIVE"}]}, {"portLevelMtls": {"80": "PERMISSIVE"}},
    {"selector": ["app"]}, {"selector": {"matchLabels": "app"}},
], ids=repr)
def test_uninterpretable_policies_are_not_verified(spec):
    policy = peer_auth("x", "shop")
    policy["spec"] = spec
    with pytest.raises(NotVerified):
        sm.weakening_findings(policy)
    with pytest.raises(NotVerified):
        sm.mesh_wide_findings([MESH_STRICT, policy])


@pytest.mark.parametrize("policy", [None, "p", {}, {"metadata": {"name": "p"}}, {"metadata": {"name": "p", "namespace": "s"},
                                                                                    "spec": []}], ids=repr)
def test_uninterpretable_policy_objects_are_not_verified(policy):
    with pytest.raises(NotVerified):
        sm.weakening_findings(policy)


def test_summary_for_the_report():
    assert sm.peer_authentication_summaries([MESH_STRICT]) == {
        "PeerAuthentication/istio-system/default": {"namespace": "istio-system", "selector": {},
                                                    "modes": {"spec.mtls.mode": "STRICT"}}}


# -- Linkerd --------------------------------------------------------------------------------------------
def namespace(name="shop", labels=None, inject=None) -> dict:
    meta = {"name": name, "labels": labels or {}}
    if inject is not None:
        meta["annotations"] = {"linkerd.io/inject": inject}
    return {"kind": "Namespace", "metadata": meta}


def deployment(name="web", ns="shop", inject=None, labels=None, host_network=None) -> dict:
    template_meta = {"labels": {"app": name}}
    if inject is not None:
        template_meta["annotations"] = {"linkerd.io/inject": inject}
    spec = {"containers": [{"name": "c", "image": "nginx"}]}
    if host_network is not None:
        spec["hostNetwork"] = host_network
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"template": {"metadata": template_meta, "spec": spec}}}


def owned_pod(name="web-1", ns="shop") -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns, "ownerReferences": [
        {"kind": "ReplicaSet", "name": "web-x", "controller": True}]}, "spec": {"containers": [{"name": "c"}]}}


LINKERD_NS = namespace("linkerd", {"linkerd.io/is-control-plane": "true", "linkerd.io/control-plane-ns": "linkerd"})


def test_linkerd_is_found_by_its_namespace_label_or_its_control_plane_deployments():
    assert sm.linkerd_control_plane_namespaces([LINKERD_NS, namespace()], []) == ["linkerd"]
    destination = deployment("linkerd-destination", "mesh", labels={"linkerd.io/control-plane-component": "destination"})
    assert sm.linkerd_control_plane_namespaces([namespace("mesh")], [destination]) == ["mesh"]
    assert sm.linkerd_control_plane_namespaces([namespace()], [deployment()]) == []
    # Meshed pods carry linkerd.io/control-plane-ns too; only the control plane's own label counts.
    assert sm.linkerd_control_plane_namespaces([namespace(labels={"linkerd.io/control-plane-ns": "linkerd"})], []) == []


def test_kubernetes_and_linkerd_namespaces_are_not_application_namespaces():
    assert sm.linkerd_own_namespace(namespace("kube-system"), ["linkerd"])
    assert sm.linkerd_own_namespace(LINKERD_NS, ["linkerd"])
    assert sm.linkerd_own_namespace(namespace("linkerd-viz", {"linkerd.io/extension": "viz"}), ["linkerd"])
    assert not sm.linkerd_own_namespace(namespace("default"), ["linkerd"])


def test_an_injecting_namespace_passes():
    assert sm.linkerd_findings(namespace(inject="enabled"), [deployment(), owned_pod()]) == []
    assert sm.linkerd_findings(namespace(inject="enabled"), []) == []


def test_a_namespace_whose_every_workload_asks_for_the_proxy_passes():
    assert sm.linkerd_findings(namespace(), [deployment(inject="enabled"), deployment("gw", inject="ingress")]) == []
    # A workload's annotation overrides the namespace's.
    assert sm.linkerd_findings(namespace(inject="disabled"), [deployment(inject="enabled")]) == []


def test_an_unmeshed_workload_is_a_finding():
    [finding] = sm.linkerd_findings(namespace(), [deployment(inject="enabled"), deployment("db")])
    assert finding.object == ObjectRef("Deployment", "db", "shop")
    assert finding.path == "spec.template.metadata.annotations[linkerd.io/inject]"


def test_a_workload_that_opts_out_of_an_injecting_namespace_is_a_finding():
    [finding] = sm.linkerd_findings(namespace(inject="enabled"), [deployment(), deployment("db", inject="disabled")])
    assert (finding.object.name, finding.observed) == ("db", "disabled")


def test_a_host_network_workload_is_never_meshed():
    [finding] = sm.linkerd_findings(namespace(inject="enabled"), [deployment(host_network=True)])
    assert finding.path == "spec.template.spec.hostNetwork"


@pytest.mark.parametrize("inject", [None, "disabled"])
def test_an_empty_namespace_that_does_not_inject_is_a_finding(inject):
    [finding] = sm.linkerd_findings(namespace(inject=inject), [])
    assert finding.object == ObjectRef("Namespace", "shop")


def test_pods_owned_by_a_controller_are_judged_through_it():
    # The ReplicaSet's pod is not judged on its own: the namespace injects, the Deployment does not opt out.
    assert sm.linkerd_findings(namespace(inject="enabled"), [owned_pod()]) == []


@pytest.mark.parametrize("bad", [
    {"kind": "Deployment", "metadata": {"name": "x", "namespace": "shop"}, "spec": {"template": []}},
    {"kind": "Widget", "metadata": {"name": "x", "namespace": "shop"}},
    {"kind": "Deployment", "metadata": {"name": "x", "namespace": "shop"},
     "spec": {"template": {"metadata": {"annotations": {"linkerd.io/inject": 1}}}}},
    {"kind": "Deployment", "metadata": {"name": "x", "namespace": "shop"},
     "spec": {"template": {"spec": {"hostNetwork": "yes"}}}},
    "web", None,
], ids=repr)
def test_uninterpretable_workloads_are_not_verified(bad):
    with pytest.raises(NotVerified):
        sm.linkerd_findings(namespace(inject="enabled"), [bad])


# -- properties -----------------------------------------------------------------------------------------
MODES = st.sampled_from(["STRICT", "PERMISSIVE", "DISABLE", "UNSET", None])


@st.composite
def policies(draw):
    ports = draw(st.none() | st.dictionaries(st.sampled_from([80, 443, 8080]), MODES, max_size=2))
    selector = draw(st.none() | st.just({}) | st.just({"app": "db"}))
    return peer_auth(draw(st.sampled_from(["default", "p1", "p2"])), draw(st.sampled_from(["istio-system", "shop"])),
                     draw(MODES), selector, ports)


def oracle_weak(policy) -> bool:
    spec = policy["spec"]
    modes = [(spec.get("mtls") or {}).get("mode")] + [p.get("mode") for p in (spec.get("portLevelMtls") or {}).values()]
    return any(m in ("PERMISSIVE", "DISABLE") for m in modes)


@PROPERTY
@given(policies())
def test_well_formed_policies_follow_istio_semantics(policy):
    assert (sm.weakening_findings(policy) != []) == oracle_weak(policy)


@PROPERTY
@given(st.lists(policies(), max_size=4))
def test_mesh_wide_strictness_follows_istio_semantics(drawn):
    mesh_wide = [p for p in drawn if p["metadata"]["namespace"] == "istio-system" and not (p["spec"].get("selector") or {}).get("matchLabels")]
    strict = bool(mesh_wide) and all(
        (p["spec"].get("mtls") or {}).get("mode") == "STRICT"
        and all(v.get("mode") == "STRICT" for v in (p["spec"].get("portLevelMtls") or {}).values())
        for p in mesh_wide)
    assert (sm.mesh_wide_findings(drawn) == []) == strict


@PROPERTY
@given(st.data())
def test_malformed_policies_give_findings_or_not_verified(data):
    broken = data.draw(mangled(data.draw(policies())))
    outcome(sm.weakening_findings, broken)
    outcome(sm.mesh_wide_findings, [broken])


@PROPERTY
@given(st.data())
def test_malformed_weak_policies_are_never_passed(data):
    weak = peer_auth("ns", "shop", "PERMISSIVE")
    broken = data.draw(mangled(weak, protected=protect_prefixes(("spec", "mtls", "mode"), ("metadata", "name"))))
    never_passes(sm.weakening_findings, broken)


@PROPERTY
@given(st.data())
def test_malformed_workloads_give_findings_or_not_verified(data):
    workloads = [deployment(inject="enabled"), data.draw(mangled(deployment("db", inject="disabled")))]
    outcome(sm.linkerd_findings, namespace(), workloads)
    outcome(sm.linkerd_findings, data.draw(mangled(namespace(inject="enabled"))), workloads)


@PROPERTY
@given(st.data())
def test_malformed_unmeshed_workloads_are_never_passed(data):
    # Whatever else is mangled, the pod template still opts out; the namespace never injects.
    unmeshed = data.draw(mangled(deployment("db", inject="disabled"), protected=protect_prefixes(
        ("spec", "template", "metadata", "annotations", "linkerd.io/inject"), ("kind",), ("metadata", "name"),
        ("metadata", "namespace"), ("metadata", "ownerReferences"))))
    never_passes(sm.linkerd_findings, namespace(), [unmeshed])


@PROPERTY
@given(JSON, st.lists(JSON, max_size=3))
def test_arbitrary_values_give_findings_or_not_verified(value, values):
    outcome(sm.weakening_findings, value)
    outcome(sm.mesh_wide_findings, values)
    outcome(sm.linkerd_findings, value, values)
    outcome(sm.linkerd_findings, namespace(), values)
    try:
        found = sm.linkerd_control_plane_namespaces(values, values)
    except NotVerified:
        return
    assert isinstance(found, list) and all(isinstance(n, str) for n in found)
