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


def test_role_writes_nothing():
    for rule in _role()["rules"]:
        verbs = set(rule["verbs"])
        if verbs - READ:
            assert verbs == {"create"}
            assert set(rule["resources"]) <= {"subjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectreviews"}
