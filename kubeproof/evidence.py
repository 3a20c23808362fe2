"""Evidence: one record per test, and the artifacts written from them at the end of the run.

Records hold control ids, the object, findings (field path, observed, expected, remediation) and
facts (the API's answers to probes and dry-runs). Nothing here ever holds a secret's value: checks
report names and provider headers only."""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from kubeproof.practices import FRAMEWORKS, PRACTICES

STATUSES = ("passed", "failed", "waived", "accepted", "not_verified", "skipped", "error")
LABELS = {"passed": "passed", "failed": "failed", "waived": "waived", "accepted": "accepted",
          "not_verified": "not verified", "skipped": "skipped", "error": "error"}
# How each status shows in pytest's own outcomes (terminal, pytest-html, JUnit): the same counts everywhere.
PYTEST_OUTCOME = {"passed": "passed", "failed": "failed", "waived": "xfailed", "accepted": "xfailed",
                  "not_verified": "skipped", "skipped": "skipped", "error": "error"}


@dataclass(slots=True)  # one per result, tens of thousands in a large audit
class Record:
    nodeid: str
    test: str
    practice: str | None
    controls: dict[str, list[str]]
    object: dict | None
    status: str = "passed"
    reason: str = ""
    findings: list[dict] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    reads: set[str] | frozenset[str] = field(default_factory=set)  # kinds and live questions the test depended on
    seconds: float = 0.0  # setup, call and teardown together (JUnit's time)

    def to_dict(self) -> dict:
        return {
            "nodeid": self.nodeid, "test": self.test, "practice": self.practice, "controls": self.controls,
            "object": self.object, "status": self.status, "reason": self.reason,
            "findings": self.findings, "evidence": self.facts, "reads": sorted(self.reads),
        }


def counts_by_practice(records: list[Record]) -> dict[str, Counter]:
    table: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        table[record.practice or "other"][record.status] += 1
    return dict(sorted(table.items()))


def status_per_control(record: Record) -> dict[str, str]:
    """A result's status under each CIS control it carries. A test judging one object under several
    controls fails only the controls its findings name; under the others the object was judged and
    found compliant. Findings that name none of the test's controls fail them all."""
    controls = record.controls.get("cis", []) or ["(no CIS id)"]
    named = {c for finding in record.findings for c in finding.get("controls", ())}
    if record.status in ("failed", "waived", "accepted") and named & set(controls):
        return {c: record.status if c in named else "passed" for c in controls}
    return {c: record.status for c in controls}


def counts_by_control(records: list[Record]) -> dict[str, Counter]:
    table: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        for control, status in status_per_control(record).items():
            table[control][status] += 1
    return dict(sorted(table.items(), key=lambda kv: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in kv[0].split(".")]))


def outcome_counts(records: list[Record], strict: bool = False) -> dict[str, int]:
    outcome = dict(PYTEST_OUTCOME, not_verified="failed") if strict else PYTEST_OUTCOME
    counts = Counter(outcome[r.status] for r in records)
    return {"tests": len(records), **{k: counts.get(k, 0) for k in ("passed", "failed", "error", "skipped", "xfailed")}}


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, default=str)
    return html.escape(str(value), quote=True)


# Results that need no reading in a large run: proven, or exempt for a stated reason. Not-verified
# results are never among them: each is something nobody could prove.
GROUPED = ("passed", "skipped")


def is_grouped(record: Record) -> bool:
    return record.status in GROUPED


