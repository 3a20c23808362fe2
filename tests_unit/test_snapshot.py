"""Unit tests for kubeproof.snapshot: what is kept of each listed object, and the snapshot's release."""

from __future__ import annotations

import pytest

from kubeproof.backends import Answer
from kubeproof.snapshot import Snapshot, owned_by_a_workload

OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs-1", "controller": True}
MANAGED = [{"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:spec": {}}}]


def pod(name: str, owners=(), **extra) -> dict:
    return {"metadata": {"name": name, "namespace": "team", "uid": f"uid-{name}", "labels": {"app": "web"},
                         "ownerReferences": list(owners), "managedFields": MANAGED, "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "example.com/web:1", "securityContext": {"privileged": True}}]},
            **extra}


class ListingBackend:
    def __init__(self, items: dict[str, list[dict]]):
        self.items = items

    def request(self, method, path, **kwargs):
        return Answer(method, path, 200, {"kind": "List", "metadata": {}, "items": self.items.get(path, [])})


@pytest.fixture
def snapshot() -> Snapshot:
    return Snapshot(ListingBackend({
        "/api/v1/pods": [pod("owned", [OWNER]), pod("bare"), pod("mirror", [{"kind": "Node", "name": "n", "controller": True}])],
        "/api/v1/namespaces": [{"metadata": {"name": "team", "managedFields": MANAGED}}],
    }))


def test_managed_fields_are_never_kept(snapshot):
    assert all("managedFields" not in p["metadata"] for p in snapshot.items("pods"))
    assert "managedFields" not in snapshot.items("namespaces")[0]["metadata"]


def test_a_pod_its_controller_owns_keeps_who_it_is_and_who_owns_it_only(snapshot):
    owned, bare, mirror = snapshot.items("pods")
    assert owned == {"kind": "Pod", "apiVersion": "v1", "metadata": {
        "name": "owned", "namespace": "team", "uid": "uid-owned", "labels": {"app": "web"}, "ownerReferences": [OWNER]}}
    assert owned_by_a_workload(owned)  # still judged through its owner, never as a pod of its own
    # Pods nobody's template describes (bare ones, static pods a node owns) are kept whole.
    assert bare["spec"]["containers"][0]["securityContext"] == {"privileged": True}
    assert mirror["spec"] and mirror["metadata"]["annotations"] == {"a": "b"}
    assert [p["metadata"]["name"] for p in snapshot.in_namespace("pods", "team")] == ["owned", "bare", "mirror"]


def test_a_released_snapshot_keeps_its_summary_and_refuses_to_be_read(snapshot):
    snapshot.items("pods")
    summary = snapshot.summary()
    snapshot.release()
    assert snapshot.summary() == summary and summary["pods"]["count"] == 3
    with pytest.raises(RuntimeError, match="released"):
        snapshot.items("pods")
