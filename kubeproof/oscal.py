"""The run as an OSCAL 1.1 assessment-results document (JSON), `assessment-results.json` in the run
folder, for tools that read OSCAL rather than kubeproof's own results.json.

One result for the run. Each test result is an observation (method TEST) whose subject is the object
it judged and whose evidence is its entry in results.json; each control a test carries (CIS, and the
NSA/CISA sections and Pod Security Standards checks where tests carry them) is a finding whose target
is satisfied only when at least one result proved it and every other result under it passed or was
exempt. Failed, not verified, waived, accepted and errored results leave it not satisfied, and the
target's remarks say which and why (fail closed: what nobody could prove is never satisfied).

OSCAL identifiers are tokens, which cannot start with a digit, so a control's target-id carries its
framework: `cis-1.2.27`, `nsa-authentication-and-authorization`, `pss-hostNamespaces`. No control
has objectives of its own here: the control as a whole is the objective a finding targets.

UUIDs are version 5, derived from the run (its folder's name, the cluster's fingerprint and the start
time) and from each item's place in it: the same records always give the same document, and two runs
never share one. There is no OSCAL assessment plan: import-ap points at a back-matter resource that
says what planned the run (the suite at its version and commit, the cluster and the baseline).

Only what results.json, SARIF and summary.md already say is used (finding texts and reasons), never
the evidence a test read. The document is written as it is built, one observation per line, so a run
with tens of thousands of results is never all in memory as JSON."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from kubeproof import cis
from kubeproof.artifacts import finding_text
from kubeproof.evidence import LABELS, Record, status_per_control

NAME = "assessment-results.json"
OSCAL_VERSION = "1.1.3"
EVIDENCE = "results.json"
PROJECT = uuid.uuid5(uuid.NAMESPACE_URL, "urn:kubeproof:oscal-assessment-results")
FRAMEWORK_TITLES = {
    "cis": "CIS Kubernetes Benchmark 1.12",
    "nsa": "NSA/CISA Kubernetes Hardening Guide",
    "pss": "Pod Security Standards",
}
FRAMEWORK_UNITS = {"cis": "control", "nsa": "section", "pss": "check"}
PROVEN, EXEMPT = "passed", "skipped"
REASONS_LISTED = 20  # distinct reasons per status in a finding's remarks; the observations hold all


# -- identifiers ----------------------------------------------------------------------------------
def target_id(framework: str, control: str) -> str:
    """The control as an OSCAL token: its framework first, the id kept where it is already a token's
    characters, other runs of characters (spaces, colons in NSA/CISA section names) as one dash."""
    text = control if framework != "nsa" else control.lower()
    return f"{framework}-" + re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


class _Ids:
    """Version-5 UUIDs within one run's namespace."""

    def __init__(self, run_id: str):
        self.space = uuid.uuid5(PROJECT, run_id)

    def __call__(self, *parts) -> str:
        return str(uuid.uuid5(self.space, "\x1f".join(str(p) for p in parts)))


# -- controls: each one's verdict from the results under it ----------------------------------------
def statuses_by_control(records: list[Record]) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """(framework, control id) -> [(record index, that record's status under the control)]. Under a
    CIS control a result fails only if its findings name the control (evidence.status_per_control);
    the same rule holds for the other frameworks' ids."""
    table: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for index, record in enumerate(records):
        for framework in FRAMEWORK_TITLES:
            ids = record.controls.get(framework) or []
            if not ids:
                continue
            statuses = status_per_control(replace(record, controls={"cis": list(ids)}))
            for control, status in statuses.items():
                table[(framework, control)].append((index, status))
    order = list(FRAMEWORK_TITLES)
    return dict(sorted(table.items(), key=lambda kv: (order.index(kv[0][0]), _sort_key(kv[0]))))


def _sort_key(key: tuple[str, str]):
    framework, control = key
    return (0, cis.id_key(control), "") if framework == "cis" and control in cis.ids() else (1, (), control)