def passed_groups_html(records: list[Record]) -> str:
    """Passed and exempt results grouped per test, for large runs whose table lists only what needs
    reading."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        if is_grouped(record):
            groups[(record.test, record.status)].append(record)
    rows = []
    for (test, status), found in sorted(groups.items()):
        if status == "passed":
            names = ", ".join(_object_name(r.object) for r in found if r.object)
        else:
            names = "; ".join(f"{_object_name(r.object) if r.object else '(no object)'}: {r.reason}" for r in found)
        rows.append(f"<tr><td>{_cell(test)}</td><td>{LABELS[status]}</td><td>{len(found)}</td>"
                    f"<td><details><summary>objects</summary>{_cell(names) or '(no object)'}</details></td></tr>")
    return (
        f"<h2>Passed and exempt results, grouped ({sum(len(g) for g in groups.values())})</h2>"
        "<p>This run is large, so the results table below lists only what needs reading (failed, waived, "
        "accepted, not verified, errors); every result, passed and exempt ones included, is in results.json "
        "and junit.xml, and the counts above are exact.</p>"
        "<table class=\"kubeproof-summary\"><tr><th>test</th><th>result</th><th>count</th><th>objects</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _object_name(obj: dict) -> str:
    return "/".join(str(p) for p in (obj.get("kind"), obj.get("namespace"), obj.get("name")) if p)


def summary_html(records: list[Record], environment: dict[str, Any], group_passed: bool = False) -> str:
    rows = []
    for practice, counts in counts_by_practice(records).items():
        rows.append(
            "<tr><td>" + _cell(PRACTICES.get(practice, practice)) + "</td>"
            + "".join(f"<td>{counts.get(status, 0)}</td>" for status in STATUSES) + "</tr>"
        )
    header = "".join(f"<th>{LABELS[s]}</th>" for s in STATUSES)
    control_rows = []
    for control, counts in counts_by_control(records).items():
        control_rows.append(
            f"<tr><td>CIS {_cell(control)}</td>" + "".join(f"<td>{counts.get(status, 0)}</td>" for status in STATUSES) + "</tr>"
        )
    env_rows = "".join(f"<tr><th>{_cell(k)}</th><td>{_cell(v)}</td></tr>" for k, v in environment.items())
    return (
        '<h2>kubeproof summary by practice</h2>'
        f'<table class="kubeproof-summary"><tr><th>practice</th>{header}</tr>{"".join(rows)}</table>'
        '<p>"not verified" means the data a check needs could not be read or judged; it is never counted as a pass. '
        'In pytest\'s own counts below, not verified results are skipped (failed with --strict) and waived or '
        'accepted findings are expected failures.</p>'
        f'<details><summary>Summary by control</summary><table class="kubeproof-summary"><tr><th>control</th>{header}</tr>'
        f'{"".join(control_rows)}</table></details>'
        f'<h2>Audited cluster</h2><table class="kubeproof-environment">{env_rows}</table>'
        + (passed_groups_html(records) if group_passed else "")
    )


def row_html(record: Record) -> str:
    parts = ['<div class="kubeproof-evidence">']
    controls = "; ".join(f"{FRAMEWORKS.get(k, k).split(' ')[0]} {', '.join(v)}" for k, v in record.controls.items() if v)
    parts.append(f"<p><b>Controls:</b> {_cell(controls)}</p>")
    if record.object:
        parts.append(f"<p><b>Object:</b> {_cell(record.object)}</p>")
    if record.reason:
        parts.append(f"<p><b>{_cell(LABELS[record.status].capitalize())}:</b> {_cell(record.reason)}</p>")
    if record.findings:
        parts.append("<table><tr><th>object</th><th>field path</th><th>observed</th><th>expected</th><th>remediation</th></tr>")
        for finding in record.findings:
            obj = finding["object"]
            name = "/".join(p for p in (obj.get("kind"), obj.get("namespace"), obj.get("name")) if p)
            parts.append(
                f"<tr><td>{_cell(name)}</td><td>{_cell(finding['path'])}</td><td>{_cell(finding['observed'])}</td>"
                f"<td>{_cell(finding['expected'])}</td><td>{_cell(finding['remediation'])}</td></tr>"
            )
        parts.append("</table>")
    if record.facts:
        parts.append("<p><b>Evidence:</b></p><table>")
        parts.extend(f"<tr><th>{_cell(k)}</th><td>{_cell(v)}</td></tr>" for k, v in record.facts.items())
        parts.append("</table>")
    parts.append("</div>")
    return "".join(parts)
