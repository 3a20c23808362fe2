"""Service-mesh mutual TLS (the NSA/CISA guide's network separation): where a mesh is installed,
traffic between workloads is encrypted and authenticated.

Istio: a mesh-wide PeerAuthentication (in the root namespace, without a workload selector) sets
`mtls.mode: STRICT`, and no PeerAuthentication anywhere sets PERMISSIVE or DISABLE, for all ports or
for one (UNSET inherits and is fine). Linkerd: every application namespace is meshed, by the
`linkerd.io/inject: enabled` annotation on the namespace or on every workload's pod template in it.

How a mesh is told to be there:
- Istio: discovery says security.istio.io/v1 is served (Istio 1.22 and later). A cluster that serves
  only v1beta1 runs an older Istio that kubeproof does not read: not verified, never "no mesh".
- Linkerd: its control plane is found among the objects the suite lists anyway: a namespace labelled
  `linkerd.io/is-control-plane: "true"` (Linkerd's install labels its namespace so), or a Deployment
  labelled `linkerd.io/control-plane-component` (destination, identity, proxy-injector: present
  whichever way Linkerd was installed, including Helm into a namespace it did not label). The
  policy.linkerd.io CRDs alone are not taken as a mesh: they can be installed without a control
  plane, and nothing would inject a proxy."""

from __future__ import annotations

from dataclasses import dataclass

from kubeproof.checks._shape import listing, mapping, metadata, text
from kubeproof.pod_security import pod_spec_of
from kubeproof.results import Finding, NotVerified, ObjectRef
from kubeproof.snapshot import owned_by_a_workload

PRACTICE = "Service-mesh mTLS"

# No CIS 1.12 control asks for a mesh; the tests carry the NSA section only.
CONTROLS: tuple[str, ...] = ()
# The CIS ids each test of tests_cluster/test_service_mesh.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_istio_requires_mutual_tls_mesh_wide": CONTROLS,
    "test_peer_authentication_does_not_weaken_mutual_tls": CONTROLS,
    "test_linkerd_meshes_application_namespace": CONTROLS,
}

ISTIO_GROUP = "security.istio.io"
ISTIO_VERSION = "v1"
ISTIO_OLD_VERSION = "v1beta1"
# Istio's default meshConfig.rootNamespace; a mesh that moved it is not read from its ConfigMap.
ISTIO_ROOT_NAMESPACE = "istio-system"
MTLS_MODES = ("UNSET", "DISABLE", "PERMISSIVE", "STRICT")
WEAK_MODES = ("PERMISSIVE", "DISABLE")

LINKERD_CONTROL_PLANE_NAMESPACE_LABEL = "linkerd.io/is-control-plane"
LINKERD_CONTROL_PLANE_COMPONENT_LABEL = "linkerd.io/control-plane-component"
LINKERD_EXTENSION_LABEL = "linkerd.io/extension"  # viz, jaeger, multicluster: the mesh's own namespaces
LINKERD_INJECT = "linkerd.io/inject"
LINKERD_MESHED = ("enabled", "ingress")  # ingress mode still gets a proxy, for ingress controllers
KUBERNETES_NAMESPACE_PREFIX = "kube-"

_REMEDIATE_MESH_WIDE = (
    "Create a PeerAuthentication named default in the mesh's root namespace (istio-system) with no "
    "selector and `spec.mtls.mode: STRICT`, after checking that every workload that receives mesh "
    "traffic has a sidecar (PERMISSIVE is for migration, not for steady state)."
)
_REMEDIATE_WEAK = (
    "Set the mode to STRICT, or remove it (UNSET) so the policy inherits the mesh-wide STRICT mode. If a "
    "port must take plain text (a health check from outside the mesh), name only that port and record "
    "why in a baseline waiver."
)
_REMEDIATE_LINKERD_NAMESPACE = (
    "Annotate the namespace with `linkerd.io/inject: enabled` and restart its workloads so each pod gets "
    "a Linkerd proxy (`kubectl annotate namespace <name> linkerd.io/inject=enabled`)."
)
_REMEDIATE_LINKERD_WORKLOAD = (
    "Remove the `linkerd.io/inject: disabled` annotation (or set it to enabled) on the pod template and "
    "roll the workload, so its pods get a Linkerd proxy and talk mutual TLS."
)
_REMEDIATE_LINKERD_HOST_NETWORK = (
    "Run the workload without hostNetwork: Linkerd does not inject a proxy into pods on the host's "
    "network, so their traffic bypasses the mesh's mutual TLS."
)


