"""The files that hold a node's credentials and settings are closed to other accounts: mode and owner
of the control plane's static pod manifests, kubeconfigs, PKI and etcd data (CIS 1.1), of each worker's
kubelet files (CIS 4.1), and etcd trusting a CA of its own (CIS 2.7). Read with stat where a node's
filesystem is visible: the embedded cluster's own files, a kind node through `docker exec`. The API
does not expose a node's files, so elsewhere each control is not verified, with that reason."""

import pytest

from kubeproof.checks import node_files
from kubeproof.checks.node_files import NotApplicable
from kubeproof.results import NotVerified

pytestmark = [pytest.mark.node_files, pytest.mark.nsa("Kubernetes Pod security: node hardening")]

NOT_VISIBLE = ("the node's files are not visible from here: the Kubernetes API does not expose a node's "
               "filesystem (kubeproof reads them on its embedded cluster and on kind nodes)")


def cases(prefix: str) -> list:
    return [pytest.param(row, marks=pytest.mark.cis(row.id), id=row.id)
            for row in node_files.ROWS if row.id.startswith(prefix)]


def judge(control, facts_by_node: dict, cluster, verdict) -> None:
    exempt = cluster.file_exemptions().get(control.id)
    if exempt:
        verdict.exempt(exempt)
    found, unknown, not_applicable = [], [], []
    for node, facts in facts_by_node.items():
        if facts is None:
            unknown.append(f"{node}: {NOT_VISIBLE}")
            continue
        verdict.observe(**{f"files on {node}": node_files.evidence(control, facts)})
        try:
            found += node_files.findings(control, facts, node)
        except NotApplicable as reason:
            not_applicable.append(f"{node}: {reason.reason}")
        except NotVerified as reason:
            unknown.append(f"{node}: {reason.reason}")
    if found:
        verdict(found)
    if unknown:
        raise NotVerified("; ".join(unknown))
    if not_applicable and len(not_applicable) == len(facts_by_node):
        verdict.exempt("; ".join(not_applicable))
    verdict([])


@pytest.mark.parametrize("control", cases("1.1."))
def test_control_plane_file(control, cluster, verdict):
    judge(control, {"control plane": cluster.control_plane_files()}, cluster, verdict)


@pytest.mark.parametrize("control", cases("4.1."))
def test_worker_node_file(control, cluster, snapshot, verdict):
    names = [str((node.get("metadata") or {}).get("name")) for node in snapshot.items("nodes")]
    if not names:
        verdict.exempt("this cluster has no nodes")
    judge(control, {name: cluster.node_files(name) for name in names}, cluster, verdict)


@pytest.mark.cis(node_files.ETCD_CA_CONTROL)
def test_etcd_has_a_certificate_authority_of_its_own(cluster, verdict):
    fingerprints = cluster.etcd_ca_fingerprints()
    if fingerprints is None:
        raise NotVerified("the CA certificates etcd and the API server trust are files on the control-plane "
                          "node, which is not visible from here")
    etcd_ca, cluster_ca = fingerprints
    verdict.observe(etcd_trusted_ca_sha256=etcd_ca, cluster_client_ca_sha256=cluster_ca)
    verdict(node_files.etcd_ca_findings(etcd_ca, cluster_ca, "control plane"))
