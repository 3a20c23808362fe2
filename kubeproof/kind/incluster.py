"""The in-cluster mode for real: deploy/Containerfile built on this machine, loaded into kind-hardened,
and deploy/cronjob.yaml run once as a Job under the read-only identity of deploy/rbac.yaml.

No registry is reachable, so the image's base is made here: Debian's root file system from the node
image's cache, imported into Docker, with Python from Debian's packages in a venv on PATH (what the
Containerfile's default base, python:3.11-slim, provides). The Python packages come from PyPI in the
build, as they would anywhere. The run folder is kept on a PersistentVolume on the node (the route
deploy/cronjob.yaml's comment gives for keeping evidence) and copied out with `docker cp`."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from kubeproof.controlplane import build
from kubeproof.kind import clusters, nodeimage

DEBIAN_BASE = "kubeproof.local/debian:bookworm"
PYTHON_BASE = "kubeproof.local/python:3.11-bookworm"
# The host's own added certificate authorities go in too (a TLS-inspecting proxy's, say): the build
# fetches from PyPI through whatever the host's trust store says is the way out.
HOST_CAS = Path("/usr/local/share/ca-certificates")
PYTHON_DOCKERFILE = f"""FROM {DEBIAN_BASE}
COPY cas/ /usr/local/share/ca-certificates/
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv passwd \\
 && rm -rf /var/lib/apt/lists/* \\
 && update-ca-certificates \\
 && python3 -m venv /opt/python
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
"""
CONTAINERFILE = build.REPO_ROOT / "deploy" / "Containerfile"
# What the Containerfile copies (and .dockerignore lets through): the image is rebuilt when it changes.
CONTEXT = ("pyproject.toml", "README.md", "kubeproof", "tests_cluster", "baselines")
NAMESPACE = "kubeproof"
EVIDENCE_ON_NODE = "/var/lib/kubeproof-evidence"
AUDITOR_UID = 10001
# A volume for the run folder that outlives the pod: a PersistentVolume on the node's disk, claimed in
# the auditor's namespace (a claim, unlike a hostPath volume, is allowed under `restricted`).
EVIDENCE_VOLUME = f"""\
apiVersion: v1
kind: PersistentVolume
metadata: {{name: kubeproof-evidence}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: kubeproof-evidence
  hostPath: {{path: {EVIDENCE_ON_NODE}, type: Directory}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: kubeproof-evidence, namespace: {NAMESPACE}}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: kubeproof-evidence
  volumeName: kubeproof-evidence
  resources: {{requests: {{storage: 1Gi}}}}
"""


class InClusterError(RuntimeError):
    pass


def _say(log, message: str) -> None:
    nodeimage.say(log, message)


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    return nodeimage.run_checked(argv, InClusterError, **kwargs)


def _context_digest() -> str:
    digest = hashlib.sha256(CONTAINERFILE.read_bytes())
    digest.update(PYTHON_DOCKERFILE.encode())
    for name in CONTEXT:
        path = build.REPO_ROOT / name
        for file in sorted(path.rglob("*") if path.is_dir() else [path]):
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(build.REPO_ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def auditor_image(log=None) -> str:
    """The CronJob's image, built from deploy/Containerfile on a Debian base made here."""
    tag = f"kubeproof.local/kubeproof:{_context_digest()}"
    if nodeimage.docker_has(tag):
        return tag
    image = nodeimage.ensure_image(log=log)
    if not nodeimage.docker_has(DEBIAN_BASE):
        _say(log, f"docker import {DEBIAN_BASE} from {image.debian}")
        nodeimage.docker_import(image.debian, DEBIAN_BASE, InClusterError)
    if not nodeimage.docker_has(PYTHON_BASE):
        _say(log, f"building {PYTHON_BASE} (Python from Debian's packages)")
        with tempfile.TemporaryDirectory() as context:
            (Path(context) / "cas").mkdir()
            for ca in sorted(HOST_CAS.glob("*.crt")) if HOST_CAS.is_dir() else ():
                shutil.copyfile(ca, Path(context) / "cas" / ca.name)
            (Path(context) / "Dockerfile").write_text(PYTHON_DOCKERFILE)
            _run(["docker", "build", "-q", "-t", PYTHON_BASE, context])
    _say(log, f"building {tag} from deploy/Containerfile (packages from PyPI)")
    started = time.monotonic()
    _run(["docker", "build", "-q", "-f", str(CONTAINERFILE), "--build-arg", f"BASE={PYTHON_BASE}", "-t", tag,
          str(build.REPO_ROOT)])
    nodeimage.prune_older(tag.rsplit(":", 1)[0], keep=tag)
    _say(log, f"  {tag} built in {time.monotonic() - started:.0f} s")
    return tag


def _cronjob_for_the_lane(tag: str, extra_args: list[str]) -> str:
    """deploy/cronjob.yaml as shipped, but for an image loaded into the node (no pull) and with the
    run folder on the evidence volume."""
    documents = list(yaml.safe_load_all((build.REPO_ROOT / "deploy" / "cronjob.yaml").read_text()))
    for document in documents:
        if (document or {}).get("kind") != "CronJob":
            continue
        pod = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        container["image"] = tag
        container["imagePullPolicy"] = "Never"
        container["args"] = list(container.get("args") or []) + extra_args
        for volume in pod["volumes"]:
            if volume["name"] == "reports":
                volume.clear()
                volume.update({"name": "reports", "persistentVolumeClaim": {"claimName": "kubeproof-evidence"}})
    return yaml.safe_dump_all(documents, sort_keys=False)


def run_cronjob_once(destination: Path, cluster: str = clusters.HARDENED, extra_args=(), timeout: float = 600,
                     log=None) -> dict:
    """Deploys deploy/ into the cluster, runs the CronJob once as a Job, waits for it, and copies the
    evidence it wrote to `destination`. Returns the Job's final status."""
    tag = auditor_image(log=log)
    image = nodeimage.pinned()
    env = dict(os.environ, PATH=clusters._tool_path(image))
    context = f"kind-{cluster}"
    node = f"{cluster}-control-plane"
    _say(log, f"kind load {tag} into {cluster}")
    _run([str(image.kind), "load", "docker-image", tag, "--name", cluster], env=env)
    _run(["docker", "exec", node, "sh", "-c",
          f"rm -rf {EVIDENCE_ON_NODE} && mkdir -p {EVIDENCE_ON_NODE} && chown {AUDITOR_UID} {EVIDENCE_ON_NODE}"])
    kubectl = ["kubectl", "--context", context]
    # Server-side: the namespace and its default ServiceAccount (made by a controller the moment the
    # namespace exists) arrive in one apply, which a client-side create-then-patch can lose a race on.
    _run(kubectl + ["apply", "--server-side", "-f", str(build.REPO_ROOT / "deploy" / "rbac.yaml")], env=env)
    _run(kubectl + ["apply", "-f", "-"], input=EVIDENCE_VOLUME, env=env)
    _run(kubectl + ["apply", "--server-side", "-f", "-"], input=_cronjob_for_the_lane(tag, list(extra_args)), env=env)
    job = f"kubeproof-lane-{int(time.time())}"
    _run(kubectl + ["-n", NAMESPACE, "create", "job", job, "--from=cronjob/kubeproof"], env=env)
    _say(log, f"job {NAMESPACE}/{job} created from cronjob/kubeproof; waiting for it to finish")
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        done = _run(kubectl + ["-n", NAMESPACE, "get", "job", job, "-o", "yaml"], env=env)
        status = (yaml.safe_load(done.stdout) or {}).get("status") or {}
        finished = [c["type"] for c in status.get("conditions") or []
                    if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"]
        if finished:
            break
        time.sleep(2)
    else:
        raise InClusterError(f"job {job} did not finish within {timeout:.0f} s: {status}")
    destination.mkdir(parents=True, exist_ok=True)
    _run(["docker", "cp", f"{node}:{EVIDENCE_ON_NODE}/.", str(destination)])
    logs = subprocess.run(kubectl + ["-n", NAMESPACE, "logs", f"job/{job}", "--tail=40"], env=env,
                          capture_output=True, text=True)
    return {"job": job, "status": status, "log_tail": logs.stdout[-4000:]}
