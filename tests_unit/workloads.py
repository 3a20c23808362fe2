"""Builders and hypothesis strategies for workloads (controllers and bare pods), shared by the unit
tests of the workload checks: images, secrets, isolation and Pod Security per workload."""

from __future__ import annotations

import copy

from hypothesis import strategies as st
from strategies import NAMES

DIGEST = "sha256:" + "0123456789abcdef" * 4
GOOD_IMAGE = f"registry.example.com/team/app:1.4.2@{DIGEST}"

# Where each kind keeps its pod spec.
SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
KINDS = tuple(SPEC_PATHS)


def container(name="app", image=GOOD_IMAGE, **extra) -> dict:
    """A container that meets the restricted Pod Security level."""
    return {
        "name": name,
        "image": image,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        **extra,
    }


def pod_spec(containers=None, **extra) -> dict:
    return {
        "serviceAccountName": "app",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container()] if containers is None else containers,
        **extra,
    }


def workload(kind="Deployment", name="web", namespace="team", spec=None) -> dict:
    spec = pod_spec() if spec is None else spec
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"}}
    holder = obj
    for step in SPEC_PATHS[kind][:-1]:
        holder = holder.setdefault(step, {})
    holder[SPEC_PATHS[kind][-1]] = spec
    return obj


def spec_of(obj: dict) -> dict:
    holder = obj
    for step in SPEC_PATHS[obj["kind"]]:
        holder = holder[step]
    return holder


def spec_path(kind: str) -> str:
    return ".".join(SPEC_PATHS[kind])


def spec_key(kind: str) -> tuple:
    return SPEC_PATHS[kind]


# -- strategies --------------------------------------------------------------------------------------
IMAGES = st.sampled_from([
    GOOD_IMAGE, "nginx", "nginx:1.25", "nginx:latest", "ghcr.io/org/tool:v2", f"ghcr.io/org/tool@{DIGEST}",
    "localhost:5000/x:dev", "quay.io/a/b/c:1", f"docker.io/library/busybox:1.36@{DIGEST}",
])
ENV = st.one_of(
    st.builds(lambda n, v: {"name": n, "value": v}, st.sampled_from(["LOG_LEVEL", "DB_PASSWORD", "apiKey", "PORT"]),
              st.sampled_from(["", "1", "debug", "$(OTHER)"])),
    st.builds(lambda n, s: {"name": n, "valueFrom": {"secretKeyRef": {"name": s, "key": "k"}}}, NAMES, NAMES),
    st.builds(lambda n, s: {"name": n, "valueFrom": {"configMapKeyRef": {"name": s, "key": "k"}}}, NAMES, NAMES),
)
CONTAINERS = st.builds(
    lambda name, image, env, policy: container(name, image, env=env, **({"imagePullPolicy": policy} if policy else {})),
    NAMES, IMAGES, st.lists(ENV, max_size=3), st.sampled_from([None, "Always", "IfNotPresent", "Never"]),
)


NAMESPACES = st.sampled_from(["team", "default", "payments"])


@st.composite
def workloads(draw, kinds=KINDS, namespaces=NAMESPACES):
    kind = draw(st.sampled_from(kinds))
    spec = pod_spec(containers=draw(st.lists(CONTAINERS, min_size=1, max_size=3)))
    if draw(st.booleans()):
        spec["initContainers"] = draw(st.lists(CONTAINERS, min_size=1, max_size=2))
    if kind == "Pod" and draw(st.booleans()):
        spec["ephemeralContainers"] = draw(st.lists(CONTAINERS, min_size=1, max_size=2))
    return workload(kind, draw(NAMES), draw(namespaces), spec)


def with_container(obj: dict, list_name: str, position: int, new: dict) -> tuple[dict, tuple]:
    """A copy of `obj` with `new` inserted into one of its container lists; returns the copy and the
    path of the inserted container, for protecting it from mangling."""
    obj = copy.deepcopy(obj)
    spec = spec_of(obj)
    listed = spec.setdefault(list_name, [])
    position = min(position, len(listed))
    listed.insert(position, new)
    return obj, SPEC_PATHS[obj["kind"]] + (list_name, position)
