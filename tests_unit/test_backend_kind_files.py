"""The kind backend's node files, etcd's CA and the kubelet's command line, read through docker exec.
No Docker engine runs here: a fake docker CLI runs the backend's shell scripts with the real sh, stat
and find against a folder that stands for the container's root, then reports the owners a node would
have (a test need not run as root to show root-owned files). The facts are then judged by
kubeproof.checks.node_files, as the suite does."""

from __future__ import annotations

import datetime
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeproof.backends.kind import KindBackend, KindNode
from kubeproof.checks import kubelet
from kubeproof.checks import node_files as nf
from kubeproof.results import NotVerified

CLUSTER = "dev"
CONTROL_PLANE = f"{CLUSTER}-control-plane"
WORKER = f"{CLUSTER}-worker"
ROOT = (0, 0, "root", "root")
ETCD = (1001, 1001, "etcd", "etcd")


# -- a fake docker CLI -------------------------------------------------------------------------------
class FakeDocker:
    """`docker exec C cat PATH` and `docker exec C sh -c SCRIPT` against one folder per container."""

    def __init__(self, roots: dict[str, Path], owners: dict[str, tuple] | None = None, broken: str | None = None):
        self.roots = roots
        self.owners = owners or {}  # container path -> (uid, gid, user, group); root otherwise
        self.broken = broken  # "missing": no docker CLI; "daemon": the engine does not answer
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        self.calls.append(argv)
        if self.broken == "missing":
            raise FileNotFoundError("docker")
        if self.broken == "daemon":
            return subprocess.CompletedProcess(argv, 1, "", "Cannot connect to the Docker daemon")
        if argv[:2] == ["docker", "inspect"]:
            return subprocess.CompletedProcess(argv, 0, "true\n" if argv[-1] in self.roots else "", "")
        assert argv[:2] == ["docker", "exec"], argv
        container, command = argv[2], argv[3:]
        if container not in self.roots:
            return subprocess.CompletedProcess(argv, 1, "", f"Error: No such container: {container}")
        root = self.roots[container]
        if command[0] == "cat":
            path = root / command[1].lstrip("/")
            if not path.is_file():
                return subprocess.CompletedProcess(argv, 1, "", "No such file or directory")
            return subprocess.CompletedProcess(argv, 0, path.read_text(), "")
        assert command[:2] == ["sh", "-c"], command
        script = re.sub(r"(?<=[\s'\"])/(etc|var|lib)/", lambda m: f"{root}/{m.group(1)}/", command[2])
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=20)
        return subprocess.CompletedProcess(argv, done.returncode, self._as_node(done.stdout, str(root)), done.stderr)

    def _as_node(self, text: str, root: str) -> str:
        lines = []
        for line in text.replace(root, "").split("\n"):
            parts = line.split("|", 6)
            if len(parts) == 7:
                uid, gid, user, group = self.owners.get(parts[6], ROOT)
                parts[1:5] = [str(uid), str(gid), user, group]
                line = "|".join(parts)
            lines.append(line)
        return "\n".join(lines)


def put(root: Path, path: str, mode: int, text: str = "x\n") -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def folder(root: Path, path: str, mode: int) -> None:
    target = root / path.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(mode)


def backend(docker: FakeDocker) -> KindBackend:
    # Only the docker side is under test; the API server's kubeconfig is never read.
    kind = KindBackend.__new__(KindBackend)
    kind.node = KindNode(CLUSTER, run=docker)
    return kind


# -- certificates ------------------------------------------------------------------------------------
def ca_pem(name: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), certificate.fingerprint(hashes.SHA256()).hex()


CLUSTER_CA, CLUSTER_CA_SHA = ca_pem("kubernetes")
ETCD_CA, ETCD_CA_SHA = ca_pem("etcd-ca")


def manifest(component: str, *flags: str) -> str:
    command = "\n".join(f"    - {flag}" for flag in (component, *flags))
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {component}, namespace: kube-system}}\n"
            f"spec:\n  containers:\n  - name: {component}\n    command:\n{command}\n")