def control_status(records: list[Record], entries: list[tuple[int, str]]) -> dict:
    """OSCAL's objective status for one control: satisfied only when some result proved it and the
    rest passed or were exempt. Otherwise not-satisfied, reason `fail` when a finding stands against
    it and `other` when it was not proven for any other cause (not verified, waived, accepted, an
    error, or every result exempt), with the reasons in the remarks."""
    by_status: dict[str, list[int]] = defaultdict(list)
    for index, status in entries:
        by_status[status].append(index)
    counts = ", ".join(f"{len(by_status[s])} {LABELS.get(s, s)}" for s in LABELS if by_status.get(s))
    if by_status.get(PROVEN) and set(by_status) <= {PROVEN, EXEMPT}:
        return {"state": "satisfied", "reason": "pass",
                "remarks": f"Every result under this control was proven ({counts})."
                           + _reasons("Exempt", records, by_status.get(EXEMPT, []))}
    if by_status.get("failed"):
        lead = "A finding stands against this control"
    elif set(by_status) <= {EXEMPT}:
        lead = "No result proved this control: every result under it was exempt"
    else:
        lead = "This control was not proven"
    remarks = [f"{lead} ({counts})."]
    for status, label in (("failed", "Failed"), ("error", "Errors (the test did not reach a verdict)"),
                          ("not_verified", "Not verified (could not be proven, so not satisfied)"),
                          ("waived", "Waived (a known risk the baseline accepts; the control is still not met)"),
                          ("accepted", "Accepted (a finding recorded in the baseline's accepted list; still not met)"),
                          ("skipped", "Exempt")):
        remarks.append(_reasons(label, records, by_status.get(status, [])))
    return {"state": "not-satisfied", "reason": "fail" if by_status.get("failed") else "other",
            "remarks": "".join(remarks)}


def _reasons(label: str, records: list[Record], indexes: list[int]) -> str:
    """` Label: text; text (and N more).` over the distinct finding texts and reasons of these results
    (a waived result's waiver, an expired waiver's date, why one was not verified or exempt)."""
    if not indexes:
        return ""
    seen: dict[str, None] = {}
    for index in indexes:
        record = records[index]
        for text in [*(finding_text(f, f.get("object") or {}) for f in record.findings), record.reason]:
            if not text:
                continue
            seen.setdefault(_one_line(text), None)
    listed = list(seen)[:REASONS_LISTED]
    more = f" (and {len(seen) - len(listed)} more; see the related observations)" if len(seen) > len(listed) else ""
    return f" {label}: {'; '.join(listed) or 'no reason was given'}{more}."


def _one_line(text) -> str:
    return " ".join(str(text).split())


# -- the document ---------------------------------------------------------------------------------
class Rows:
    """A JSON array written one item per line as the items are made (see write)."""

    def __init__(self, items):
        self.items = items


def _object_name(obj: dict | None) -> str:
    return "/".join(str(p) for p in ((obj or {}).get("kind"), (obj or {}).get("namespace"), (obj or {}).get("name")) if p)


def _subject_key(obj: dict | None) -> tuple:
    obj = obj or {}
    return tuple(str(obj.get(k) or "") for k in ("kind", "namespace", "name", "uid"))


