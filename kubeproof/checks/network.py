"""Network enforcement: a plugin that enforces NetworkPolicy runs (CIS 5.3.1), and the policies of
sensitive namespaces admit no traffic from every namespace (CIS 5.3.2, the NSA/CISA guide's network
separation).

Which plugin runs is told from the DaemonSets its node agent runs as, in any namespace (Calico's
operator installs into calico-system, recent flannel into kube-flannel): by the DaemonSet's name,
its app labels and its containers' image repositories. The table is SIGNATURES below; anything it
does not know makes the test not verified, never a pass.

An ingress rule admits every namespace when it has no `from` (every source), or a peer that selects
every namespace, or an ipBlock for a whole address family whose `except` does not carve out the pod
network. A peer `{namespaceSelector: {}, podSelector: {matchLabels: ...}}` admits the pods so
labelled in every namespace; pod labels are chosen by whoever creates the pod, so anyone who may
create pods in any namespace can qualify: it counts as every namespace too."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from kubeproof.checks._shape import listing, mapping, metadata, text
from kubeproof.checks.network_policy import effective_policy_types
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Network enforcement"

CNI_CONTROLS = ("5.3.1",)
INGRESS_CONTROLS = ("5.3.2",)
# The CIS ids each test of tests_cluster/test_network.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_cni_enforces_network_policy": CNI_CONTROLS,
    "test_sensitive_namespace_admits_no_ingress_from_every_namespace": INGRESS_CONTROLS,
}
UNKNOWN_CNI = "could not tell which CNI runs; check that it enforces NetworkPolicy"
NO_NODES = "the cluster has no nodes, so it has no pod network to enforce NetworkPolicy on"
FAKE_RUNTIME = ("the embedded cluster's pods run on a fake container runtime and have no network at all, so "
                "there is no traffic for a NetworkPolicy to stop")
# The API server labels every namespace with its own name (since 1.22): `Exists` on it is every namespace.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
APP_LABELS = ("k8s-app", "app", "name", "component", "app.kubernetes.io/name")

_REMEDIATE_CNI = (
    "Run a network plugin that enforces NetworkPolicy (Calico, Cilium, Antrea, ...), or add a policy "
    "engine beside the one you have (Canal is flannel with Calico's policy engine); until then every "
    "NetworkPolicy in the cluster is stored but not applied."
)
_REMEDIATE_INGRESS = (
    "Name the namespaces (and pods) that may connect: a namespaceSelector on kubernetes.io/metadata.name "
    "together with a podSelector in the same peer, and ipBlocks that leave out the cluster's pod "
    "network. A rule without `from` admits every source."
)


# -- which CNI runs -------------------------------------------------------------------------------------
def image_repository(image: str) -> str:
    """The repository path of an image reference, without registry host, tag or digest:
    "quay.io/cilium/cilium:v1.16@sha256:..." -> "cilium/cilium"."""
    name = image.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: len(name) - len(last[-1])] + last[-1].split(":", 1)[0]
    return name


def image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    repository: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Agent:
    """A DaemonSet as the identification reads it."""

    ref: ObjectRef
    name: str
    labels: dict
    containers: tuple[Container, ...]

    def container(self, *repositories: str) -> Container | None:
        return next((c for c in self.containers if _repository_is(c.repository, repositories)), None)


def _repository_is(repository: str, known: tuple[str, ...]) -> bool:
    # A mirror keeps the upstream path at its end: "mirror.example.com/hub/calico/node".
    return any(repository == k or repository.endswith("/" + k) for k in known)


def read_agent(daemonset) -> Agent:
    meta = metadata(daemonset, "DaemonSet")
    ref = ObjectRef.of(daemonset, "DaemonSet")
    labels = mapping(meta.get("labels"), f"{ref} metadata.labels")
    template = mapping(mapping(daemonset.get("spec"), f"{ref} spec").get("template"), f"{ref} spec.template")
    template_labels = mapping(mapping(template.get("metadata"), f"{ref} spec.template.metadata").get("labels"),
                              f"{ref} spec.template.metadata.labels")
    spec = mapping(template.get("spec"), f"{ref} spec.template.spec")
    containers = []
    for list_name in ("initContainers", "containers"):
        for index, container in enumerate(listing(spec.get(list_name), f"{ref} spec.template.spec.{list_name}")):
            where = f"{ref} spec.template.spec.{list_name}[{index}]"
            container = mapping(container, where)
            image = text(container.get("image"), f"{where}.image", required=False) or ""
            args = []
            for part in ("command", "args"):
                values = listing(container.get(part), f"{where}.{part}")
                if not all(isinstance(v, str) for v in values):
                    raise NotVerified(f"{where}.{part} holds a value that is not a string")
                args.extend(values)
            containers.append(Container(text(container.get("name"), f"{where}.name", required=False) or "",
                                        image, image_repository(image), tuple(args)))
    return Agent(ref, meta["name"], {**template_labels, **labels}, tuple(containers))


def _flag(agent: Agent, name: str, container: Container | None = None) -> str | None:
    """The value of a `--name=value` (or bare `--name`, "true") argument, from one container or any."""
    for candidate in ([container] if container else agent.containers):
        for arg in candidate.args:
            for prefix in ("--", "-"):
                if arg == f"{prefix}{name}":
                    return "true"
                if arg.startswith(f"{prefix}{name}="):
                    return arg.split("=", 1)[1]
    return None


@dataclass(frozen=True)
class Verdict:
    enforces: bool | None  # None: it is this plugin, but whether it enforces cannot be told
    why: str


@dataclass(frozen=True)
class Signature:
    """How one plugin's node agent shows itself, and whether it enforces NetworkPolicy."""

    plugin: str
    names: tuple[str, ...]  # DaemonSet names, or app label values
    repositories: tuple[str, ...]  # image repository paths
    judge: object = field(default=None)  # Agent -> Verdict; default: enforces

    def matches(self, agent: Agent) -> bool:
        if agent.name in self.names:
            return True
        if any(isinstance(agent.labels.get(key), str) and agent.labels[key] in self.names for key in APP_LABELS):
            return True
        return agent.container(*self.repositories) is not None

    def verdict(self, agent: Agent) -> Verdict:
        if self.judge is None:
            return Verdict(True, f"{self.plugin} enforces NetworkPolicy")
        return self.judge(agent)