# -- a kubeadm control-plane node, as kind makes it -----------------------------------------------
PKI_FILES = {
    "ca.crt": 0o644, "ca.key": 0o600, "apiserver.crt": 0o644, "apiserver.key": 0o600, "sa.pub": 0o644,
    "sa.key": 0o600, "front-proxy-ca.crt": 0o644, "front-proxy-ca.key": 0o600,
    "etcd/ca.crt": 0o644, "etcd/ca.key": 0o600, "etcd/server.crt": 0o644, "etcd/server.key": 0o600,
}


def control_plane(root: Path, *, etcd_trusts=ETCD_CA, super_admin=True, loose=(), drop=()) -> dict:
    """A compliant kubeadm layout; `loose` files get mode 0644, `drop` files are not written."""
    def write(path, mode, text="x\n"):
        if path not in drop:
            put(root, path, 0o644 if path in loose else mode, text)

    write("/etc/kubernetes/manifests/kube-apiserver.yaml", 0o600,
          manifest("kube-apiserver", "--client-ca-file=/etc/kubernetes/pki/ca.crt"))
    write("/etc/kubernetes/manifests/kube-controller-manager.yaml", 0o600, manifest("kube-controller-manager"))
    write("/etc/kubernetes/manifests/kube-scheduler.yaml", 0o600, manifest("kube-scheduler"))
    write("/etc/kubernetes/manifests/etcd.yaml", 0o600, manifest(
        "etcd", "--data-dir=/var/lib/etcd", "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt"))
    write("/etc/cni/net.d/10-kindnet.conflist", 0o600, '{"cniVersion": "0.3.1"}\n')
    folder(root, "/var/lib/etcd/member", 0o700)
    folder(root, "/var/lib/etcd", 0o700)
    names = ["admin.conf", "scheduler.conf", "controller-manager.conf"] + (["super-admin.conf"] if super_admin else [])
    for name in names:
        write(f"/etc/kubernetes/{name}", 0o600)
    folder(root, "/etc/kubernetes/pki/etcd", 0o755)
    for name, mode in PKI_FILES.items():
        write(f"/etc/kubernetes/pki/{name}", mode)
    write("/etc/kubernetes/pki/ca.crt", 0o644, CLUSTER_CA)
    write("/etc/kubernetes/pki/etcd/ca.crt", 0o644, etcd_trusts)
    return {"/var/lib/etcd": ETCD, "/var/lib/etcd/member": ETCD}


CONTROL_PLANE_ROWS = [row for row in nf.ROWS if row.id.startswith("1.1.")]
NODE_ROWS = [row for row in nf.ROWS if row.id.startswith("4.1.")]


def by_role(facts) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for fact in facts:
        grouped.setdefault(fact["role"], []).append(fact)
    return grouped


@pytest.fixture
def roots(tmp_path):
    return {CONTROL_PLANE: tmp_path / "control-plane", WORKER: tmp_path / "worker"}


def test_compliant_control_plane_passes_every_1_1_control(roots):
    owners = control_plane(roots[CONTROL_PLANE])
    docker = FakeDocker(roots, owners)
    facts = backend(docker).control_plane_files()
    for row in CONTROL_PLANE_ROWS:
        assert nf.findings(row, facts, CONTROL_PLANE) == [], row.id
    roles = by_role(facts)
    assert {fact["path"] for fact in roles[nf.ADMIN_KUBECONFIG]} == {
        "/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf"}
    assert [fact["path"] for fact in roles[nf.CNI_CONFIG]] == ["/etc/cni/net.d/10-kindnet.conflist"]
    [data_dir] = roles[nf.ETCD_DATA_DIR]
    assert data_dir == {"role": nf.ETCD_DATA_DIR, "path": "/var/lib/etcd", "exists": True, "mode": 0o700,
                        "uid": 1001, "gid": 1001, "user": "etcd", "group": "etcd", "is_dir": True}
    pki = {fact["path"] for fact in roles[nf.PKI_DIR]}
    assert pki == {"/etc/kubernetes/pki", "/etc/kubernetes/pki/etcd"} | {f"/etc/kubernetes/pki/{n}" for n in PKI_FILES}
    assert {fact["path"] for fact in roles[nf.PKI_KEY]} == {
        f"/etc/kubernetes/pki/{n}" for n in PKI_FILES if n.endswith(".key")}
    assert "/etc/kubernetes/pki/ca.crt" in {fact["path"] for fact in roles[nf.PKI_CERT]}
    # The manifests that name etcd's data folder are read, and the files are stat'ed in one go.
    assert [call[3:5] for call in docker.calls].count(["sh", "-c"]) == 1


