"""Unit tests for kubeproof.backends.files: stat facts of local paths, facts of files a cluster does
not have on purpose, the PKI folder's roles, and facts read from `stat -c STAT_FORMAT` output as a
node prints it."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess

import pytest

from kubeproof.backends import files
from kubeproof.checks import node_files as nf

ROLES = (nf.PKI_DIR, nf.PKI_CERT, nf.PKI_KEY)


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return None


def test_stat_fact_of_a_file(tmp_path):
    path = tmp_path / "admin.conf"
    path.write_text("x")
    path.chmod(0o640)
    fact = files.stat_fact(nf.ADMIN_KUBECONFIG, path)
    assert fact == {"role": nf.ADMIN_KUBECONFIG, "path": str(path), "exists": True, "mode": 0o640,
                    "uid": os.getuid(), "gid": os.getgid(), "user": _name(pwd.getpwuid, os.getuid()),
                    "group": _name(grp.getgrgid, os.getgid()), "is_dir": False}
    assert nf.read_fact(fact, "fact").describe().startswith("file, mode 0640")


def test_stat_fact_keeps_special_bits(tmp_path):
    path = tmp_path / "odd"
    path.write_text("x")
    path.chmod(0o4711)
    assert files.stat_fact(nf.KUBELET_CONFIG, str(path))["mode"] == 0o4711


def test_stat_fact_of_a_directory(tmp_path):
    folder = tmp_path / "etcd"
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)
    fact = files.stat_fact(nf.ETCD_DATA_DIR, folder)
    assert fact["is_dir"] is True and fact["mode"] == 0o700 and fact["path"] == str(folder)


def test_stat_fact_of_a_path_that_is_not_there_gives_no_reason(tmp_path):
    fact = files.stat_fact(nf.SCHEDULER_KUBECONFIG, tmp_path / "scheduler.conf")
    assert fact == {"role": nf.SCHEDULER_KUBECONFIG, "path": str(tmp_path / "scheduler.conf"), "exists": False}
    # Without a reason, the file controls do not take its absence as a pass.
    with pytest.raises(nf.NotVerified):
        nf.findings(nf.row("1.1.15"), [fact], "n")


def test_absent_gives_the_reason():
    fact = files.absent(nf.PROXY_KUBECONFIG, "/etc/kubernetes/proxy.conf", "no kube-proxy")
    assert fact == {"role": nf.PROXY_KUBECONFIG, "path": "/etc/kubernetes/proxy.conf", "exists": False,
                    "absent_reason": "no kube-proxy"}
    manifest = files.absent(nf.APISERVER_MANIFEST, "/etc/kubernetes/manifests/kube-apiserver.yaml", "a process")
    with pytest.raises(nf.NotApplicable, match="a process"):
        nf.findings(nf.row("1.1.1"), [manifest], "n")


# -- the PKI folder --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, roles", [
    ("ca.crt", [nf.PKI_DIR, nf.PKI_CERT]), ("ca.key", [nf.PKI_DIR, nf.PKI_KEY]),
    ("sa.pub", [nf.PKI_DIR, nf.PKI_CERT]), ("sa.key", [nf.PKI_DIR, nf.PKI_KEY]),
    ("etcd/server.pem", [nf.PKI_DIR, nf.PKI_CERT]), ("etcd/server-key.pem", [nf.PKI_DIR, nf.PKI_KEY]),
    ("etcd", [nf.PKI_DIR]), ("README", [nf.PKI_DIR]), ("serial.txt", [nf.PKI_DIR]),
])
def test_pki_roles_by_name(name, roles):
    assert files.pki_roles(f"/etc/kubernetes/pki/{name}", *ROLES) == roles


def test_pki_facts(tmp_path):
    pki = tmp_path / "pki"
    (pki / "etcd").mkdir(parents=True)
    for name, mode in {"ca.crt": 0o644, "ca.key": 0o600, "etcd/ca.crt": 0o644, "etcd/peer-key.pem": 0o600,
                       "serial": 0o644}.items():
        (pki / name).write_text("x")
        (pki / name).chmod(mode)
    facts = files.pki_facts(pki, *ROLES)
    by_role = {role: sorted(f["path"].removeprefix(str(pki)) for f in facts if f["role"] == role) for role in ROLES}
    assert by_role == {
        nf.PKI_DIR: ["", "/ca.crt", "/ca.key", "/etcd", "/etcd/ca.crt", "/etcd/peer-key.pem", "/serial"],
        nf.PKI_CERT: ["/ca.crt", "/etcd/ca.crt"],
        nf.PKI_KEY: ["/ca.key", "/etcd/peer-key.pem"],
    }
    assert all(fact["exists"] for fact in facts)
    assert {f["path"]: f["mode"] for f in facts if f["role"] == nf.PKI_KEY} == {
        str(pki / "ca.key"): 0o600, str(pki / "etcd/peer-key.pem"): 0o600}
    assert [f["is_dir"] for f in facts if f["path"] == str(pki / "etcd")] == [True]
    assert nf.findings(nf.row("1.1.21"), facts, "n") == []
    (pki / "ca.key").chmod(0o644)
    [finding] = nf.findings(nf.row("1.1.21"), files.pki_facts(pki, *ROLES), "n")
    assert finding.path == str(pki / "ca.key")


def test_pki_facts_of_a_folder_that_is_not_there(tmp_path):
    assert files.pki_facts(tmp_path / "pki", *ROLES) == [
        {"role": nf.PKI_DIR, "path": str(tmp_path / "pki"), "exists": False}]


# -- stat output from a node -------------------------------------------------------------------------
STAT_OUTPUT = "\n".join([
    "600|0|0|root|root|regular file|/etc/kubernetes/admin.conf",
    "644|0|0|root|root|regular empty file|/etc/kubernetes/pki/ca.crt",
    "700|1001|1001|UNKNOWN|UNKNOWN|directory|/var/lib/etcd",
    "4755|0|0|root|root|regular file|/etc/odd|name",
    "stat: cannot statx '/etc/kubernetes/super-admin.conf': No such file or directory",
    "",
    "not|a|stat|line",
    "6x4|0|0|root|root|regular file|/etc/kubernetes/scheduler.conf",
    "644|zero|0|root|root|regular file|/etc/kubernetes/controller-manager.conf",
    "777|0|0|root|root|symbolic link|/etc/cni/net.d/10-kindnet.conflist",
    "600|0|0|root|root|regular file|/not/asked/for",
])
ASKED = {
    "/etc/kubernetes/admin.conf": [nf.ADMIN_KUBECONFIG],
    "/etc/kubernetes/pki/ca.crt": [nf.PKI_DIR, nf.PKI_CERT, nf.KUBELET_CLIENT_CA],
    "/var/lib/etcd": [nf.ETCD_DATA_DIR],
    "/etc/odd|name": [nf.KUBELET_CONFIG],
    "/etc/kubernetes/super-admin.conf": [nf.ADMIN_KUBECONFIG],
    "/etc/kubernetes/scheduler.conf": [nf.SCHEDULER_KUBECONFIG],
    "/etc/kubernetes/controller-manager.conf": [nf.CONTROLLER_MANAGER_KUBECONFIG],
    "/etc/cni/net.d/10-kindnet.conflist": [nf.CNI_CONFIG],
}


def test_parse_stat_lines():
    facts = files.parse_stat_lines(ASKED, STAT_OUTPUT)
    assert facts[0] == {"role": nf.ADMIN_KUBECONFIG, "path": "/etc/kubernetes/admin.conf", "exists": True,
                        "mode": 0o600, "uid": 0, "gid": 0, "user": "root", "group": "root", "is_dir": False}
    ca = [fact for fact in facts if fact["path"] == "/etc/kubernetes/pki/ca.crt"]
    assert [fact["role"] for fact in ca] == [nf.PKI_DIR, nf.PKI_CERT, nf.KUBELET_CLIENT_CA]
    assert {fact["mode"] for fact in ca} == {0o644}
    [etcd] = [fact for fact in facts if fact["role"] == nf.ETCD_DATA_DIR]
    assert (etcd["is_dir"], etcd["user"], etcd["group"], etcd["uid"]) == (True, None, None, 1001)
    [odd] = [fact for fact in facts if fact["role"] == nf.KUBELET_CONFIG]
    assert (odd["path"], odd["mode"]) == ("/etc/odd|name", 0o4755)
    [link] = [fact for fact in facts if fact["role"] == nf.CNI_CONFIG]
    assert link["is_dir"] is False and link["mode"] == 0o777
    # Not listed, or listed in a shape stat does not print: left out for the caller to report.
    listed = {fact["path"] for fact in facts}
    assert not listed & {"/etc/kubernetes/super-admin.conf", "/etc/kubernetes/scheduler.conf",
                         "/etc/kubernetes/controller-manager.conf", "/not/asked/for"}
    assert len(facts) == 7


def test_parsed_facts_are_facts_the_checks_read():
    facts = files.parse_stat_lines(ASKED, STAT_OUTPUT)
    for index, fact in enumerate(facts):
        nf.read_fact(fact, f"fact #{index}")
    assert nf.findings(nf.row("1.1.13"), facts, "n") == []
    # An owner the node has no name for cannot be told to be the etcd account, nor not to be.
    with pytest.raises(nf.NotVerified, match="has no name"):
        nf.findings(nf.row("1.1.12"), facts, "n")
    [finding] = nf.findings(nf.row("1.1.9"), facts, "n")
    assert finding.observed == "mode 0777"


def test_parse_stat_lines_of_nothing():
    assert files.parse_stat_lines(ASKED, "") == []
    assert files.parse_stat_lines({}, STAT_OUTPUT) == []


def test_stat_format_is_what_coreutils_prints(tmp_path):
    folder = tmp_path / "pki"
    folder.mkdir()
    key = folder / "ca.key"
    key.write_text("x")
    key.chmod(0o600)
    output = subprocess.run(["stat", "-c", files.STAT_FORMAT, "--", str(folder), str(key)],
                            capture_output=True, text=True, check=True).stdout
    facts = files.parse_stat_lines({str(folder): [nf.PKI_DIR], str(key): [nf.PKI_DIR, nf.PKI_KEY]}, output)
    local = [files.stat_fact(nf.PKI_DIR, folder), files.stat_fact(nf.PKI_DIR, key), files.stat_fact(nf.PKI_KEY, key)]
    assert facts == local
