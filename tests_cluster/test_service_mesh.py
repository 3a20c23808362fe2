"""Service-mesh mutual TLS: where Istio runs, the mesh requires mutual TLS (a STRICT mesh-wide
PeerAuthentication that no other policy weakens); where Linkerd runs, every application namespace is
meshed. Without a mesh these tests are exempt: there is nothing to prove, and nothing is passed."""

import pytest

from kubeproof.checks import service_mesh
from kubeproof.results import NotVerified
from kubeproof.snapshot import WORKLOAD_KINDS

pytestmark = [pytest.mark.service_mesh, pytest.mark.nsa("Network separation and hardening")]

NO_MESH = "no service mesh installed"


def _istio_installed(snapshot) -> bool:
    if snapshot.serves(service_mesh.ISTIO_GROUP, service_mesh.ISTIO_VERSION):
        return True
    if snapshot.serves(service_mesh.ISTIO_GROUP, service_mesh.ISTIO_OLD_VERSION):
        raise NotVerified(f"{service_mesh.ISTIO_GROUP} is served only as {service_mesh.ISTIO_OLD_VERSION} (Istio "
                          f"before 1.22); kubeproof reads PeerAuthentications as {service_mesh.ISTIO_VERSION}")
    return False


_control_plane_found: list = []  # [(namespaces, deployments, answer)]: every namespace's test asks the same


def _linkerd_namespaces(snapshot) -> list[str]:
    namespaces, deployments = snapshot.items("namespaces"), snapshot.items("deployments")
    if not (_control_plane_found and _control_plane_found[0][0] is namespaces and _control_plane_found[0][1] is deployments):
        try:
            answer = service_mesh.linkerd_control_plane_namespaces(namespaces, deployments)
        except NotVerified as error:
            answer = error
        _control_plane_found[:] = [(namespaces, deployments, answer)]
    answer = _control_plane_found[0][2]
    if isinstance(answer, NotVerified):
        raise answer
    return answer


# No CIS 1.12 control asks for a mesh: these tests carry the NSA section only.
def test_istio_requires_mutual_tls_mesh_wide(snapshot, verdict):
    if not _istio_installed(snapshot):
        try:
            linkerd = _linkerd_namespaces(snapshot)
        except NotVerified:
            linkerd = None  # only the wording of the exemption depends on it
        if linkerd:
            verdict.exempt("Istio is not installed (security.istio.io/v1 is not served); this cluster's mesh is "
                           "Linkerd, judged by test_linkerd_meshes_application_namespace")
        if linkerd is None:
            verdict.exempt("Istio is not installed (security.istio.io/v1 is not served)")
        verdict.exempt(f"{NO_MESH}: Istio is not (security.istio.io/v1 is not served), nor is Linkerd")
    policies = snapshot.items("peerauthentications")
    findings = service_mesh.mesh_wide_findings(policies)
    verdict.observe(root_namespace=service_mesh.ISTIO_ROOT_NAMESPACE,
                    peer_authentications=service_mesh.peer_authentication_summaries(policies))
    verdict(findings)


def test_peer_authentication_does_not_weaken_mutual_tls(peer_authentication, verdict):
    # Only parametrised where Istio's PeerAuthentication is served; elsewhere an empty set, skipped.
    findings = service_mesh.weakening_findings(peer_authentication)
    verdict.observe(**service_mesh.peer_authentication_summary(peer_authentication))
    verdict(findings)


def test_linkerd_meshes_application_namespace(namespace, snapshot, verdict):
    control_plane = _linkerd_namespaces(snapshot)
    if not control_plane:
        absent = ("Linkerd is not installed (no namespace labelled linkerd.io/is-control-plane=true, no Deployment "
                  "labelled linkerd.io/control-plane-component)")
        if _istio_installed(snapshot):
            verdict.exempt(f"{absent}; this cluster's mesh is Istio, judged by test_istio_requires_mutual_tls_mesh_wide")
        verdict.exempt(f"{NO_MESH}: {absent}, nor is Istio")
    name = service_mesh.namespace_name(namespace)
    if service_mesh.linkerd_own_namespace(namespace, control_plane):
        verdict.exempt(f"{name} is Kubernetes' or Linkerd's own namespace, not an application namespace")
    workloads = [w for kind in WORKLOAD_KINDS for w in snapshot.in_namespace(kind, name)]
    findings = service_mesh.linkerd_findings(namespace, workloads)
    verdict.observe(linkerd_control_plane=control_plane, namespace_inject=service_mesh.namespace_injection(namespace))
    verdict(findings)