def test_loose_admin_kubeconfig_is_a_finding(roots):
    owners = control_plane(roots[CONTROL_PLANE], loose={"/etc/kubernetes/admin.conf"})
    facts = backend(FakeDocker(roots, owners)).control_plane_files()
    [finding] = nf.findings(nf.row("1.1.13"), facts, CONTROL_PLANE)
    assert (finding.path, finding.observed) == ("/etc/kubernetes/admin.conf", "mode 0644")
    assert nf.findings(nf.row("1.1.14"), facts, CONTROL_PLANE) == []


def test_etcd_data_owned_by_root_is_a_finding(roots):
    control_plane(roots[CONTROL_PLANE])
    facts = backend(FakeDocker(roots)).control_plane_files()  # kind's etcd runs as root
    [finding] = nf.findings(nf.row("1.1.12"), facts, CONTROL_PLANE)
    assert finding.path == "/var/lib/etcd" and "root" in finding.observed


def test_missing_file_is_not_verified_never_exempt(roots):
    owners = control_plane(roots[CONTROL_PLANE], drop={"/etc/kubernetes/scheduler.conf"})
    facts = backend(FakeDocker(roots, owners)).control_plane_files()
    [fact] = by_role(facts)[nf.SCHEDULER_KUBECONFIG]
    assert fact == {"role": nf.SCHEDULER_KUBECONFIG, "path": "/etc/kubernetes/scheduler.conf", "exists": False}
    for control in ("1.1.15", "1.1.16"):
        with pytest.raises(NotVerified, match="scheduler.conf does not exist"):
            nf.findings(nf.row(control), facts, CONTROL_PLANE)


def test_super_admin_kubeconfig_is_left_out_where_kubeadm_did_not_write_one(roots):
    owners = control_plane(roots[CONTROL_PLANE], super_admin=False)
    facts = backend(FakeDocker(roots, owners)).control_plane_files()
    assert [fact["path"] for fact in by_role(facts)[nf.ADMIN_KUBECONFIG]] == ["/etc/kubernetes/admin.conf"]
    assert nf.findings(nf.row("1.1.13"), facts, CONTROL_PLANE) == []


def test_no_cni_configuration_or_pki_is_not_verified(roots):
    root = roots[CONTROL_PLANE]
    owners = control_plane(root, drop={"/etc/cni/net.d/10-kindnet.conflist"} | {
        f"/etc/kubernetes/pki/{name}" for name in PKI_FILES})
    for leftover in ("/etc/kubernetes/pki/etcd", "/etc/kubernetes/pki"):
        (root / leftover.lstrip("/")).rmdir()
    facts = backend(FakeDocker(roots, owners)).control_plane_files()
    roles = by_role(facts)
    assert roles[nf.CNI_CONFIG] == [{"role": nf.CNI_CONFIG, "path": "/etc/cni/net.d", "exists": False}]
    assert roles[nf.PKI_DIR] == [{"role": nf.PKI_DIR, "path": "/etc/kubernetes/pki", "exists": False}]
    for control in ("1.1.9", "1.1.19", "1.1.20", "1.1.21"):
        with pytest.raises(NotVerified):
            nf.findings(nf.row(control), facts, CONTROL_PLANE)