def _kube_router(agent: Agent) -> Verdict:
    if (_flag(agent, "run-firewall") or "true").lower() == "false":
        return Verdict(False, "kube-router runs with --run-firewall=false: its NetworkPolicy controller is off")
    return Verdict(True, "kube-router enforces NetworkPolicy (its firewall is on by default)")


def _weave(agent: Agent) -> Verdict:
    if any(c.name == "weave-npc" for c in agent.containers) or agent.container("weaveworks/weave-npc"):
        return Verdict(True, "weave-net with its weave-npc container enforces NetworkPolicy")
    return Verdict(False, "weave-net runs without its weave-npc container, which is what enforces NetworkPolicy")


def _flannel(agent: Agent) -> Verdict:
    return Verdict(False, "flannel provides pod networking only; it does not enforce NetworkPolicy")


# kind's kindnetd is tagged by build date; kind v0.24.0 (kindnetd v20240813) built kube-network-policies
# into it. Older kindnetd only routes. The standalone kindnet (github.com/aojea/kindnet) takes
# --network-policy; its install manifest sets it to true.
KINDNET_POLICY_SINCE = 20240813
_DATE_TAG = re.compile(r"^v(\d{8})(?:-|$)")


def _kindnet(agent: Agent) -> Verdict:
    flag = _flag(agent, "network-policy")
    if flag is not None:
        if flag.lower() == "false":
            return Verdict(False, "kindnet runs with --network-policy=false")
        if flag.lower() == "true":
            return Verdict(True, "kindnet runs with --network-policy=true")
    container = agent.container("kindest/kindnetd")
    tag = image_tag(container.image) if container else None
    dated = _DATE_TAG.match(tag or "")
    if dated:
        if int(dated.group(1)) >= KINDNET_POLICY_SINCE:
            return Verdict(True, f"kindnetd {tag} (kind v0.24.0 and later) enforces NetworkPolicy")
        return Verdict(False, f"kindnetd {tag} predates kind v0.24.0 and does not enforce NetworkPolicy")
    return Verdict(None, "kindnet runs, but from its image and arguments kubeproof cannot tell whether its "
                         "NetworkPolicy support is on")


def _aws_node(agent: Agent) -> Verdict:
    # The VPC CNI enforces NetworkPolicy only through its network policy agent, when that is enabled.
    container = next((c for c in agent.containers if c.name == "aws-network-policy-agent"), None)
    if container is None:
        return Verdict(False, "the Amazon VPC CNI runs without its network policy agent")
    if (_flag(agent, "enable-network-policy", container) or "false").lower() == "true":
        return Verdict(True, "the Amazon VPC CNI's network policy agent is enabled")
    return Verdict(False, "the Amazon VPC CNI's network policy agent runs with --enable-network-policy=false")


