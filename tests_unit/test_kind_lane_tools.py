"""The kind lane's own tools, without a Docker engine: the capability detection and runc wrapper the
engine uses where the host withholds CAP_SYS_RESOURCE, the image archives the node image carries, the
CronJob as the lane runs it, etcd read inside a node, and the one line a host without an engine gets."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile

import pytest
import yaml

from kubeproof.backends.http import Unreachable
from kubeproof.backends.kind import KindNode, NodeEtcdReader
from kubeproof.kind import clusters, engine, incluster, nodeimage

STATUS = "Name:\tpython3\nCapInh:\t0000000000000000\nCapBnd:\t{}\nCapAmb:\t0000000000000000\n"


def test_the_bounding_set_tells_whether_containers_can_have_cap_sys_resource():
    assert engine.host_withholds_sys_resource(STATUS.format("000001fffeffffff")) is True
    assert engine.host_withholds_sys_resource(STATUS.format("000001ffffffffff")) is False
    with pytest.raises(engine.EngineError):
        engine.host_withholds_sys_resource("Name:\tpython3\n")


@pytest.fixture
def wrapper(tmp_path):
    """The wrapper in front of a stand-in runc that records its arguments."""
    recorded = tmp_path / "recorded.json"
    runc = tmp_path / "runc"
    runc.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(recorded)!r}, 'w'))\n")
    runc.chmod(0o755)
    return engine.write_runc_wrapper(tmp_path / "wrapper", str(runc), python=sys.executable), recorded


CAPS = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]


def spec_with(caps):
    return {"ociVersion": "1.0.2", "process": {"args": ["/sbin/init"], "capabilities": {
        kind: list(caps) for kind in ("bounding", "effective", "permitted", "inheritable")}}}


def test_the_wrapper_takes_cap_sys_resource_out_of_a_container_spec_and_runs_runc(wrapper, tmp_path):
    script, recorded = wrapper
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(spec_with(CAPS)))
    argv = ["--root", "/run/runc", "create", "--bundle", str(bundle), "--pid-file", "p", "node"]
    subprocess.run([str(script), *argv], check=True)
    caps = json.loads((bundle / "config.json").read_text())["process"]["capabilities"]
    assert all(caps[kind] == ["CAP_CHOWN", "CAP_NET_ADMIN"] for kind in caps)
    assert json.loads(recorded.read_text()) == argv


def test_the_wrapper_edits_an_exec_process_and_leaves_other_specs_alone(wrapper, tmp_path):
    script, _ = wrapper
    process = tmp_path / "process.json"
    process.write_text(json.dumps(spec_with(CAPS)["process"]))
    subprocess.run([str(script), "exec", "--process", str(process), "node"], check=True)
    assert "CAP_SYS_RESOURCE" not in json.dumps(json.loads(process.read_text()))
    untouched = tmp_path / "bundle2"
    untouched.mkdir()
    text = json.dumps(spec_with(["CAP_CHOWN"]), indent=3)
    (untouched / "config.json").write_text(text)
    subprocess.run([str(script), "run", "-b", str(untouched), "other"], check=True)
    assert (untouched / "config.json").read_text() == text


def test_an_image_archive_is_what_docker_save_writes(tmp_path):
    binary = tmp_path / "agent"
    binary.write_bytes(b"\x7fELF not really")
    archive = tmp_path / "agent.tar"
    nodeimage.binary_image(archive, ["example.local/agent:1", "example.local/agent:latest"], {"agent": binary}, ["/agent"])
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        config = json.load(outer.extractfile(manifest[0]["Config"]))
        layer_bytes = outer.extractfile(manifest[0]["Layers"][0]).read()
    assert manifest[0]["RepoTags"] == ["example.local/agent:1", "example.local/agent:latest"]
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    assert config["rootfs"]["diff_ids"] == [diff_id] and manifest[0]["Layers"][0].startswith(diff_id[7:])
    assert config["config"]["Entrypoint"] == ["/agent"]
    layer = tarfile.open(fileobj=io.BytesIO(layer_bytes))
    assert layer.getmember("agent").mode == 0o755 and layer.extractfile("agent").read() == binary.read_bytes()
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.layer"))


def test_the_lane_runs_the_shipped_cronjob_with_only_image_volume_and_arguments_changed():
    documents = list(yaml.safe_load_all(incluster._cronjob_for_the_lane("kubeproof.local/kubeproof:abc", ["--baseline=b.yaml"])))
    shipped = list(yaml.safe_load_all((incluster.CONTAINERFILE.parent / "cronjob.yaml").read_text()))
    assert [d["kind"] for d in documents] == [d["kind"] for d in shipped]
    pod = documents[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    original = shipped[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "kubeproof.local/kubeproof:abc"
    assert pod["containers"][0]["imagePullPolicy"] == "Never"
    assert pod["containers"][0]["args"] == original["containers"][0]["args"] + ["--baseline=b.yaml"]
    assert {"name": "reports", "persistentVolumeClaim": {"claimName": "kubeproof-evidence"}} in pod["volumes"]
    assert pod["securityContext"] == original["securityContext"] and documents[1:] == shipped[1:]


class _Backend:
    def __init__(self, etcd, apiserver):
        self.flags = {"etcd": etcd, "kube-apiserver": apiserver}

    def _manifest_flags(self, component):
        return self.flags[component]


ETCD_FLAGS = {"listen-client-urls": "https://172.18.0.2:2379,https://127.0.0.1:2379",
              "trusted-ca-file": "/etc/kubernetes/pki/etcd/ca.crt"}
APISERVER_FLAGS = {"etcd-certfile": "/etc/kubernetes/pki/apiserver-etcd-client.crt",
                   "etcd-keyfile": "/etc/kubernetes/pki/apiserver-etcd-client.key"}


def test_etcd_is_asked_on_the_nodes_loopback_with_certificates_named_by_path():
    calls = []

    def run(argv, input=None):
        calls.append((argv, input))
        return subprocess.CompletedProcess(argv, 0, '{"kvs": [], "more": false}\nkubeproof-http-status:200', "")

    reader = NodeEtcdReader(KindNode("lab", run=run), _Backend(ETCD_FLAGS, APISERVER_FLAGS))
    assert reader.value_prefixes("/registry/secrets/") == []
    argv, body = calls[0]
    assert argv[:4] == ["docker", "exec", "-i", "lab-control-plane"] and argv[-1] == "https://127.0.0.1:2379/v3/kv/range"
    assert "/etc/kubernetes/pki/apiserver-etcd-client.key" in argv and "BEGIN" not in " ".join(argv)
    assert json.loads(body)["limit"] > 0


@pytest.mark.parametrize("etcd, apiserver, answer", [
    ({}, APISERVER_FLAGS, "ok\nkubeproof-http-status:200"),            # no client URL in the manifest
    (ETCD_FLAGS, APISERVER_FLAGS, ""),                                   # curl never answered
])
def test_etcd_that_cannot_be_asked_is_unreachable_never_empty(etcd, apiserver, answer):
    def run(argv, input=None):
        return subprocess.CompletedProcess(argv, 0 if answer else 7, answer, "curl: (7) Failed to connect")

    reader = NodeEtcdReader(KindNode("lab", run=run), _Backend(etcd, apiserver))
    with pytest.raises(Unreachable):
        reader.value_prefixes("/registry/secrets/")


def test_a_host_without_an_engine_says_the_lane_is_not_verified(monkeypatch, capsys):
    def no_engine(log=None):
        raise engine.EngineError("no Docker engine answers and dockerd is not installed")

    monkeypatch.setattr(engine, "start", no_engine)
    monkeypatch.setattr(nodeimage, "ensure_image", lambda log=None: pytest.fail("must not build without an engine"))
    assert clusters.main(["image"]) == 0
    assert capsys.readouterr().err.strip() == (
        "kubeproof: kind lane not verified: no Docker engine can run here "
        "(no Docker engine answers and dockerd is not installed)")
