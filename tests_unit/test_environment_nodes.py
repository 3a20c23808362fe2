"""The evidence's environment names the nodes the audit saw (kubelet, runtime, OS), as the nodes
report them; what cannot be read says so, and odd objects never stop the run."""

from __future__ import annotations

from types import SimpleNamespace

from kubeproof.reporting import describe_nodes
from kubeproof.results import NotVerified


def node(name, kubelet="v1.37.2", runtime="containerd://2.3.4", os_image="Debian GNU/Linux 12 (bookworm)"):
    return {"metadata": {"name": name},
            "status": {"nodeInfo": {"kubeletVersion": kubelet, "containerRuntimeVersion": runtime, "osImage": os_image}}}


def audit(nodes, kind="kind"):
    def items(name):
        assert name == "nodes"
        if isinstance(nodes, Exception):
            raise nodes
        return nodes

    return SimpleNamespace(backend=SimpleNamespace(kind=kind), snapshot=SimpleNamespace(items=items), nodes=None)


def test_each_node_is_named_with_its_kubelet_runtime_and_os():
    assert describe_nodes(audit([node("kind-hardened-control-plane")])) == (
        "kind-hardened-control-plane (kubelet v1.37.2, containerd://2.3.4, Debian GNU/Linux 12 (bookworm))")


def test_many_nodes_are_counted_not_listed():
    described = describe_nodes(audit([node(f"n{i}") for i in range(8)]))
    assert described.count("(kubelet") == 5 and described.endswith("; and 3 more")


def test_odd_node_objects_are_described_as_far_as_they_go():
    assert describe_nodes(audit([{"metadata": None, "status": {"nodeInfo": ["x"]}}, "not a node"])) == (
        "? (kubelet ?, runtime ?); ? (kubelet ?, runtime ?)")


def test_what_cannot_be_read_says_so_and_is_asked_once():
    unreadable = audit(NotVerified("nodes objects could not be read: 403"))
    assert describe_nodes(unreadable) == "not readable: nodes objects could not be read: 403"
    unreadable.snapshot = None  # a second call must not reach the snapshot (it is released by then)
    assert describe_nodes(unreadable).startswith("not readable")
    assert describe_nodes(audit([], kind="manifests")).startswith("none (manifests")
    assert describe_nodes(audit([])) == "none"