SIGNATURES = (
    # Canal is flannel's routing with Calico's policy engine; listed before both so its name decides.
    Signature("Canal", ("canal",), ()),
    Signature("Calico", ("calico-node",), ("calico/node", "calico/node-windows")),
    Signature("Cilium", ("cilium", "cilium-agent"), ("cilium/cilium",)),
    Signature("Cilium (GKE Dataplane V2)", ("anetd",), ()),
    Signature("Antrea", ("antrea-agent",), ("antrea/antrea-agent-ubuntu", "antrea/antrea-ubuntu", "antrea/antrea-agent")),
    Signature("kube-router", ("kube-router",), ("cloudnativelabs/kube-router",), _kube_router),
    Signature("Weave Net", ("weave-net",), ("weaveworks/weave-kube",), _weave),
    Signature("kube-network-policies", ("kube-network-policies",), ("networking/kube-network-policies",)),
    Signature("OVN-Kubernetes", ("ovnkube-node",), ()),
    Signature("Kube-OVN", ("kube-ovn-cni",), ("kubeovn/kube-ovn",)),
    Signature("Azure Network Policy Manager", ("azure-npm",), ("containernetworking/azure-npm",)),
    Signature("Amazon VPC CNI", ("aws-node",), ("amazon-k8s-cni", "amazon/amazon-k8s-cni"), _aws_node),
    Signature("kindnet", ("kindnet",), ("kindest/kindnetd", "aojea/kindnetd"), _kindnet),
    Signature("flannel", ("flannel", "kube-flannel-ds", "kube-flannel-ds-amd64"),
              ("flannel/flannel", "coreos/flannel", "flannel-io/flannel"), _flannel),
)


@dataclass(frozen=True)
class Identified:
    plugin: str
    daemonset: ObjectRef
    enforces: bool | None
    why: str

    def summary(self) -> dict:
        return {"plugin": self.plugin, "daemonset": str(self.daemonset), "enforces": self.enforces, "why": self.why}


def identify(daemonsets) -> list[Identified]:
    """The network plugins the cluster's DaemonSets show, one entry per DaemonSet recognised."""
    found = []
    for daemonset in listing(daemonsets, "the DaemonSets"):
        agent = read_agent(daemonset)
        signature = next((s for s in SIGNATURES if s.matches(agent)), None)
        if signature is not None:
            verdict = signature.verdict(agent)
            found.append(Identified(signature.plugin, agent.ref, verdict.enforces, verdict.why))
    return found


def cni_findings(daemonsets) -> list[Finding]:
    """Passes when one recognised plugin enforces NetworkPolicy; a finding when every plugin found is
    known not to; not verified when none is recognised, or when one whose enforcement cannot be told
    runs beside others that do not enforce."""
    found = identify(daemonsets)
    if any(i.enforces for i in found):
        return []
    if not found:
        raise NotVerified(UNKNOWN_CNI)
    undetermined = [i for i in found if i.enforces is None]
    if undetermined:
        raise NotVerified(f"{UNKNOWN_CNI} ({'; '.join(i.why for i in undetermined)})")
    return [Finding(CNI_CONTROLS, i.daemonset, "spec.template.spec.containers", i.why,
                    "a network plugin that enforces NetworkPolicy", _REMEDIATE_CNI) for i in found]


# -- ingress from every namespace -----------------------------------------------------------------------
def selects_every_namespace(selector, where: str) -> bool:
    selector = mapping(selector, where)
    labels = mapping(selector.get("matchLabels"), f"{where}.matchLabels")
    expressions = listing(selector.get("matchExpressions"), f"{where}.matchExpressions")
    if labels:
        return False
    for index, expression in enumerate(expressions):
        expression = mapping(expression, f"{where}.matchExpressions[{index}]")
        key = text(expression.get("key"), f"{where}.matchExpressions[{index}].key")
        operator = text(expression.get("operator"), f"{where}.matchExpressions[{index}].operator")
        if not (key == NAMESPACE_NAME_LABEL and operator == "Exists"):
            return False
    return True


def _selects_some_pods_only(selector, where: str) -> bool:
    selector = mapping(selector, where)
    return bool(mapping(selector.get("matchLabels"), f"{where}.matchLabels")
                or listing(selector.get("matchExpressions"), f"{where}.matchExpressions"))