# -- Istio ----------------------------------------------------------------------------------------------
def _mode(value, where: str) -> str:
    if value is None:
        return "UNSET"
    if value not in MTLS_MODES:
        raise NotVerified(f"{where} is {value!r}, not one of {', '.join(MTLS_MODES)}")
    return value


@dataclass(frozen=True)
class PeerAuthentication:
    ref: ObjectRef
    namespace: str
    workload_selector: dict  # matchLabels; empty: the whole namespace (or mesh, in the root namespace)
    modes: tuple[tuple[str, str], ...]  # (field path, mode): spec.mtls.mode, then each port's


def read_peer_authentication(policy) -> PeerAuthentication:
    meta = metadata(policy, "PeerAuthentication")
    ref = ObjectRef.of(policy, "PeerAuthentication")
    namespace = text(meta.get("namespace"), f"{ref} metadata.namespace")
    spec = mapping(policy.get("spec"), f"{ref} spec")
    selector = mapping(spec.get("selector"), f"{ref} spec.selector")
    labels = mapping(selector.get("matchLabels"), f"{ref} spec.selector.matchLabels")
    mtls = mapping(spec.get("mtls"), f"{ref} spec.mtls")
    modes = [("spec.mtls.mode", _mode(mtls.get("mode"), f"{ref} spec.mtls.mode"))]
    ports = mapping(spec.get("portLevelMtls"), f"{ref} spec.portLevelMtls")
    for port in sorted(ports, key=str):
        setting = mapping(ports[port], f"{ref} spec.portLevelMtls[{port}]")
        modes.append((f"spec.portLevelMtls[{port}].mode", _mode(setting.get("mode"), f"{ref} spec.portLevelMtls[{port}].mode")))
    return PeerAuthentication(ref, namespace, labels, tuple(modes))


def is_mesh_wide(policy: PeerAuthentication, root_namespace: str = ISTIO_ROOT_NAMESPACE) -> bool:
    return policy.namespace == root_namespace and not policy.workload_selector


def mesh_wide_findings(policies, root_namespace: str = ISTIO_ROOT_NAMESPACE) -> list[Finding]:
    """A mesh-wide PeerAuthentication sets STRICT, and none of the mesh-wide ones sets anything weaker
    (Istio applies only one of several; which one is not something to rely on)."""
    read = [read_peer_authentication(p) for p in listing(policies, "the PeerAuthentications")]
    mesh_wide = [p for p in read if is_mesh_wide(p, root_namespace)]
    if not mesh_wide:
        return [Finding(CONTROLS, ObjectRef("PeerAuthentication", "(mesh-wide)", root_namespace), "spec.mtls.mode",
                        f"no PeerAuthentication without a selector in {root_namespace}: the mesh defaults to PERMISSIVE",
                        "a mesh-wide PeerAuthentication with mtls.mode STRICT", _REMEDIATE_MESH_WIDE)]
    findings = []
    for policy in mesh_wide:
        for path, mode in policy.modes:
            if mode != "STRICT":
                observed = mode if mode != "UNSET" else "UNSET (the mesh-wide level inherits Istio's default, PERMISSIVE)"
                findings.append(Finding(CONTROLS, policy.ref, path, observed, "STRICT", _REMEDIATE_MESH_WIDE))
    return findings


def weakening_findings(policy) -> list[Finding]:
    """The places a PeerAuthentication lets plain text in: PERMISSIVE or DISABLE, for all its
    workloads or for one port."""
    read = read_peer_authentication(policy)
    return [Finding(CONTROLS, read.ref, path, mode, "STRICT, or UNSET to inherit the mesh-wide STRICT", _REMEDIATE_WEAK)
            for path, mode in read.modes if mode in WEAK_MODES]


def peer_authentication_summary(policy) -> dict:
    read = read_peer_authentication(policy)
    return {"namespace": read.namespace, "selector": dict(read.workload_selector), "modes": dict(read.modes)}


def peer_authentication_summaries(policies) -> dict:
    return {str(ObjectRef.of(p, "PeerAuthentication")): peer_authentication_summary(p)
            for p in listing(policies, "the PeerAuthentications")}


# -- Linkerd --------------------------------------------------------------------------------------------
def _labels(obj, kind: str) -> dict:
    meta = metadata(obj, kind)
    return mapping(meta.get("labels"), f"{kind} {meta['name']} metadata.labels")


