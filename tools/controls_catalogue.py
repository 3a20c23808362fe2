"""Writes docs/CONTROLS.md: every CIS Kubernetes Benchmark 1.12 control, whether kubeproof proves it
automatically, how, and with which tests; the rest with the reason they are not.

The catalogue is read from the `cis` markers of tests_cluster/ (module, function and pytest.param
marks), by importing the test modules directly: collecting them with pytest would need a cluster,
because most tests are parametrised over the objects of one. How a test proves its controls is read
from what it calls (a configuration read, a probe, a dry-run, an access review, etcd's bytes...).

    python tools/controls_catalogue.py           # rewrite docs/CONTROLS.md
    python tools/controls_catalogue.py --check   # exit 1 if docs/CONTROLS.md is out of date

The control list is the project's own kubeproof/data/cis-1.12-controls.json (ids, sections and types;
override with KUBEPROOF_CIS_CONTROLS). Benchmark titles are deliberately not copied: the ids are the reference."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import json
import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from kubeproof import parameters as _parameters  # noqa: E402  (the checkout's kubeproof, wherever this runs from)

SUITE = ROOT / "tests_cluster"
OUTPUT = ROOT / "docs" / "CONTROLS.md"
DEFAULT_CONTROLS = ROOT / "kubeproof" / "data" / "cis-1.12-controls.json"

# How a test proves its controls, from what its code calls; the first match is the test's method.
METHODS = (
    (("audit_log_path",), "audit log read back (the suite's own request found in it)"),
    (("etcd_secrets",), "bytes stored in etcd"),
    (("kubelets.facts",), "the kubelet itself: its running configuration (/configz) and command line (/flagz), "
                          "and live requests to its port"),
    (("control_plane_files", "node_files(", "etcd_ca_fingerprints"), "stat of the node's files (mode, owner), "
                                                                     "and the CA certificates themselves"),
    (("kube_proxy.",), "kube-proxy's configuration (kube-system ConfigMap and DaemonSet flags)"),
    (("access_review",), "access review (SubjectAccessReview)"),
    (("privileged_pod", "pod_security_label", "pod_security_is_live", "dry_run"), "server-side dry-run"),
    (("component_config",), "component configuration (effective flags and files)"),
    (("probes.anonymous",), "live probe (unauthenticated request)"),
)
# The parameters that stand for cluster objects, from the one registry the plugin also reads.
OBJECT_PARAMETERS = tuple(_parameters.OBJECT_PARAMETERS)
READ_OBJECTS = "objects read from the API"

# Where a test's data cannot be seen, so its controls are not verified there (by test file).
NOT_VISIBLE = {
    "test_control_plane.py": "managed control planes (EKS, GKE, AKS) hide the components' flags",
    "test_audit_logging.py": "managed control planes hide the audit flags and policy",
    "test_etcd_encryption.py": "etcd out of reach (no --etcd-endpoint), as on managed control planes",
    "test_kubelet.py": "a kubelet the suite cannot reach on its port, or whose /configz its identity may not read "
                       "(it needs get on nodes/configz); 4.2.7 also needs /flagz (Kubernetes 1.36 on)",
    "test_node_files.py": "every cluster but kubeproof's embedded one and kind nodes: the Kubernetes API does "
                          "not expose a node's filesystem",
    "test_kube_proxy.py": "clusters without kube-proxy's configuration in kube-system (kube-proxy run from node "
                          "flags, or replaced by the CNI)",
}

# Why a control is not proved automatically, in our own words. Keys are ids or group prefixes
# ("1.1" covers 1.1.1-1.1.21); the most specific key wins.
REASONS = {
    "1.2.20": "no objective threshold: the right request timeout is the operator's choice",
    "3.1": "which credentials people use is a policy question; the API does not show how users authenticate",
}
MANUAL = "manual in the benchmark: it needs a person's judgement of intent, which no setting shows"
NOT_YET = "not automated by kubeproof yet"


@dataclass(frozen=True)
class Case:
    """One test function, or one pytest.param of it, and the CIS ids it carries."""

    test: str  # tests_cluster/<file>::<function>[<param id>]
    controls: tuple[str, ...]
    method: str


@dataclass
class Catalogue:
    controls: list[dict]
    cases: list[Case] = field(default_factory=list)

    def proving(self, control_id: str) -> list[Case]:
        return [c for c in self.cases if control_id in c.controls]


def id_key(control_id: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in control_id.split("."))


def load_controls(path: Path | None = None) -> list[dict]:
    path = Path(path or os.environ.get("KUBEPROOF_CIS_CONTROLS") or DEFAULT_CONTROLS)
    document = json.loads(path.read_text())
    controls = document["controls"] if isinstance(document, dict) else document
    return sorted(({"id": c["id"], "section": c.get("section", ""), "type": c.get("type", "")} for c in controls),
                  key=lambda c: id_key(c["id"]))


def _marks(obj) -> list:
    found = getattr(obj, "pytestmark", [])
    found = found if isinstance(found, list) else [found]
    return [getattr(m, "mark", m) for m in found]


def _cis(marks) -> tuple[str, ...]:
    return tuple(str(a) for m in marks if getattr(m, "name", None) == "cis" for a in m.args)


def _param_sets(mark) -> list:
    values = mark.args[1] if len(mark.args) > 1 else mark.kwargs.get("argvalues", [])
    try:
        return list(values)
    except TypeError:
        return []


def _source_with_helpers(function) -> str:
    """The test's source and that of the module's own functions it calls (one level deep)."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return ""
    sources = [source]
    names = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    for name in sorted(names):
        helper = function.__globals__.get(name)
        if inspect.isfunction(helper) and helper is not function and helper.__module__ == function.__module__:
            try:
                sources.append(inspect.getsource(helper))
            except (OSError, TypeError):
                continue
    return "\n".join(sources)


