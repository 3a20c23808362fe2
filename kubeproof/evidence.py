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


def summary_html(records: list[Record], environment: dict[str, Any] | None = None, group_passed: bool = False) -> str:
    """The counts by practice and by control (and, in a large run, the grouped passed results): what
    the page holds after its first screen. With `environment`, the cluster's identity block opens it,
    for a summary shown on its own; the report's first page carries that block instead."""
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
    return (
        (identity_html(environment) if environment is not None else "")
        + '<h2>kubeproof summary by practice</h2>'
        f'<table class="kubeproof-summary"><tr><th>practice</th>{header}</tr>{"".join(rows)}</table>'
        '<p>"not verified" means the data a check needs could not be read or judged; it is never counted as a pass. '
        'In pytest\'s own counts below, not verified results are skipped (failed with --strict) and waived or '
        'accepted findings are expected failures.</p>'
        f'<details><summary>Summary by control</summary><table class="kubeproof-summary"><tr><th>control</th>{header}</tr>'
        f'{"".join(control_rows)}</table></details>'
        + (passed_groups_html(records) if group_passed else "")
    )


# -- the first page: verdict, cluster, coverage, failures ------------------------------------------
# pytest-html's script fills the element with id "environment" from the run's metadata and makes the
# one with id "environment-header" fold it; the identity block carries both ids, so it is that table
# (the report holds no other), and kubeproof sets the metadata to the same rows.
IDENTITY_HEADER_ID = "environment-header"
IDENTITY_TABLE_ID = "environment"


def identity_html(environment: dict[str, Any]) -> str:
    """The audited cluster in one compact table: the rows pytest-html's script would draw from the
    same values (key, then the value in a div), so the block reads the same with or without it."""
    rows = "".join(f"<tr><td>{_cell(k)}</td><td><div>{_cell(v)}</div></td></tr>" for k, v in environment.items())
    return (f'<div id="{IDENTITY_HEADER_ID}" class="kubeproof-identity-header"><h2>Audited cluster</h2></div>'
            f'<table id="{IDENTITY_TABLE_ID}" class="kubeproof-identity">{rows}</table>')


# A CIS control's state in the picture. Several results can carry one control: any failure (or
# error) fails it; a waived or accepted finding is a known, accepted violation; anything short of a
# proof (a result not verified, or only exempt ones) leaves it not verified. Proved means every
# result that applied passed. A control no result carried is not covered.
COVERAGE_STATES = ("proved", "failed", "waived", "not_verified", "not_covered")
COVERAGE_LABELS = {"proved": "proved", "failed": "failed", "waived": "waived or accepted",
                   "not_verified": "not verified", "not_covered": "not covered"}
COVERAGE_COLOURS = {"proved": "#2e7d32", "failed": "#c62828", "waived": "#6a4c93", "not_verified": "#e08e00",
                    "not_covered": "#d4d4d4"}
# The benchmark's own grouping, named in our words so a bar says what it covers.
CIS_GROUPS = {
    "1.1": "control-plane node files", "1.2": "API server", "1.3": "controller manager", "1.4": "scheduler",
    "2": "etcd", "3.1": "authentication and authorization", "3.2": "logging",
    "4.1": "worker node files", "4.2": "kubelet", "4.3": "kube-proxy",
    "5.1": "RBAC and service accounts", "5.2": "pod security", "5.3": "network policies and CNI",
    "5.4": "secrets", "5.5": "admission control", "5.6": "general policies",
}


def control_state(counts: Counter) -> str:
    if counts.get("failed") or counts.get("error"):
        return "failed"
    if counts.get("waived") or counts.get("accepted"):
        return "waived"
    if counts.get("not_verified") or not counts.get("passed"):
        return "not_verified"
    return "proved"


@dataclass
class SectionCoverage:
    section: str  # the benchmark's group id, "1.2"
    label: str
    automated: int  # how many of its controls the benchmark scores Automated
    controls: dict[str, list[str]]  # state -> control ids, in benchmark order

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.controls.values())

    def count(self, state: str) -> int:
        return len(self.controls.get(state, ()))