def pod_networks(nodes) -> list:
    """The pod address ranges the nodes record (spec.podCIDRs, else spec.podCIDR). `nodes` may be the
    NotVerified that reading them raised; it is raised here, only when the ranges are needed."""
    if isinstance(nodes, NotVerified):
        raise nodes
    listed = listing(nodes, "the nodes")
    if not listed:
        raise NotVerified("the cluster has no nodes, so its pod address ranges are not known")
    ranges = []
    for node in listed:
        meta = metadata(node, "Node")
        spec = mapping(node.get("spec"), f"Node {meta['name']} spec")
        cidrs = listing(spec.get("podCIDRs"), f"Node {meta['name']} spec.podCIDRs") or (
            [spec["podCIDR"]] if spec.get("podCIDR") else [])
        if not cidrs:
            raise NotVerified(f"Node {meta['name']} records no pod address range (spec.podCIDRs), so whether an "
                              "ipBlock's except keeps every namespace's pods out cannot be told")
        for cidr in cidrs:
            ranges.append(_network(cidr, f"Node {meta['name']} spec.podCIDRs"))
    return ranges


def _network(value, where: str):
    if not isinstance(value, str):
        raise NotVerified(f"{where} holds {value!r}, not a CIDR")
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise NotVerified(f"{where} holds {value!r}, not a CIDR") from None


def _ip_block_admits_every_namespace(block: dict, nodes, where: str) -> str | None:
    cidr = _network(block.get("cidr"), f"{where}.cidr")
    excepts = [_network(e, f"{where}.except[{i}]") for i, e in enumerate(listing(block.get("except"), f"{where}.except"))]
    if cidr.prefixlen != 0:
        return None
    if not excepts:
        return f"ipBlock {cidr} with no except: every address, every namespace's pods among them"
    carved = list(ipaddress.collapse_addresses([e for e in excepts if e.version == cidr.version]))
    uncovered = [str(p) for p in pod_networks(nodes)
                 if p.version == cidr.version and not any(p.subnet_of(e) for e in carved)]
    if uncovered:
        return (f"ipBlock {cidr} whose except ({', '.join(str(e) for e in excepts)}) leaves the pod network "
                f"({', '.join(uncovered)}) in: every namespace's pods")
    return None


def namespace_wide_ingress(policy, nodes=None) -> list[tuple[str, str]]:
    """(field path, what it admits) for every ingress rule or peer that admits every namespace."""
    meta = metadata(policy, "NetworkPolicy")
    where = f"NetworkPolicy {meta.get('namespace')}/{meta['name']} spec"
    spec = mapping(policy.get("spec"), where)
    if "Ingress" not in effective_policy_types(spec, where):
        return []  # the API server ignores ingress rules of an egress-only policy
    found = []
    for index, rule in enumerate(listing(spec.get("ingress"), f"{where}.ingress")):
        rule = mapping(rule, f"{where}.ingress[{index}]")
        peers = listing(rule.get("from"), f"{where}.ingress[{index}].from")
        if not peers:
            found.append((f"spec.ingress[{index}]", "a rule without from: every source, every namespace"))
            continue
        for number, peer in enumerate(peers):
            path = f"spec.ingress[{index}].from[{number}]"
            peer = mapping(peer, f"{where}.ingress[{index}].from[{number}]")
            namespaces, pods, block = (peer.get("namespaceSelector"), peer.get("podSelector"), peer.get("ipBlock"))
            if namespaces is None and pods is None and block is None:
                raise NotVerified(f"{where}.ingress[{index}].from[{number}] names no peer; it cannot be judged")
            if block is not None:
                if namespaces is not None or pods is not None:
                    raise NotVerified(f"{where}.ingress[{index}].from[{number}] mixes ipBlock with selectors")
                admits = _ip_block_admits_every_namespace(mapping(block, f"{where}.{path}.ipBlock"), nodes,
                                                          f"{where}.ingress[{index}].from[{number}].ipBlock")
                if admits:
                    found.append((f"{path}.ipBlock", admits))
                continue
            if pods is not None:
                _selects_some_pods_only(pods, f"{where}.{path}.podSelector")  # its shape, read either way
            if namespaces is not None and selects_every_namespace(namespaces, f"{where}.{path}.namespaceSelector"):
                if pods is not None and _selects_some_pods_only(pods, f"{where}.{path}.podSelector"):
                    found.append((path, "every namespace's pods that carry the podSelector's labels (pod labels "
                                        "are chosen by whoever creates the pod)"))
                else:
                    found.append((path, "a namespaceSelector that selects every namespace: every pod of every namespace"))
    return found


def ingress_findings(policy, nodes=None) -> list[Finding]:
    ref = ObjectRef.of(policy, "NetworkPolicy")
    return [Finding(INGRESS_CONTROLS, ref, path, admits, "only named namespaces and pods", _REMEDIATE_INGRESS)
            for path, admits in namespace_wide_ingress(policy, nodes)]