def method_of(function) -> str:
    source = _source_with_helpers(function)
    for needles, label in METHODS:
        if any(needle in source for needle in needles):
            return label
    parameters = inspect.signature(function).parameters
    if any(p in parameters for p in OBJECT_PARAMETERS) or "snapshot." in source:
        return READ_OBJECTS
    return "API request"


def cases_of_module(module, relative: str) -> list[Case]:
    module_ids = _cis(_marks(module))
    found = []
    for name, function in sorted(vars(module).items()):
        if not (name.startswith("test") and inspect.isfunction(function)) or function.__module__ != module.__name__:
            continue
        marks = _marks(function)
        base = module_ids + _cis(marks)
        method = method_of(function)
        per_param = []
        for mark in marks:
            if mark.name != "parametrize":
                continue
            for index, value in enumerate(_param_sets(mark)):
                param_ids = _cis(getattr(value, "marks", ()))
                if param_ids:
                    label = getattr(value, "id", None) or str(index)
                    per_param.append(Case(f"{relative}::{name}[{label}]", _unique(base + param_ids), method))
        if per_param:
            found.extend(per_param)
        elif base:
            found.append(Case(f"{relative}::{name}", _unique(base), method))
    return found


def _unique(ids) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


def import_suite_module(path: Path):
    name = f"_kubeproof_catalogue_.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def collect(suite: Path = SUITE) -> list[Case]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    cases = []
    for path in sorted(suite.glob("test_*.py")):
        cases.extend(cases_of_module(import_suite_module(path), f"{suite.name}/{path.name}"))
    return cases


def reason_for(control: dict) -> str:
    parts = control["id"].split(".")
    for length in range(len(parts), 0, -1):
        key = ".".join(parts[:length])
        if key in REASONS:
            return REASONS[key]
    return MANUAL if control["type"] == "manual" else NOT_YET


def render(catalogue: Catalogue) -> str:
    proved = [c for c in catalogue.controls if catalogue.proving(c["id"])]
    missing = [c for c in catalogue.controls if not catalogue.proving(c["id"])]
    known = {c["id"] for c in catalogue.controls}
    unknown = sorted({i for case in catalogue.cases for i in case.controls if i not in known}, key=id_key)
    lines = [
        "# CIS Kubernetes Benchmark 1.12: what kubeproof proves",
        "",
        "Generated by `python tools/controls_catalogue.py` from the `cis` markers in `tests_cluster/`; do not "
        "edit by hand (`tests_unit/test_controls_catalogue.py` fails when this file is out of date).",
        "",
        f"{len(proved)} of {len(catalogue.controls)} controls are proved automatically, {len(missing)} are not; of "
        f"the {sum(c['type'] == 'automated' for c in catalogue.controls)} the benchmark scores Automated, "
        f"{sum(c['type'] == 'automated' for c in proved)} are proved. "
        "\"Proved automatically\" means a test judges the control wherever the data it needs is visible; where "
        "it is not (a managed control plane hiding its flags, etcd out of reach) that test reports **not "
        "verified**, never a pass. Benchmark titles are not reproduced here: look each id up in the benchmark.",
        "",
        "## Proved automatically",
        "",
        "| CIS | section | how | tests | not verified where |",
        "|---|---|---|---|---|",
    ]
    for control in proved:
        cases = catalogue.proving(control["id"])
        methods = "; ".join(dict.fromkeys(c.method for c in cases))
        tests = "<br>".join(f"`{c.test}`" for c in cases)
        hidden = "; ".join(dict.fromkeys(NOT_VISIBLE[f] for c in cases
                                         if (f := c.test.split("::")[0].rsplit("/", 1)[-1]) in NOT_VISIBLE)) or "-"
        lines.append(f"| {control['id']} | {control['section']} | {methods} | {tests} | {hidden} |")
    lines += ["", "## Not proved automatically", "", "| CIS | section | benchmark type | why |", "|---|---|---|---|"]
    for control in missing:
        lines.append(f"| {control['id']} | {control['section']} | {control['type']} | {reason_for(control)} |")
    if unknown:
        lines += ["", "## Markers naming ids that are not in CIS 1.12", ""]
        for control_id in unknown:
            tests = ", ".join(f"`{c.test}`" for c in catalogue.cases if control_id in c.controls)
            lines.append(f"- {control_id}: {tests}")
    return "\n".join(lines) + "\n"


def generate(controls_path: Path | None = None, suite: Path = SUITE) -> str:
    return render(Catalogue(load_controls(controls_path), collect(suite)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/CONTROLS.md is out of date")
    parser.add_argument("--controls", type=Path, help="the CIS controls JSON (default: %(default)s)", default=None)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = generate(args.controls)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run python tools/controls_catalogue.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