def assessment_results(records: list[Record], described: dict, run_name: str) -> dict:
    """The document for one run. `described` is the run's environment as results.json has it
    (reporting.environment, with "finished (UTC)"); `run_name` the run folder's name. Its observations
    are made as they are written: write (or dumps) it once."""
    ids = _Ids(f"{run_name}\x1f{described.get('cluster fingerprint', '')}\x1f{described.get('started (UTC)', '')}")
    started, finished = described.get("started (UTC)"), described.get("finished (UTC)") or described.get("started (UTC)")
    version, commit = described.get("kubeproof version", "unknown"), described.get("kubeproof commit", "unknown")
    cluster = described.get("cluster", "unknown")
    tool, plan = ids("tool"), ids("assessment plan")
    origins = [{"actors": [{"type": "tool", "actor-uuid": tool}]}]

    cluster_item = {"uuid": ids("subject", "cluster"),
                    "description": f"The audited Kubernetes cluster {cluster} (API server {described.get('API server', 'unknown')}, "
                                   f"{described.get('cluster fingerprint', 'fingerprint unknown')}): the subject of results that "
                                   "judge the cluster as a whole."}
    subjects: dict[tuple, dict] = {}
    for record in records:
        if record.object:
            key = _subject_key(record.object)
            if key not in subjects:
                uid = f", uid {record.object['uid']}" if record.object.get("uid") else ""
                subjects[key] = {"uuid": ids("subject", *key),
                                 "description": f"Kubernetes {_object_name(record.object) or 'object'}{uid}, in the cluster {cluster}."}

    def observation(index: int, record: Record) -> dict:
        subject = subjects[_subject_key(record.object)] if record.object else cluster_item
        name = _object_name(record.object) or "the cluster"
        controls = "; ".join(f"{FRAMEWORK_TITLES[f]} {', '.join(record.controls[f])}" for f in FRAMEWORK_TITLES
                             if record.controls.get(f))
        label = LABELS.get(record.status, record.status)
        lines = [finding_text(f, f.get("object") or {}) for f in record.findings]
        lines += [f"{label}: {record.reason}"] if record.reason else []
        description = "\n".join(lines) or f"{label}: {record.test} found nothing against {name}."
        item = {
            "uuid": ids("observation", index, record.nodeid),
            "title": _one_line(f"{record.test} on {name}: {label}"),
            "description": description,
            "methods": ["TEST"],
            "types": ["finding", "control-objective"] if record.status in ("failed", "waived", "accepted") else ["control-objective"],
            "origins": origins,
            "subjects": [{"subject-uuid": subject["uuid"], "type": "inventory-item", "title": _one_line(name)}],
            "relevant-evidence": [{
                "href": f"{EVIDENCE}#/results/{index}",
                "description": f"The result of {record.nodeid} in {EVIDENCE} (JSON Pointer /results/{index}), with what "
                               "the test read: the API's answers to its probes, dry-runs and access reviews.",
            }],
            "collected": finished,
            "remarks": " ".join(p for p in (f"kubeproof status: {label}.", record.reason and f"Reason: {_one_line(record.reason)}.",
                                            controls and f"Controls: {controls}.") if p),
        }
        return item

    table = statuses_by_control(records)
    findings = []
    for (framework, control), entries in table.items():
        status = control_status(records, entries)
        title = f"{FRAMEWORK_TITLES[framework]} {FRAMEWORK_UNITS[framework]} {control}"
        findings.append({
            "uuid": ids("finding", framework, control),
            "title": f"{title}: {status['state']}",
            "description": f"kubeproof judged {len(entries)} result(s) under {title}; the target's status says "
                           "whether they prove it and, when not, why.",
            "origins": origins,
            "target": {"type": "objective-id", "target-id": target_id(framework, control), "title": title,
                       "status": status},
            "related-observations": [{"observation-uuid": ids("observation", i, records[i].nodeid)} for i, _ in entries],
        })

    selections = []
    for framework, title in FRAMEWORK_TITLES.items():
        covered = [target_id(f, c) for f, c in table if f == framework]
        if covered:
            selections.append({"description": f"The {title} controls this run's tests carry.",
                               "include-controls": [{"control-id": c} for c in covered]})
    if not selections:  # OSCAL wants one selection; this one says honestly that it holds none
        selections.append({"description": "This run judged no control."})

    result = {
        "uuid": ids("result"),
        "title": f"kubeproof audit of {cluster}",
        "description": f"One run of the kubeproof suite {version} against the cluster {cluster}: {len(records)} result(s), "
                       f"{len(findings)} control(s). Run folder {run_name}.",
        "start": started,
        "end": finished,
        "local-definitions": {
            "inventory-items": [cluster_item, *subjects.values()],
            "assessment-assets": {
                "components": [{
                    "uuid": tool, "type": "software", "title": f"kubeproof {version}",
                    "description": f"kubeproof {version} (commit {commit}): a pytest suite that judges a Kubernetes "
                                   "cluster against the practices and controls its tests carry.",
                    "status": {"state": "operational"},
                }],
                "assessment-platforms": [{"uuid": ids("platform"), "title": "pytest with the kubeproof plugin",
                                          "uses-components": [{"component-uuid": tool}]}],
            },
        },
        "reviewed-controls": {"control-selections": selections},
    }
    if records:
        result["observations"] = Rows(observation(i, r) for i, r in enumerate(records))
    if findings:
        result["findings"] = Rows(findings)

    return {"assessment-results": {
        "uuid": ids("assessment-results"),
        "metadata": {
            "title": f"kubeproof assessment results: {cluster}",
            "last-modified": finished,
            "version": run_name,
            "oscal-version": OSCAL_VERSION,
            "remarks": "Written by kubeproof at the end of the run; version is the run folder's name. Each "
                       f"observation's evidence is its entry in {EVIDENCE} beside this file; SHA256SUMS covers both.",
        },
        "import-ap": {
            "href": f"#{plan}",
            "remarks": "No OSCAL assessment plan exists for this run; the back-matter resource this points at says what "
                       "planned it.",
        },
        "results": [result],
        "back-matter": {"resources": [{
            "uuid": plan,
            "title": f"Assessment plan: the kubeproof suite {version}",
            "description": (
                f"This run had no separate OSCAL assessment plan. What it assessed was decided by the kubeproof suite "
                f"{version} (commit {commit}): the tests under tests_cluster/ and the control ids each carries "
                f"(docs/CONTROLS.md lists which test proves each CIS control), run against the cluster {cluster} "
                f"with the baseline {described.get('baseline', 'unknown')} (SHA-256 {described.get('baseline sha256', 'unknown')}), "
                "which sets the expectations and the waivers. The tests chosen for this run are the observations."),
        }]},
    }}


