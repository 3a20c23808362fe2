"""The kind backend reads the control-plane node's static pod manifests through docker exec. Here the
docker CLI is replaced by a recorded answer, to pin down edge cases; tests_e2e/test_kind_lane.py
meets real kind nodes."""

import subprocess

from kubeproof.backends.kind import KindNode, flags_from_static_pod

STATIC_POD = """
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    command:
    - kube-apiserver
    - --anonymous-auth=false
    - --authorization-mode=Node,RBAC
    - --encryption-provider-config=/etc/kubernetes/enc/enc.yaml
    - --profiling
"""


def fake_docker(files: dict[str, str], running: bool = True):
    calls = []

    def run(argv):
        calls.append(argv)
        if argv[:2] == ["docker", "inspect"]:
            return subprocess.CompletedProcess(argv, 0 if running else 1, "true\n" if running else "", "")
        path = argv[-1]
        if path in files:
            return subprocess.CompletedProcess(argv, 0, files[path], "")
        return subprocess.CompletedProcess(argv, 1, "", "No such file")

    return run, calls


def test_static_pod_flags_are_read_with_and_without_values():
    assert flags_from_static_pod(STATIC_POD) == {
        "anonymous-auth": "false", "authorization-mode": "Node,RBAC",
        "encryption-provider-config": "/etc/kubernetes/enc/enc.yaml", "profiling": "true",
    }


def test_node_reads_files_from_the_control_plane_container():
    run, calls = fake_docker({"/etc/kubernetes/manifests/kube-apiserver.yaml": STATIC_POD})
    node = KindNode("dev", run=run)
    assert node.available()
    assert node.read("/etc/kubernetes/manifests/kube-apiserver.yaml") == STATIC_POD
    assert node.read("/etc/missing") is None
    assert calls[-1] == ["docker", "exec", "dev-control-plane", "cat", "/etc/missing"]


def test_node_without_a_running_container_is_not_available():
    run, _ = fake_docker({}, running=False)
    assert not KindNode("dev", run=run).available()