def test_etcd_data_folder_is_the_one_its_manifest_names(roots):
    root = roots[CONTROL_PLANE]
    owners = control_plane(root)
    put(root, "/etc/kubernetes/manifests/etcd.yaml", 0o600, manifest("etcd", "--data-dir=/var/lib/etcd-data/"))
    folder(root, "/var/lib/etcd-data", 0o750)
    facts = backend(FakeDocker(roots, owners)).control_plane_files()
    [fact] = by_role(facts)[nf.ETCD_DATA_DIR]
    assert (fact["path"], fact["mode"]) == ("/var/lib/etcd-data", 0o750)
    [finding] = nf.findings(nf.row("1.1.11"), facts, CONTROL_PLANE)
    assert finding.observed == "mode 0750"


@pytest.mark.parametrize("broken", ["missing", "daemon"])
def test_docker_failing_is_not_visible(roots, broken):
    control_plane(roots[CONTROL_PLANE])
    kind = backend(FakeDocker(roots, broken=broken))
    assert kind.control_plane_files() is None
    assert kind.node_files(WORKER) is None
    assert kind.etcd_ca_fingerprints() is None
    assert kind.kubelet_flags(WORKER) is None


def test_container_that_is_not_there_is_not_visible(roots):
    del roots[CONTROL_PLANE]
    kind = backend(FakeDocker(roots))
    assert kind.control_plane_files() is None
    assert kind.node_files("dev-worker2") is None


def test_shell_answer_cut_short_is_not_visible():
    def run(argv):
        return subprocess.CompletedProcess(argv, 137, "644|0|0|root|root|regular file|/etc/kubernetes/admin.conf\n", "")

    assert KindNode(CLUSTER, run=run).shell("stat ...") is None


def test_shell_answer_is_kept_when_commands_in_it_fail():
    def run(argv):
        assert argv[:5] == ["docker", "exec", "dev-worker", "sh", "-c"]
        return subprocess.CompletedProcess(argv, 0, "partial\n\nkubeproof-end-of-answer\n", "")

    assert KindNode(CLUSTER, run=run).shell("stat /nowhere", container="dev-worker") == "partial\n"


# -- a worker node --------------------------------------------------------------------------------------
UNIT = textwrap.dedent("""\
    [Unit]
    Description=kubelet: The Kubernetes Node Agent
    ConditionPathExists=/var/lib/kubelet/config.yaml

    [Service]
    ExecStart=/usr/bin/kubelet
    Restart=always
    """)
KUBEADM_DROPIN = textwrap.dedent("""\
    # the kubeadm drop-in
    [Service]
    Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
    Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
    EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
    EnvironmentFile=-/etc/default/kubelet
    ExecStart=
    ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_EXTRA_ARGS $KUBELET_KUBEADM_ARGS
    """)
KIND_DROPIN = textwrap.dedent("""\
    [Service]
    ExecStartPre=/bin/sh -euc "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then /kind/bin/create-kubelet-cgroup-v2.sh; fi"
    """)
KUBEADM_FLAGS = ('KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock '
                 '--node-ip=172.18.0.3 --node-labels= --pod-infra-container-image=registry.k8s.io/pause:3.10 '
                 '--provider-id=kind://docker/dev/dev-worker"\n')
KUBELET_CONFIG = textwrap.dedent("""\
    apiVersion: kubelet.config.k8s.io/v1beta1
    kind: KubeletConfiguration
    authentication:
      x509:
        clientCAFile: /etc/kubernetes/pki/ca.crt
    """)


def worker(root: Path, *, unit_mode=0o600, config=KUBELET_CONFIG, drop=()) -> None:
    def write(path, mode, text="x\n"):
        if path not in drop:
            put(root, path, mode, text)

    write("/etc/systemd/system/kubelet.service", unit_mode, UNIT)
    write("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", unit_mode, KUBEADM_DROPIN)
    write("/etc/systemd/system/kubelet.service.d/11-kind.conf", unit_mode, KIND_DROPIN)
    write("/var/lib/kubelet/kubeadm-flags.env", 0o644, KUBEADM_FLAGS)
    write("/etc/kubernetes/kubelet.conf", 0o600)
    if config is not None:
        write("/var/lib/kubelet/config.yaml", 0o600, config)
    write("/etc/kubernetes/pki/ca.crt", 0o644, CLUSTER_CA)


