"""Nodes, their taints and the tolerations that let pods past them, read once the same way for every
check that asks where pods may run (isolation: dedicated nodes; monitoring: agents on every node).

Fail closed: a field of the wrong shape, a label that is not text, or a toleration operator kubeproof
does not know raises NotVerified. Guessing either way about an operator could pass a workload whose
placement was misjudged."""

from __future__ import annotations

from dataclasses import dataclass

from kubeproof.checks._shape import listing, mapping, metadata, text
from kubeproof.results import NotVerified

# Operators of Toleration.ToleratesTaint that kubeproof evaluates (an empty operator means Equal).
KNOWN_OPERATORS = ("Equal", "Exists")


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


@dataclass(frozen=True)
class Node:
    name: str
    labels: dict
    taints: tuple[Taint, ...]


def read_nodes(nodes, empty: str) -> list[Node]:
    """Every node with its labels and taints; `empty` is the reason given when there is none."""
    listed = listing(nodes, "the nodes")
    if not listed:
        raise NotVerified(empty)
    found = []
    for node in listed:
        meta = metadata(node, "Node")
        where = f"Node {meta['name']}"
        labels = mapping(meta.get("labels"), f"{where} metadata.labels")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            # A label that cannot be compared could count a node in or out wrongly.
            raise NotVerified(f"{where} has a label that is not a string")
        spec = mapping(node.get("spec"), f"{where} spec")
        taints = []
        for index, taint in enumerate(listing(spec.get("taints"), f"{where} spec.taints")):
            taint = mapping(taint, f"{where} spec.taints[{index}]")
            taints.append(Taint(text(taint.get("key"), f"{where} spec.taints[{index}].key"),
                                text(taint.get("value"), f"{where} spec.taints[{index}].value", required=False) or "",
                                text(taint.get("effect"), f"{where} spec.taints[{index}].effect")))
        found.append(Node(meta["name"], labels, tuple(taints)))
    return found


def read_tolerations(values, where: str) -> list[dict]:
    tolerations = []
    for index, toleration in enumerate(listing(values, where)):
        toleration = mapping(toleration, f"{where}[{index}]")
        for name in ("key", "operator", "value", "effect"):
            text(toleration.get(name), f"{where}[{index}].{name}", required=False)
        if (toleration.get("operator") or "Equal") not in KNOWN_OPERATORS:
            # Newer servers know more operators (numeric comparisons).
            raise NotVerified(f"{where}[{index}].operator {toleration.get('operator')!r} is not one kubeproof knows")
        tolerations.append(toleration)
    return tolerations


def tolerates(toleration: dict, taint: Taint) -> bool:
    """Kubernetes' rule (Toleration.ToleratesTaint): an empty effect matches every effect and an empty
    key every key; Exists ignores the value; an empty operator means Equal. Only tolerations that
    read_tolerations accepted reach here."""
    effect, key = toleration.get("effect") or "", toleration.get("key") or ""
    if effect and effect != taint.effect:
        return False
    if key and key != taint.key:
        return False
    if (toleration.get("operator") or "Equal") == "Exists":
        return True
    return (toleration.get("value") or "") == taint.value