def linkerd_control_plane_namespaces(namespaces, deployments) -> list[str]:
    """The namespaces Linkerd's control plane runs in; empty when Linkerd is not installed."""
    found = set()
    for namespace in listing(namespaces, "the namespaces"):
        if _labels(namespace, "Namespace").get(LINKERD_CONTROL_PLANE_NAMESPACE_LABEL) == "true":
            found.add(metadata(namespace, "Namespace")["name"])
    for deployment in listing(deployments, "the Deployments"):
        if LINKERD_CONTROL_PLANE_COMPONENT_LABEL in _labels(deployment, "Deployment"):
            meta = metadata(deployment, "Deployment")
            found.add(text(meta.get("namespace"), f"Deployment {meta['name']} metadata.namespace"))
    return sorted(found)


def linkerd_own_namespace(namespace, control_plane_namespaces) -> bool:
    """The mesh's own namespaces and Kubernetes' are not application namespaces."""
    name = metadata(namespace, "Namespace")["name"]
    return (name in control_plane_namespaces or name.startswith(KUBERNETES_NAMESPACE_PREFIX)
            or LINKERD_EXTENSION_LABEL in _labels(namespace, "Namespace"))


def namespace_name(namespace) -> str:
    return metadata(namespace, "Namespace")["name"]


def namespace_injection(namespace) -> str | None:
    """The namespace's own linkerd.io/inject annotation, for the report."""
    meta = metadata(namespace, "Namespace")
    return _inject_annotation(mapping(meta.get("annotations"), "Namespace metadata.annotations"), "Namespace")


def _inject_annotation(annotations: dict, where: str) -> str | None:
    return text(annotations.get(LINKERD_INJECT), f"{where} annotation {LINKERD_INJECT}", required=False)


def linkerd_findings(namespace, workloads) -> list[Finding]:
    """A namespace is meshed when its annotation injects every pod and no workload opts out, or when
    every workload's pod template asks for the proxy. An empty namespace without the annotation is
    not: nothing would mesh what is deployed there next."""
    meta = metadata(namespace, "Namespace")
    ns_ref = ObjectRef.of(namespace, "Namespace")
    annotations = mapping(meta.get("annotations"), f"{ns_ref} metadata.annotations")
    namespace_injects = _inject_annotation(annotations, str(ns_ref)) in LINKERD_MESHED
    judged = [w for w in listing(workloads, "the namespace's workloads") if not owned_by_a_workload(_object(w))]
    if not namespace_injects and not judged:
        return [Finding(CONTROLS, ns_ref, f"metadata.annotations[{LINKERD_INJECT}]",
                        annotations.get(LINKERD_INJECT, "(absent)"), "enabled", _REMEDIATE_LINKERD_NAMESPACE)]
    findings = []
    for workload in judged:
        ref = ObjectRef.of(workload)
        try:
            located = pod_spec_of(workload)
        except ValueError as error:
            raise NotVerified(f"the pod template of {ref} cannot be read: {error}") from None
        if located is None:
            raise NotVerified(f"{ref}: kind {workload.get('kind')!r} carries no pod template kubeproof knows")
        pod_metadata, spec, prefix = located
        pod_annotations = mapping(pod_metadata.get("annotations"), f"{ref} {prefix}metadata.annotations")
        asked = _inject_annotation(pod_annotations, f"{ref} {prefix}metadata")
        if spec.get("hostNetwork") is True:
            findings.append(Finding(CONTROLS, ref, f"{prefix}spec.hostNetwork", True, "false (a pod Linkerd can inject)",
                                    _REMEDIATE_LINKERD_HOST_NETWORK))
        elif spec.get("hostNetwork") not in (None, False):
            raise NotVerified(f"{ref} {prefix}spec.hostNetwork is {spec.get('hostNetwork')!r}, not true or false")
        elif asked in LINKERD_MESHED or (asked is None and namespace_injects):
            continue
        else:
            observed = asked if asked is not None else "(absent, and the namespace does not inject)"
            findings.append(Finding(CONTROLS, ref, f"{prefix}metadata.annotations[{LINKERD_INJECT}]", observed,
                                    "enabled (here or on the namespace)",
                                    _REMEDIATE_LINKERD_WORKLOAD if asked is not None else _REMEDIATE_LINKERD_NAMESPACE))
    return findings


def _object(value) -> dict:
    if not isinstance(value, dict):
        raise NotVerified(f"a workload is a {type(value).__name__}, not an object")
    meta = value.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise NotVerified("a workload's metadata is not an object")
    if isinstance(meta, dict) and not isinstance(meta.get("ownerReferences") or [], list):
        raise NotVerified("a workload's metadata.ownerReferences is not a list")
    return value