def test_compliant_worker_passes_every_4_1_control(roots):
    worker(roots[WORKER])
    docker = FakeDocker(roots)
    facts = backend(docker).node_files(WORKER)
    for row in NODE_ROWS:
        assert nf.findings(row, facts, WORKER) == [], row.id
    roles = by_role(facts)
    assert {fact["path"] for fact in roles[nf.KUBELET_SERVICE]} == {
        "/etc/systemd/system/kubelet.service", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "/etc/systemd/system/kubelet.service.d/11-kind.conf"}
    assert roles[nf.PROXY_KUBECONFIG] == [
        {"role": nf.PROXY_KUBECONFIG, "path": "/var/lib/kube-proxy/kubeconfig.conf", "exists": False}]
    assert [fact["path"] for fact in roles[nf.KUBELET_CLIENT_CA]] == ["/etc/kubernetes/pki/ca.crt"]
    assert [fact["path"] for fact in roles[nf.KUBELET_CONFIG]] == ["/var/lib/kubelet/config.yaml"]
    assert {call[2] for call in docker.calls} == {WORKER}  # the node's own container, no other


def test_kind_unit_files_as_shipped_are_findings(roots):
    worker(roots[WORKER], unit_mode=0o644)
    facts = backend(FakeDocker(roots)).node_files(WORKER)
    found = nf.findings(nf.row("4.1.1"), facts, WORKER)
    assert sorted(finding.path for finding in found) == [
        "/etc/systemd/system/kubelet.service", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "/etc/systemd/system/kubelet.service.d/11-kind.conf"]
    assert {finding.observed for finding in found} == {"mode 0644"}


def test_worker_files_owned_by_another_account_are_findings(roots):
    worker(roots[WORKER])
    owners = {"/etc/kubernetes/kubelet.conf": (1000, 1000, "kind", "kind")}
    facts = backend(FakeDocker(roots, owners)).node_files(WORKER)
    [finding] = nf.findings(nf.row("4.1.6"), facts, WORKER)
    assert finding.path == "/etc/kubernetes/kubelet.conf" and "kind:kind" in finding.observed


def test_client_ca_is_the_one_the_kubelet_config_names(roots):
    root = roots[WORKER]
    worker(root, config=KUBELET_CONFIG.replace("/etc/kubernetes/pki/ca.crt", "pki/clients.crt"))
    put(root, "/var/lib/kubelet/pki/clients.crt", 0o666, CLUSTER_CA)
    facts = backend(FakeDocker(roots)).node_files(WORKER)
    [finding] = nf.findings(nf.row("4.1.7"), facts, WORKER)
    assert (finding.path, finding.observed) == ("/var/lib/kubelet/pki/clients.crt", "mode 0666")