def cis_coverage(records: list[Record], catalogue: tuple[dict, ...] | None = None) -> list[SectionCoverage]:
    """Each CIS 1.12 section's controls by state, from the records' per-control statuses. Every
    control of the benchmark appears once: one no result carried is not covered."""
    if catalogue is None:
        from kubeproof import cis
        catalogue = cis.controls()
    by_control = counts_by_control(records)
    sections: dict[str, SectionCoverage] = {}
    for control in catalogue:
        group = control["group"]
        section = sections.setdefault(group, SectionCoverage(group, CIS_GROUPS.get(group, ""), 0, {s: [] for s in COVERAGE_STATES}))
        section.automated += control.get("type") == "automated"
        state = control_state(by_control[control["id"]]) if control["id"] in by_control else "not_covered"
        section.controls[state].append(control["id"])
    return list(sections.values())


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {COVERAGE_LABELS[s]}" for s, n in counts.items() if n) or "no controls"


def coverage_svg(sections: list[SectionCoverage], title: str, key: str = "cis") -> str:
    """Stacked bars, one per section, one segment per state, each as long as its number of controls,
    with the counts written beside them, a legend, and titles a screen reader (or a hover) reads.
    Plain SVG in the page: no script, nothing fetched."""
    bar_x, bar_width, row, top = 300, 400, 26, 44
    widest = max((s.total for s in sections), default=1) or 1
    unit = bar_width / widest
    totals = {state: sum(s.count(state) for s in sections) for state in COVERAGE_STATES}
    summary = f"{title}: {sum(totals.values())} controls: {_counts_text(totals)}"
    height = top + row * len(sections) + 8
    pattern = f"kp-{_attr_id(key)}-unproven"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="kubeproof-coverage" data-framework="{_cell(key)}" role="img" '
        f'aria-labelledby="{pattern}-title" width="{bar_x + bar_width + 300}" height="{height}" '
        f'viewBox="0 0 {bar_x + bar_width + 300} {height}" font-family="sans-serif" font-size="13">',
        f'<title id="{pattern}-title">{_cell(summary)}</title>',
        # Not verified is hatched as well as coloured: it must never read as proved, in any palette.
        f'<defs><pattern id="{pattern}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="{COVERAGE_COLOURS["not_verified"]}"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#ffffff" stroke-width="2"/></pattern></defs>',
    ]
    x = 0
    for state in COVERAGE_STATES:  # the legend
        fill = f"url(#{pattern})" if state == "not_verified" else COVERAGE_COLOURS[state]
        parts.append(f'<g class="kp-legend" data-state="{state}"><rect x="{x}" y="6" width="14" height="14" fill="{fill}" '
                     f'stroke="#555" stroke-width="0.5"/><text x="{x + 19}" y="18">{COVERAGE_LABELS[state]} '
                     f'({totals[state]})</text></g>')
        x += 19 + 8 * len(f"{COVERAGE_LABELS[state]} ({totals[state]})") + 18
    for index, section in enumerate(sections):
        y = top + index * row
        counts = {state: section.count(state) for state in COVERAGE_STATES}
        name = f"{section.section} {section.label}".strip()
        described = (f"CIS {name}: {section.total} controls ({section.automated} scored automated): "
                     f"{_counts_text(counts)}")
        parts.append(f'<g class="kp-section" data-section="{_cell(section.section)}" data-total="{section.total}" '
                     + " ".join(f'data-{state.replace("_", "-")}="{n}"' for state, n in counts.items())
                     + f'><title>{_cell(described)}</title>'
                     f'<text x="{bar_x - 8}" y="{y + 15}" text-anchor="end">{_cell(name)}</text>')
        x = bar_x
        for state, n in counts.items():
            if not n:
                continue
            width = n * unit
            fill = f"url(#{pattern})" if state == "not_verified" else COVERAGE_COLOURS[state]
            ids = ", ".join(section.controls[state])
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="20" fill="{fill}" stroke="#ffffff" '
                         f'stroke-width="1" data-state="{state}"><title>{_cell(f"{n} {COVERAGE_LABELS[state]}: {ids}")}</title></rect>')
            if width >= 18:
                ink = "#222222" if state in ("not_covered", "not_verified") else "#ffffff"
                parts.append(f'<text x="{x + width / 2:.1f}" y="{y + 15}" text-anchor="middle" fill="{ink}" '
                             f'font-weight="bold" aria-hidden="true">{n}</text>')
            x += width
        parts.append(f'<text class="kp-counts" x="{bar_x + bar_width + 10}" y="{y + 15}" fill="#333333">'
                     f'{_cell(_counts_text(counts))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _attr_id(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def coverage_html(records: list[Record]) -> str:
    sections = cis_coverage(records)
    proved = sum(s.count("proved") for s in sections)
    total = sum(s.total for s in sections)
    return (
        '<section class="kubeproof-coverage-section"><h2>Coverage: CIS Kubernetes Benchmark 1.12</h2>'
        f'<p>{proved} of {total} controls proved by this run. A control is proved when every result that '
        'judged it passed; one failure fails it; a waived or accepted finding marks it waived; a result that '
        'could not be proven (or only exempt ones) leaves it not verified, never proved; a control no test of '
        'this run judged is not covered (the benchmark\'s Manual controls among them).</p>'
        + coverage_svg(sections, "CIS Kubernetes Benchmark 1.12 coverage")
        + "</section>"
    )


FAILURES_LISTED = 50


def failures_html(records: list[Record], sources: dict | None = None, limit: int = FAILURES_LISTED) -> str:
    """Each failure (and error) in a line: where it came from (the manifest's file and line, else the
    object), what was found, the test. The same texts summary.md lists; the table below has the rest."""
    from kubeproof.artifacts import _entries, finding_text, source_of

    failing = [r for r in records if r.status in ("failed", "error")]
    if not failing:
        return '<section class="kubeproof-failures"><h2>Failures: 0</h2><p>No result failed.</p></section>'
    items, shown = [], 0
    for record in failing:
        for finding, obj in _entries(record):
            shown += 1
            if shown > limit:
                continue
            source = source_of(obj, sources or {})
            where = f"<code>{_cell(source[0])}:{_cell(source[1])}</code> " if source else ""
            name = "/".join(str(p) for p in (obj.get("kind"), obj.get("namespace"), obj.get("name")) if p)
            text = finding_text(finding, obj) if finding else f"{name or '(cluster)'}: {record.reason or record.status}"
            items.append(f"<li>{where}{_cell(text)} <span class=\"kubeproof-test\">(test <code>{_cell(record.test)}</code>"
                         f"{', error' if record.status == 'error' else ''})</span></li>")
    more = f"<li>... and {shown - limit} more: in the results table below</li>" if shown > limit else ""
    return (f'<section class="kubeproof-failures"><h2>Failures: {len(failing)}</h2>'
            f'<ul>{"".join(items)}{more}</ul></section>')


VERDICT_WORDS = {
    "pass": "every result that applied was proven",
    "fail": "at least one result failed (the run exits non-zero)",
    "not verified": "nothing failed, but not everything could be proven, or nothing was",
}
VERDICT_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "not verified": "#b06a00"}