# -- writing --------------------------------------------------------------------------------------
def write(out, value, depth: int = 0) -> None:
    """JSON to a text stream: Rows one compact item per line as they are made, everything else as
    json.dumps indents it."""
    pad = "\n" + " " * (depth + 1)
    if isinstance(value, Rows):
        out.write("[")
        for number, item in enumerate(value.items):
            out.write(("," if number else "") + pad + json.dumps(item, default=str))
        out.write("\n" + " " * depth + "]")
    elif isinstance(value, (dict, list)) and _holds_rows(value):
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        out.write("{" if isinstance(value, dict) else "[")
        for number, (key, item) in enumerate(pairs):
            out.write(("," if number else "") + pad + (json.dumps(key) + ": " if isinstance(value, dict) else ""))
            write(out, item, depth + 1)
        out.write("\n" + " " * depth + ("}" if isinstance(value, dict) else "]"))
    else:
        out.write(json.dumps(value, indent=1, default=str).replace("\n", "\n" + " " * depth))


def _holds_rows(value) -> bool:
    if isinstance(value, Rows):
        return True
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(_holds_rows(child) for child in children)


def dumps(document: dict) -> str:
    out = io.StringIO()
    write(out, document)
    return out.getvalue() + "\n"


def write_assessment_results(run, records: list[Record], described: dict) -> Path:
    """assessment-results.json into the run folder before it is finished, so SHA256SUMS covers it."""
    path = run.partial / NAME
    with path.open("w", encoding="utf-8") as out:
        write(out, assessment_results(records, described, run.stem))
        out.write("\n")
    return path