def test_kubelet_config_naming_no_client_ca_is_exempt_with_its_reason(roots):
    worker(roots[WORKER], config="apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
    facts = backend(FakeDocker(roots)).node_files(WORKER)
    with pytest.raises(nf.NotApplicable, match="names no client CA"):
        nf.findings(nf.row("4.1.7"), facts, WORKER)


def test_missing_worker_files(roots):
    worker(roots[WORKER], config=None, drop={"/etc/kubernetes/kubelet.conf"})
    facts = backend(FakeDocker(roots)).node_files(WORKER)
    # "If it exists" controls: a kubelet without a config file passes them.
    assert nf.findings(nf.row("4.1.9"), facts, WORKER) == []
    with pytest.raises(NotVerified, match="kubelet.conf does not exist"):
        nf.findings(nf.row("4.1.5"), facts, WORKER)
    # The config file was not there to name the client CA, so kubeadm's path is judged.
    assert nf.findings(nf.row("4.1.7"), facts, WORKER) == []


def test_unit_only_in_the_packaged_folder_is_enough(roots):
    root = roots[WORKER]
    worker(root, drop={"/etc/systemd/system/kubelet.service"})
    put(root, "/lib/systemd/system/kubelet.service", 0o600, UNIT)
    facts = backend(FakeDocker(roots)).node_files(WORKER)
    paths = {fact["path"]: fact["exists"] for fact in by_role(facts)[nf.KUBELET_SERVICE]}
    assert paths["/lib/systemd/system/kubelet.service"] is True
    assert "/etc/systemd/system/kubelet.service" not in paths
    assert nf.findings(nf.row("4.1.1"), facts, WORKER) == []


def test_no_kubelet_unit_at_all_is_not_verified(roots):
    worker(roots[WORKER], drop={"/etc/systemd/system/kubelet.service",
                                "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
                                "/etc/systemd/system/kubelet.service.d/11-kind.conf"})
    facts = backend(FakeDocker(roots)).node_files(WORKER)
    with pytest.raises(NotVerified):
        nf.findings(nf.row("4.1.1"), facts, WORKER)


@pytest.mark.parametrize("name", ["--privileged", "-it", "a b", "dev-worker;id", "", None, "UPPER"])
def test_node_name_that_cannot_be_a_container_is_never_passed_to_docker(roots, name):
    docker = FakeDocker(roots)
    kind = backend(docker)
    assert kind.node_files(name) is None
    assert kind.kubelet_flags(name) is None
    assert docker.calls == []


# -- etcd's CA (2.7) ---------------------------------------------------------------------------------
def test_etcd_with_its_own_ca(roots):
    control_plane(roots[CONTROL_PLANE])
    fingerprints = backend(FakeDocker(roots)).etcd_ca_fingerprints()
    assert fingerprints == (ETCD_CA_SHA, CLUSTER_CA_SHA)
    assert nf.etcd_ca_findings(*fingerprints, CONTROL_PLANE) == []


def test_etcd_trusting_the_cluster_ca_is_a_finding(roots):
    control_plane(roots[CONTROL_PLANE], etcd_trusts=CLUSTER_CA)
    fingerprints = backend(FakeDocker(roots)).etcd_ca_fingerprints()
    assert fingerprints == (CLUSTER_CA_SHA, CLUSTER_CA_SHA)
    [finding] = nf.etcd_ca_findings(*fingerprints, CONTROL_PLANE)
    assert finding.controls == ("2.7",)


def test_ca_bundle_is_judged_by_its_first_certificate(roots):
    control_plane(roots[CONTROL_PLANE], etcd_trusts=ETCD_CA + CLUSTER_CA)
    assert backend(FakeDocker(roots)).etcd_ca_fingerprints() == (ETCD_CA_SHA, CLUSTER_CA_SHA)


@pytest.mark.parametrize("damage", [
    lambda root: (root / "etc/kubernetes/manifests/etcd.yaml").unlink(),
    lambda root: (root / "etc/kubernetes/manifests/kube-apiserver.yaml").write_text(manifest("kube-apiserver")),
    lambda root: (root / "etc/kubernetes/pki/etcd/ca.crt").unlink(),
    lambda root: (root / "etc/kubernetes/pki/ca.crt").write_text("not a certificate\n"),
    lambda root: (root / "etc/kubernetes/pki/ca.crt").write_text(
        "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n"),
    lambda root: (root / "etc/kubernetes/manifests/etcd.yaml").write_text("spec: [unclosed\n"),
    lambda root: (root / "etc/kubernetes/manifests/etcd.yaml").write_text("- just\n- a list\n"),
], ids=["no-etcd-manifest", "no-client-ca-flag", "no-etcd-ca", "not-pem", "bad-base64", "bad-yaml", "not-a-pod"])
def test_fingerprints_that_cannot_be_read_are_none(roots, damage):
    control_plane(roots[CONTROL_PLANE])
    damage(roots[CONTROL_PLANE])
    assert backend(FakeDocker(roots)).etcd_ca_fingerprints() is None


# -- the kubelet's command line ------------------------------------------------------------------------
def test_kubelet_flags_on_a_kind_node(roots):
    worker(roots[WORKER])
    flags = backend(FakeDocker(roots)).kubelet_flags(WORKER)
    assert flags == {
        "bootstrap-kubeconfig": "/etc/kubernetes/bootstrap-kubelet.conf", "kubeconfig": "/etc/kubernetes/kubelet.conf",
        "config": "/var/lib/kubelet/config.yaml",
        "container-runtime-endpoint": "unix:///run/containerd/containerd.sock",
        "node-ip": "172.18.0.3", "node-labels": "", "pod-infra-container-image": "registry.k8s.io/pause:3.10",
        "provider-id": "kind://docker/dev/dev-worker"}
    assert kubelet.findings(kubelet.row("4.2.7"), None, flags, WORKER) == []


def test_hostname_override_from_the_extra_arguments_is_found(roots):
    root = roots[WORKER]
    worker(root)
    put(root, "/etc/default/kubelet", 0o644, "# extra\nKUBELET_EXTRA_ARGS='--hostname-override=node-a --v 4'\n")
    flags = backend(FakeDocker(roots)).kubelet_flags(WORKER)
    assert flags["hostname-override"] == "node-a" and flags["v"] == "4"
    [finding] = kubelet.findings(kubelet.row("4.2.7"), None, flags, WORKER)
    assert finding.observed == "node-a"


def test_environment_files_win_over_environment_lines_and_later_drop_ins_win(roots):
    root = roots[WORKER]
    worker(root)
    put(root, "/etc/systemd/system/kubelet.service.d/20-mine.conf", 0o600, textwrap.dedent("""\
        [Service]
        Environment="KUBELET_KUBEADM_ARGS=--node-ip=10.9.9.9"
        Environment="KUBELET_EXTRA_ARGS=--rotate-certificates"
        EnvironmentFile=/etc/kubelet-extra.env
        ExecStart=
        ExecStart=-/usr/local/bin/kubelet ${KUBELET_CONFIG_ARGS} \\
            $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS --read-only-port 0
        """))
    put(root, "/etc/kubelet-extra.env", 0o600, "KUBELET_EXTRA_ARGS=--seccomp-default\n")
    flags = backend(FakeDocker(roots)).kubelet_flags(WORKER)
    # kubeadm-flags.env overrides the Environment= line; the unit's own file replaces the extra args.
    assert flags["node-ip"] == "172.18.0.3"
    assert flags["seccomp-default"] == "true" and "rotate-certificates" not in flags
    assert flags["read-only-port"] == "0" and flags["config"] == "/var/lib/kubelet/config.yaml"
    assert "bootstrap-kubeconfig" not in flags  # the last ExecStart does not use it


def test_packaged_drop_in_is_hidden_by_one_of_the_same_name_in_etc(roots):
    root = roots[WORKER]
    worker(root)
    put(root, "/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", 0o644,
        "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --hostname-override=packaged\n")
    flags = backend(FakeDocker(roots)).kubelet_flags(WORKER)
    assert "hostname-override" not in flags and flags["node-ip"] == "172.18.0.3"


def test_kubelet_flags_without_a_unit_are_none(roots):
    worker(roots[WORKER], drop={"/etc/systemd/system/kubelet.service",
                                "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
                                "/etc/systemd/system/kubelet.service.d/11-kind.conf"})
    assert backend(FakeDocker(roots)).kubelet_flags(WORKER) is None


def test_unit_without_exec_start_gives_no_flags(roots):
    root = roots[WORKER]
    worker(root)
    put(root, "/etc/systemd/system/kubelet.service", 0o600, "[Service]\nRestart=always\n")
    put(root, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", 0o600, "[Service]\nExecStart=\n")
    assert backend(FakeDocker(roots)).kubelet_flags(WORKER) is None


def test_kubelet_flags_are_read_in_one_docker_exec(roots):
    worker(roots[WORKER])
    docker = FakeDocker(roots)
    backend(docker).kubelet_flags(WORKER)
    assert len(docker.calls) == 1
