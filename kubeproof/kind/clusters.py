"""The kind lane's two clusters, on the node image assembled here: kind-hardened, created the way a
user would (examples/kind/create.sh), and kind-insecure, which breaks every headline practice.

`python -m kubeproof.kind image|up|down` is what `make kind-image`, `make kind-up` and `make kind-down` run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from kubeproof.controlplane import build
from kubeproof.kind import engine, nodeimage

HARDENED = "kind-hardened"
INSECURE = "kind-insecure"
CLUSTERS = (HARDENED, INSECURE)
CREATE_SCRIPT = build.REPO_ROOT / "examples" / "kind" / "create.sh"
INSECURE_CONFIG = build.REPO_ROOT / "tools" / "kind" / "kind-insecure.yaml"
# What kind-insecure holds beyond kind's defaults: a role anyone could be given that allows everything.
INSECURE_OBJECTS = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kubeproof-lane-everything}
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
"""


class ClusterError(RuntimeError):
    pass


def _tool_path(image: nodeimage.NodeImage) -> str:
    # kind and a kubectl of the cluster's release, ahead of anything else on PATH.
    return os.pathsep.join([str(image.bin), str(build.pinned().folder), os.environ.get("PATH", "")])


def existing(image: nodeimage.NodeImage) -> set[str]:
    done = subprocess.run([str(image.kind), "get", "clusters"], capture_output=True, text=True)
    return set(done.stdout.split()) if done.returncode == 0 else set()


def _running_from(name: str, tag: str) -> bool:
    """The cluster's node runs, from this node image (one made from an older image is made anew)."""
    done = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}} {{.Config.Image}}", f"{name}-control-plane"],
                          capture_output=True, text=True)
    return done.stdout.split() == ["true", tag]


_say = nodeimage.say


def up(names=CLUSTERS, log=None) -> dict[str, float]:
    """Creates the named clusters that do not run yet; returns seconds taken per cluster created."""
    engine.start(log=log)
    image = nodeimage.ensure_image(log=log)
    env = dict(os.environ, PATH=_tool_path(image))
    taken: dict[str, float] = {}
    present = existing(image)
    for name in names:
        if name in present:
            if _running_from(name, image.tag):
                continue
            # A node container that stopped (the engine was restarted) cannot be resumed by kind, and
            # one from an older node image would prove the older image.
            subprocess.run([str(image.kind), "delete", "cluster", "--name", name], env=env, capture_output=True)
        started = time.monotonic()
        _say(log, f"creating kind cluster {name} from {image.tag}")
        if name == HARDENED:
            argv = ["bash", str(CREATE_SCRIPT), "--image", image.tag, "--wait", "120s"]
            done = subprocess.run(argv, env=dict(env, KIND_CLUSTER_NAME=name), capture_output=True, text=True)
        else:
            done = subprocess.run([str(image.kind), "create", "cluster", "--name", name, "--config", str(INSECURE_CONFIG),
                                   "--image", image.tag, "--wait", "120s"], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ClusterError(f"creating {name} failed:\n{(done.stderr or done.stdout)[-4000:]}")
        taken[name] = time.monotonic() - started
        _say(log, f"  {name} ready in {taken[name]:.0f} s (context kind-{name})")
    if INSECURE in names:
        # Applied on every `up`, so a kind-insecure made by an older kubeproof has it too.
        done = subprocess.run(["kubectl", "--context", f"kind-{INSECURE}", "apply", "-f", "-"], input=INSECURE_OBJECTS,
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ClusterError(f"seeding {INSECURE} failed: {done.stderr[-2000:]}")
    return taken


AGENT_IMAGE = "kubeproof.local/node-agent:1"
# Two node agents: one whose image the node holds (it becomes ready on every node) and one whose image
# no node has and none may pull (it never starts). The monitoring test must tell them apart.
AGENTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: kubeproof-lane}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-agent, namespace: kubeproof-lane}
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec:
      automountServiceAccountToken: false
      tolerations: [{operator: Exists}]
      containers:
        - {name: agent, image: %(image)s, imagePullPolicy: Never}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent-without-image, namespace: kubeproof-lane}
spec:
  selector: {matchLabels: {app: agent-without-image}}
  template:
    metadata: {labels: {app: agent-without-image}}
    spec:
      automountServiceAccountToken: false
      tolerations: [{operator: Exists}]
      containers:
        - {name: absent, image: kubeproof.local/not-in-any-node:1, imagePullPolicy: Never}
"""


def load_agent_image(name: str) -> None:
    """A node agent image built here (our static pause as its process), loaded into the cluster's
    nodes with `kind load image-archive`, as a user loads an image built on their machine."""
    image = nodeimage.pinned()
    archive = image.images / "node-agent.tar"
    if not archive.exists():
        nodeimage.binary_image(archive, [AGENT_IMAGE], {"agent": image.bin / "pause"}, ["/agent"])
    done = subprocess.run([str(image.kind), "load", "image-archive", str(archive), "--name", name],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"kind load image-archive into {name} failed: {(done.stderr or done.stdout)[-2000:]}")


def deploy_agents(context: str, timeout: float = 120) -> None:
    """Applies the two agents and waits until the one that can run is ready on every node."""
    env = dict(os.environ, PATH=_tool_path(nodeimage.pinned()))
    done = subprocess.run(["kubectl", "--context", context, "apply", "-f", "-"], input=AGENTS % {"image": AGENT_IMAGE},
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"applying the node agents failed: {done.stderr[-2000:]}")
    done = subprocess.run(["kubectl", "--context", context, "-n", "kubeproof-lane", "rollout", "status",
                           "daemonset/node-agent", f"--timeout={timeout:.0f}s"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"the node agent did not become ready: {(done.stderr or done.stdout)[-2000:]}")


def down(names=CLUSTERS, log=None) -> None:
    if engine.answers() is None:
        return
    image = nodeimage.pinned()
    if not image.kind.exists():
        return
    for name in existing(image) & set(names):
        _say(log, f"deleting kind cluster {name}")
        subprocess.run([str(image.kind), "delete", "cluster", "--name", name], capture_output=True, text=True)


def build_image(log=None) -> None:
    """Builds the node image where missing; an engine started for it is stopped again. A host that
    cannot run an engine at all is told so in one line: the lane is then not verified, not failed."""
    try:
        started = engine.start(log=log)
    except engine.EngineError as error:
        _say(log, f"kind lane not verified: no Docker engine can run here ({error})")
        return
    try:
        print(nodeimage.ensure_image(log=log).tag)
    finally:
        if started.started_here:
            engine.stop(log=log)


def down_and_stop(log=None) -> None:
    down(log=log)
    engine.stop(log=log)


def main(argv: list[str]) -> int:
    commands = {"image": build_image, "up": up, "down": down_and_stop}
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: python -m kubeproof.kind {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    try:
        commands[argv[0]]()
    except (engine.EngineError, nodeimage.ImageError, ClusterError, build.BuildError) as error:
        print(f"kubeproof: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
