"""What changed between two audits: `python -m kubeproof diff RUN_A RUN_B`, and `--compare-with RUN`
for a run of the suite (the report's first page and summary.md).

Two run folders' results.json are compared as an auditor asks it:

- findings new in B and fixed since A, matched by a key that survives a re-run: the test's name (no
  parameter id), the object's kind, namespace and name, and the finding's field path; never by
  position. A finding of A that B did not judge (its result not verified, errored or exempt, or the
  test not run) is not fixed: it is listed as not confirmed fixed.
- each CIS, NSA/CISA and PSS control whose state changed (proved, failed, waived, not verified, not
  covered), by the rule the first page's coverage picture uses (evidence.status_per_control and
  evidence.control_state);
- each practice whose state or counts changed.

Fail closed: a change is for the worse when a new finding appears, or a control or practice moves
down the order proved > waived > not verified = not covered > failed. A control that was proved and
is now not verified (or not judged at all) is worse, never "unchanged". The exit status of the
command is 0 when nothing got worse, 1 when something did, 2 on bad input.

Only names, field paths, observed and expected values (what checks report, never a secret's value)
and reasons are shown; the results' evidence is not read."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import kubeproof
from kubeproof import cis
from kubeproof.artifacts import SUMS, _code, finding_text, listed_digests
from kubeproof.artifacts import _cell as md_cell
from kubeproof.evidence import COVERAGE_LABELS, STATUSES, Record, control_state, counts_by_practice
from kubeproof.practices import FRAMEWORKS, PRACTICES

EXIT_SAME, EXIT_WORSE, EXIT_BAD_INPUT = 0, 1, 2
FORMATS = ("text", "markdown", "json")
RESULTS = "results.json"
# Worse is further down; not verified and not covered are both "not proven" and rank alike.
RANK = {"proved": 0, "waived": 1, "not_verified": 2, "not_covered": 2, "failed": 3}
JUDGED = frozenset({"passed", "failed", "waived", "accepted"})  # a result that reached a verdict on its object
WITH_FINDINGS = ("failed", "waived", "accepted")
FRAMEWORK_SHORT = {"cis": "CIS", "nsa": "NSA/CISA", "pss": "PSS"}
HTML_LISTED = 20  # entries per list on the report's first page; the command lists them all


class BadRun(Exception):
    """A path that is not a kubeproof run folder this version can read: exit 2, naming the argument."""


@dataclass
class Run:
    name: str  # the run folder's name
    environment: dict
    records: list[Record]


# -- reading a run folder --------------------------------------------------------------------------
def load_run(path: str | Path, argument: str) -> Run:
    """The results of a sealed run folder, after checking results.json against its SHA256SUMS and
    that this version can read it. BadRun names `argument` (RUN_A, --compare-with) and the path."""
    folder = Path(path)
    where = f"{argument} {path}"
    if not folder.exists():
        raise BadRun(f"{where}: no such folder")
    if not folder.is_dir():
        hint = " (give the run folder that holds it)" if folder.name == RESULTS else ""
        raise BadRun(f"{where}: not a folder{hint}")
    results = folder / RESULTS
    if not results.is_file():
        raise BadRun(f"{where}: no {RESULTS}, so not a kubeproof run folder (reports/<cluster>-<timestamp>/)")
    sums = folder / SUMS
    if not sums.is_file():
        raise BadRun(f"{where}: no {SUMS}, so not a completed run folder (an interrupted run is never compared)")
    try:
        listed = listed_digests(folder)
        data = results.read_bytes()
    except OSError as error:
        raise BadRun(f"{where}: cannot read it: {error.strerror or error}") from None
    except ValueError:
        raise BadRun(f"{where}: its {SUMS} is not text, so not a run folder kubeproof sealed") from None
    if listed.get(RESULTS) != hashlib.sha256(data).hexdigest():
        raise BadRun(f"{where}: {RESULTS} does not match its {SUMS} (changed since the run wrote it)")
    try:
        document = json.loads(data)
    except ValueError as error:
        raise BadRun(f"{where}: {RESULTS} is not JSON ({error})") from None
    environment, records = _read(document, f"{where}/{RESULTS}")
    return Run(folder.resolve().name, environment, records)


def _read(document, where: str) -> tuple[dict, list[Record]]:
    """The environment and records of a results.json, or BadRun saying what does not fit."""
    ours = kubeproof.__version__.split(".")[0]
    if not isinstance(document, dict) or not isinstance(document.get("environment"), dict):
        raise BadRun(f"{where}: not a kubeproof results.json (no environment)")
    version = document["environment"].get("kubeproof version")
    if not isinstance(version, str) or version.split(".")[0] != ours:
        raise BadRun(f"{where}: written by kubeproof {version or '(no version)'}; this kubeproof "
                     f"{kubeproof.__version__} reads results of version {ours}.x")
    rows = document.get("results")
    if not isinstance(rows, list):
        raise BadRun(f"{where}: no results list")
    records = []
    for number, row in enumerate(rows, 1):
        problem = _row_problem(row)
        if problem:
            raise BadRun(f"{where}: result {number} {problem}; not a results.json of kubeproof {version}")
        records.append(Record(nodeid=row.get("nodeid", ""), test=row.get("test") or _test_name(row["nodeid"]),
                              practice=row.get("practice"), controls=row["controls"], object=row.get("object"),
                              status=row["status"], reason=row.get("reason") or "", findings=row["findings"]))
    return document["environment"], records


def _row_problem(row) -> str:
    if not isinstance(row, dict):
        return "is not an object"
    if not (isinstance(row.get("test"), str) or isinstance(row.get("nodeid"), str)):
        return "has no test name"
    if row.get("status") not in STATUSES:
        return f"has status {row.get('status')!r}, none of {', '.join(STATUSES)}"
    if not isinstance(row.get("controls"), dict) or not all(isinstance(v, list) for v in row["controls"].values()):
        return "has no controls table"
    if not isinstance(row.get("findings"), list):
        return "has no findings list"
    if row.get("object") is not None and not isinstance(row["object"], dict):
        return "has an object that is not an object"
    for finding in row["findings"]:
        if not isinstance(finding, dict) or not isinstance(finding.get("path"), str) or not (
                finding.get("object") is None or isinstance(finding["object"], dict)):
            return "has a finding without a field path or object"
        if not all(key in finding for key in ("observed", "expected")):
            return "has a finding without what was observed and expected"
    return ""


def _test_name(nodeid: str) -> str:
    """`tests_cluster/test_x.py::test_y[Role/a]` -> `test_y`: the parameter id is the object, which
    the key holds on its own."""
    return re.sub(r"\[.*\]$", "", nodeid.rpartition("::")[2])


def run_of(name: str, environment: dict, records: list[Record]) -> Run:
    """The run in progress (--compare-with), as a Run."""
    return Run(name, environment, records)


# -- comparing -------------------------------------------------------------------------------------
def _object_key(obj: dict | None) -> tuple:
    obj = obj or {}
    return tuple(str(obj.get(part) or "") for part in ("kind", "namespace", "name"))


@dataclass
class FindingChange:
    key: tuple  # (test, kind, namespace, name, field path)
    text: str  # finding_text: names, path, observed and expected
    test: str
    status: str  # of its result in the run that has it (failed, waived, accepted)
    controls: list[str]
    why: str = ""  # for a finding not confirmed fixed: what the later run said instead

    def to_dict(self) -> dict:
        test, kind, namespace, name, path = self.key
        return {"test": test, "object": {"kind": kind, "namespace": namespace or None, "name": name}, "path": path,
                "text": self.text, "status": self.status, "controls": self.controls,
                **({"why": self.why} if self.why else {})}


@dataclass
class StateChange:
    framework: str  # cis, nsa, pss; "practice" for a practice
    name: str  # the control id, or the practice's marker
    before: str  # a COVERAGE_STATES state
    after: str
    counts_before: dict = field(default_factory=dict)
    counts_after: dict = field(default_factory=dict)

    @property
    def worse(self) -> bool:
        return RANK[self.after] > RANK[self.before]

    @property
    def label(self) -> str:
        if self.framework == "practice":
            title = PRACTICES.get(self.name)
            return f"{title} ({self.name})" if title else self.name
        return f"{FRAMEWORK_SHORT.get(self.framework, self.framework)} {self.name}"

    def counts_text(self) -> str:
        """The statuses whose count moved: `failed 0 -> 3, passed 12 -> 9`."""
        moved = [f"{s.replace('_', ' ')} {self.counts_before.get(s, 0)} -> {self.counts_after.get(s, 0)}"
                 for s in STATUSES if self.counts_before.get(s, 0) != self.counts_after.get(s, 0)]
        return ", ".join(moved)

    def to_dict(self) -> dict:
        return {"framework": self.framework, "name": self.name, "label": self.label, "before": self.before,
                "after": self.after, "worse": self.worse,
                "counts_before": self.counts_before, "counts_after": self.counts_after}


@dataclass
class Comparison:
    before: Run
    after: Run
    new: list[FindingChange]
    fixed: list[FindingChange]
    unconfirmed: list[FindingChange]
    controls: list[StateChange]
    practices: list[StateChange]

    @property
    def worse(self) -> bool:
        return bool(self.new) or any(c.worse for c in self.controls + self.practices)

    @property
    def exit_status(self) -> int:
        return EXIT_WORSE if self.worse else EXIT_SAME

    def counts(self) -> dict:
        return {"new findings": len(self.new), "fixed findings": len(self.fixed),
                "not confirmed fixed": len(self.unconfirmed),
                "controls changed": len(self.controls), "controls worse": sum(c.worse for c in self.controls),
                "practices changed": len(self.practices), "practices worse": sum(p.worse for p in self.practices)}


def _findings(records: list[Record]) -> dict[tuple, tuple[Record, dict]]:
    """Each standing finding (of a failed, waived or accepted result) by its key. Two findings with
    one key are one: the key is what a reader would call the same finding."""
    found = {}
    for record in records:
        if record.status not in WITH_FINDINGS:
            continue
        for finding in record.findings:
            obj = finding.get("object") or record.object
            found.setdefault((record.test, *_object_key(obj), finding["path"]), (record, finding))
    return found


def _entry(key: tuple, record: Record, finding: dict, why: str = "") -> FindingChange:
    obj = finding.get("object") or record.object or {}
    controls = list(finding.get("controls") or record.controls.get("cis") or [])
    return FindingChange(key, finding_text(finding, obj), record.test, record.status, controls, why)


def control_states(records: list[Record]) -> dict[tuple[str, str], tuple[str, Counter]]:
    """(framework, control id) -> (state, the statuses' counts) for every control a result carried,
    by the first page's rule; a record with no id under a framework counts under none of it."""
    from kubeproof.oscal import statuses_by_control  # the same per-framework reading OSCAL makes

    table = {}
    for key, entries in statuses_by_control(records).items():
        counts = Counter(status for _, status in entries)
        table[key] = (control_state(counts), counts)
    return table


def _control_order(key: tuple[str, str]) -> tuple:
    framework, control = key
    order = list(FRAMEWORKS).index(framework) if framework in FRAMEWORKS else len(FRAMEWORKS)
    return (order, 0, cis.id_key(control), "") if framework == "cis" and control in cis.ids() else (order, 1, (), control)


def _state_changes(before: dict, after: dict, framework_of, order) -> list[StateChange]:
    changes = []
    for key in sorted(set(before) | set(after), key=order):
        state_a, counts_a = before.get(key, ("not_covered", Counter()))
        state_b, counts_b = after.get(key, ("not_covered", Counter()))
        if state_a != state_b or +counts_a != +counts_b:
            framework, name = framework_of(key)
            changes.append(StateChange(framework, name, state_a, state_b, dict(+counts_a), dict(+counts_b)))
    return changes


def compare(before: Run, after: Run) -> Comparison:
    found_a, found_b = _findings(before.records), _findings(after.records)
    new = [_entry(key, *found_b[key]) for key in found_b if key not in found_a]
    # A finding of A is fixed only where B judged its object again (or ran its test and the object is
    # gone); a result B could not prove, or a test B did not run, leaves it unconfirmed.
    # Every status B gave the (test, object): results about no object (an API server flag, a path
    # asked anonymously) share one key, and one of them not proven leaves the finding unconfirmed.
    judged_b: dict[tuple, set[str]] = {}
    for r in after.records:
        judged_b.setdefault((r.test, _object_key(r.object)), set()).add(r.status)
    tests_b = {r.test for r in after.records}
    fixed, unconfirmed = [], []
    for key, (record, finding) in found_a.items():
        if key in found_b:
            continue
        statuses_b = judged_b.get((record.test, _object_key(record.object)), set())
        if (statuses_b and statuses_b <= JUDGED) or (not statuses_b and record.test in tests_b):
            fixed.append(_entry(key, record, finding))
        else:
            unproven = sorted(statuses_b - JUDGED)
            why = ("the later run did not run this test" if not statuses_b
                   else f"the later run's result: {', '.join(s.replace('_', ' ') for s in unproven)}")
            unconfirmed.append(_entry(key, record, finding, why))
    controls = _state_changes(control_states(before.records), control_states(after.records), lambda k: k, _control_order)

    def practices(records):
        return {p: (control_state(c), c) for p, c in counts_by_practice(records).items()}

    practice_changes = _state_changes(practices(before.records), practices(after.records),
                                      lambda k: ("practice", k), lambda k: k)
    order = lambda c: (c.key[0], c.key[1:])  # noqa: E731
    return Comparison(before, after, sorted(new, key=order), sorted(fixed, key=order), sorted(unconfirmed, key=order),
                      controls, practice_changes)


# -- how it reads ----------------------------------------------------------------------------------
def _state(state: str) -> str:
    return COVERAGE_LABELS.get(state, state) if state != "waived" else "waived"


def _plain(value) -> str:
    """Cluster-supplied text for a terminal: one line, no control characters."""
    return "".join(c if c.isprintable() else "?" for c in " ".join(str(value).split()))


def _about(run: Run) -> str:
    env = run.environment
    parts = [f"cluster {env.get('cluster', '?')}"]
    if env.get("started (UTC)"):
        parts.append(f"started {env['started (UTC)']}")
    return ", ".join(parts)


def headline(c: Comparison) -> str:
    n = c.counts()
    return (f"{n['new findings']} new findings, {n['fixed findings']} fixed, {n['not confirmed fixed']} not confirmed fixed; "
            f"{n['controls changed']} controls changed ({n['controls worse']} for the worse), "
            f"{n['practices changed']} practices changed ({n['practices worse']} for the worse)")


def _verdict(c: Comparison) -> str:
    return "WORSE" if c.worse else "NOT WORSE"


def _change_line(change: StateChange) -> str:
    moved = change.counts_text()
    return (f"{change.label}: {_state(change.before)} -> {_state(change.after)}"
            + (f" ({moved})" if moved else "") + (" [worse]" if change.worse else ""))


def _finding_line(entry: FindingChange) -> str:
    controls = f", CIS {', '.join(entry.controls)}" if entry.controls else ""
    status = "" if entry.status == "failed" else f", {entry.status}"
    why = f"; {entry.why}" if entry.why else ""
    return f"{entry.text} (test {entry.test}{controls}{status}{why})"


def _sections(c: Comparison):
    return (("Practices whose status changed", c.practices, _change_line),
            ("Controls whose status changed", c.controls, _change_line),
            (f"New findings (in {c.after.name}, not in {c.before.name})", c.new, _finding_line),
            (f"Fixed findings (in {c.before.name}, not in {c.after.name})", c.fixed, _finding_line),
            ("Not confirmed fixed (the later run did not judge the object again)", c.unconfirmed, _finding_line))


def text(c: Comparison) -> str:
    lines = [f"kubeproof diff: {_verdict(c)} (exit {c.exit_status})",
             f"before: {_plain(c.before.name)} ({_plain(_about(c.before))})",
             f"after:  {_plain(c.after.name)} ({_plain(_about(c.after))})",
             headline(c), ""]
    for title, items, line in _sections(c):
        if items:
            lines += [f"{_plain(title)}: {len(items)}", *(f"  - {_plain(line(i))}" for i in items), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def markdown(c: Comparison) -> str:
    lines = [f"## kubeproof diff: {_verdict(c)}", "",
             f"Before {_code(c.before.name)} ({md_cell(_about(c.before))}); after {_code(c.after.name)} "
             f"({md_cell(_about(c.after))}). Exit status {c.exit_status}.", "", md_cell(headline(c)) + ".", ""]
    for title, items, line in _sections(c):
        if items:
            lines += [f"### {md_cell(title)}: {len(items)}", "", *(f"- {_code(line(i))}" for i in items), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def to_json(c: Comparison) -> str:
    return json.dumps({
        "before": {"run": c.before.name, "environment": _public(c.before.environment)},
        "after": {"run": c.after.name, "environment": _public(c.after.environment)},
        "worse": c.worse, "exit_status": c.exit_status, "counts": c.counts(),
        "practices": [p.to_dict() for p in c.practices], "controls": [x.to_dict() for x in c.controls],
        "new_findings": [f.to_dict() for f in c.new], "fixed_findings": [f.to_dict() for f in c.fixed],
        "not_confirmed_fixed": [f.to_dict() for f in c.unconfirmed],
    }, indent=1) + "\n"


def _public(environment: dict) -> dict:
    return {k: environment.get(k) for k in ("cluster", "API server", "server version", "baseline",
                                            "kubeproof version", "started (UTC)") if k in environment}


def render(c: Comparison, form: str) -> str:
    return {"text": text, "markdown": markdown, "json": to_json}[form](c)


def summary_line(c: Comparison) -> str:
    """summary.md's one line on the comparison."""
    return f"Since {_code(c.before.name)}: {'worse' if c.worse else 'not worse'}; {md_cell(headline(c))}."


def since_html(c: Comparison, limit: int = HTML_LISTED) -> str:
    """The first page's "Since <run>" section: the counts, then each list, `limit` entries at most."""
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    worse = c.worse
    parts = [f'<section class="kubeproof-since" data-worse="{str(worse).lower()}">'
             f'<h2>Since {e(c.before.name)}</h2>'
             f'<p>Compared with the run {e(c.before.name)} ({e(_about(c.before))}): '
             f'<b>{"worse" if worse else "not worse"}</b>. {e(headline(c))}. A finding is fixed only where this run '
             'judged its object again; a control that was proved and is now not verified or not judged counts '
             'as worse.</p>']
    for title, items, line in _sections(c):
        if not items:
            continue
        shown = "".join(f"<li>{e(line(i))}</li>" for i in items[:limit])
        more = f"<li>... and {len(items) - limit} more (python -m kubeproof diff lists them all)</li>" if len(items) > limit else ""
        parts.append(f"<h3>{e(title)}: {len(items)}</h3><ul>{shown}{more}</ul>")
    return "".join(parts) + "</section>"