def verdict_html(verdict: str, records: list[Record], exitstatus: int, strict: bool) -> str:
    counts = outcome_counts(records, strict=strict)
    unproven = sum(r.status == "not_verified" for r in records)
    return (
        f'<section class="kubeproof-verdict" style="border-left:8px solid {VERDICT_COLOURS.get(verdict, "#555")};'
        'padding:4px 12px;margin:8px 0">'
        f'<h2>Verdict: <span id="kubeproof-verdict" data-verdict="{_cell(verdict)}" '
        f'style="color:{VERDICT_COLOURS.get(verdict, "#555")}">{_cell(verdict.upper())}</span></h2>'
        f'<p>{_cell(VERDICT_WORDS.get(verdict, ""))}. Exit status {int(exitstatus)}. {counts["tests"]} results: '
        f'{counts["passed"]} passed, {counts["failed"]} failed, {counts["error"]} errors, {unproven} not verified, '
        f'{counts["skipped"] - (0 if strict else unproven)} exempt, {counts["xfailed"]} waived or accepted'
        f'{"; --strict fails not verified results" if strict else ""}.</p></section>'
    )


def first_page_html(records: list[Record], environment: dict[str, Any] | None, *, verdict: str, exitstatus: int,
                    strict: bool, sources: dict | None = None, since: str = "") -> str:
    """What the report opens with: the verdict, the audited cluster (unless `environment` is None:
    then pytest-html's own table holds it), what changed since an earlier run (`since`, the section
    diff.since_html writes for --compare-with), the CIS coverage picture, and the failures."""
    return (
        '<div class="kubeproof-first-page">'
        + verdict_html(verdict, records, exitstatus, strict)
        + (identity_html(environment) if environment is not None else "")
        + since
        + coverage_html(records)
        + failures_html(records, sources)
        + "</div>"
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
