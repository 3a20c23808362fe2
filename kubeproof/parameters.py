"""The test parameters kubeproof fills, declared once: for each name a test may ask for, where its
values come from (the snapshot's kinds, the baseline's waivers or monitoring agents, the documents of
--manifests) and what one value names in the evidence.

The plugin parametrises every test from here (pytest_generate_tests is a loop over PARAMETERS), and
tools/controls_catalogue.py reads OBJECT_PARAMETERS, the ones that stand for cluster objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from kubeproof.results import ObjectRef
from kubeproof.snapshot import KINDS, WORKLOAD_KINDS, owned_by_a_workload

if TYPE_CHECKING:
    from kubeproof.session import Audit

# What a parameter's source gives pytest: the values, and their ids (None: pytest's own, or the params').
Cases = tuple[list, "list[str] | None"]


class Unreadable:
    """Stands in for the objects of a kind that could not be listed; a test given one is not verified."""

    def __init__(self, kind: str, reason: str):
        self.kind, self.reason = kind, reason


@dataclass(frozen=True)
class Parameter:
    """One parameter name: how its values are produced, and what a value names in the evidence."""

    name: str
    source: str  # where the values come from, in words
    # Produces the cases from the audit; None where the test parametrises the name itself.
    cases: Callable[[Parameter, Audit], Cases] | None = None
    kinds: tuple[str, ...] = ()  # the snapshot kinds an object parameter draws from
    judged_through_owner: bool = False  # leave out objects a workload controller owns
    # What a value names in the evidence, where it is not an object dict (those name themselves).
    subject: Callable[[Any], dict | None] | None = None


def _none(reason: str):
    """The one case of a parameter with nothing to judge: skipped with the reason, rather than
    pytest's "got empty parameter set"."""
    return pytest.param(None, marks=pytest.mark.skip(reason=reason), id="none")


def _from_snapshot(parameter: Parameter, audit: Audit) -> Cases:
    values, ids = [], []
    for name in parameter.kinds:
        read = audit.snapshot.read(name)
        if read.readable:
            for item in read.items:
                if parameter.judged_through_owner and owned_by_a_workload(item):
                    continue
                values.append(item)
                ids.append(str(ObjectRef.of(item, read.kind.kind)))
        else:
            values.append(Unreadable(read.kind.kind, read.error))
            ids.append(f"{read.kind.kind}:unreadable")
    if not values:
        kinds = ", ".join(KINDS[name].kind for name in parameter.kinds)
        return [_none(f"no {kinds} objects in this cluster")], None
    return values, ids


def _from_waivers(parameter: Parameter, audit: Audit) -> Cases:
    return [
        pytest.param(w, marks=pytest.mark.cis(w.control), id=f"line{w.line}-{w.control}-{w.kind}/{w.namespace}/{w.name}")
        for w in audit.baseline.waivers
    ] or [_none("the baseline has no waivers")], None


def _from_monitoring_agents(parameter: Parameter, audit: Audit) -> Cases:
    # One case per monitoring agent the baseline expects ("NAMESPACE/NAME" patterns).
    return list(audit.baseline.monitoring_daemonsets) or [
        _none("the baseline expects no monitoring agents (monitoring.daemonsets)")], None


def _from_manifests(parameter: Parameter, audit: Audit) -> Cases:
    documents = getattr(audit.backend, "documents", [])
    return documents, [f"{d.where} {d.key()[0]}/{d.key()[2]}" for d in documents]


def _document(value) -> dict:
    kind, namespace, name = value.key()
    return {"kind": str(kind), "namespace": namespace, "name": str(name), "source": value.where}


def _named(kind: str) -> Callable[[Any], dict | None]:
    return lambda value: {"kind": kind, "name": value} if isinstance(value, str) else None


def _objects(name: str, *kinds: str, judged_through_owner: bool = False, note: str = "") -> Parameter:
    return Parameter(name, f"the snapshot's {', '.join(kinds)}{note}", _from_snapshot, kinds, judged_through_owner)


PARAMETERS: dict[str, Parameter] = {p.name: p for p in (
    Parameter("waiver", "the baseline's waivers, one case each", _from_waivers),
    Parameter("expected_agent", "the baseline's monitoring agents (monitoring.daemonsets)", _from_monitoring_agents,
              subject=_named("DaemonSet")),
    Parameter("manifest", "the documents of --manifests (none for other backends)", _from_manifests, subject=_document),
    _objects("namespace", "namespaces"),
    _objects("role", "clusterroles", "roles"),
    _objects("binding", "clusterrolebindings", "rolebindings"),
    _objects("service_account", "serviceaccounts"),
    _objects("secret", "secrets", note=" (metadata only)"),
    _objects("node", "nodes"),
    _objects("network_policy", "networkpolicies"),
    _objects("peer_authentication", "peerauthentications", note=" (Istio; asked for only where the mesh is installed)"),
    # Controllers and bare pods; what a controller owns is judged once, through its owner's template.
    _objects("workload", *WORKLOAD_KINDS, judged_through_owner=True),
    # Parametrised by its test (the API paths probed without credentials); named here for the evidence.
    Parameter("path", "the test's own list of API paths", subject=_named("Endpoint")),
)}

# The parameters that stand for cluster objects, and the kinds that fill them.
OBJECT_PARAMETERS: dict[str, tuple[str, ...]] = {p.name: p.kinds for p in PARAMETERS.values() if p.kinds}


def generated(fixturenames) -> list[Parameter]:
    """The parameters of a test that kubeproof fills, in the registry's order."""
    return [p for p in PARAMETERS.values() if p.cases is not None and p.name in fixturenames]


def subject(name: str, value) -> dict | None:
    """What one parameter value names in the evidence; None when it names nothing."""
    if isinstance(value, dict):
        return ObjectRef.of(value, value.get("kind") or name).__dict__
    if isinstance(value, Unreadable):
        return {"kind": value.kind, "name": "(could not be listed)"}
    parameter = PARAMETERS.get(name)
    return parameter.subject(value) if parameter is not None and parameter.subject is not None else None


def kinds_read(name: str, value) -> set[str]:
    """The snapshot kinds a value came from: a test rests on its object's kind, not on every kind
    the parameter draws from."""
    kind = value.kind if isinstance(value, Unreadable) else value.get("kind") if isinstance(value, dict) else None
    return {n for n in OBJECT_PARAMETERS.get(name, ()) if KINDS[n].kind == kind}
