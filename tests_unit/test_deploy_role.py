"""The shipped in-cluster ClusterRole must let the suite read every kind it lists, and nothing more
than reading and asking the authorizer."""

from pathlib import Path

import yaml

from kubeproof.snapshot import KINDS

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
READ = {"get", "list", "watch"}


def _role() -> dict:
    documents = yaml.safe_load_all((DEPLOY / "rbac.yaml").read_text())
    return next(d for d in documents if d and d.get("kind") == "ClusterRole")


def test_role_reads_every_kind_the_snapshot_lists():
    readable = {(group, resource) for rule in _role()["rules"] if READ <= set(rule["verbs"])
                for group in rule["apiGroups"] for resource in rule["resources"]}
    missing = [k.path for k in KINDS.values() if (k.group, k.name) not in readable]
    assert missing == []


# What the node checks read besides the snapshot's kinds: the kubelet's /configz and /flagz (both
# authorized as nodes/configz) and the kube-proxy ConfigMap, by name.
NODE_RIGHTS = [
    {"apiGroups": [""], "resources": ["nodes/configz"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["kube-proxy"], "verbs": ["get"]},
]


def test_role_holds_exactly_the_node_rights_the_node_checks_use():
    subresources = [rule for rule in _role()["rules"] if any("/" in r for r in rule["resources"])]
    named = [rule for rule in _role()["rules"] if rule.get("resourceNames")]
    assert subresources + named == NODE_RIGHTS
    granted = {r for rule in _role()["rules"] for r in rule["resources"]}
    # nodes/proxy would reach every kubelet API (exec, logs, pods): CIS 5.1 flags it.
    assert not granted & {"nodes/proxy", "nodes/*", "*", "nodes/pods", "nodes/log", "nodes/stats"}
    assert "configmaps" not in {r for rule in _role()["rules"] if not rule.get("resourceNames") for r in rule["resources"]}


def test_role_writes_nothing():
    for rule in _role()["rules"]:
        verbs = set(rule["verbs"])
        if verbs - READ:
            assert verbs == {"create"}
            assert set(rule["resources"]) <= {"subjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectreviews"}
