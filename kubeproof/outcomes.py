"""Outcomes: each test's record, kubeproof's status for it, and how that status shows in pytest's own
outcomes, so the terminal, the HTML table and JUnit count what results.json counts:

    passed -> passed          failed (a finding) -> failed          error -> error
    not verified -> skipped, or failed with --strict                waived, accepted -> xfailed

The plugin's runtest hooks call in here; nothing here is a hook itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubeproof import parameters
from kubeproof.backends import Unreachable
from kubeproof.evidence import Record
from kubeproof.practices import FRAMEWORKS, PRACTICES
from kubeproof.results import NotVerified
from kubeproof.suite import AUDIT, GOVERNANCE, GROUP_PASSED, KEYWORDS, PROBES, RECORDS, VERDICT

_SHARED_CONTROLS: dict[str, dict[str, list[str]]] = {}
_SHARED_READS: dict[frozenset, frozenset] = {}


# -- records ---------------------------------------------------------------------------------------
def _controls_and_practice(item) -> tuple[dict[str, list[str]], str | None]:
    marks = list(item.iter_markers())  # walked once: per item, and 30,000 items at scale
    controls = {name: [str(a) for m in marks if m.name == name for a in m.args] for name in FRAMEWORKS}
    present = {m.name for m in marks}
    # Every result of a test carries the same ids: share one copy (nothing changes them after this).
    controls = _SHARED_CONTROLS.setdefault(repr(controls), controls)
    return controls, next((name for name in PRACTICES if name in present), None)


def _subject(item) -> dict | None:
    callspec = getattr(item, "callspec", None)
    for name, value in (callspec.params.items() if callspec else ()):
        subject = parameters.subject(name, value)
        if subject is not None:
            if isinstance(value, dict):
                source = _sources(item).get((subject["kind"], subject["namespace"], subject["name"]))
                if source:
                    subject["source"] = f"{source[0]}:{source[1]}"
            return subject
    return None


def _sources(item) -> dict:
    audit = item.config.stash.get(AUDIT, None)
    return getattr(audit.backend, "sources", {}) if audit is not None else {}


def record_of(item) -> Record:
    record = getattr(item, "_kubeproof_record", None)
    if record is None:
        controls, practice = _controls_and_practice(item)
        record = Record(item.nodeid, item.originalname, practice, controls, _subject(item))
        item._kubeproof_record = record
        item.config.stash[RECORDS].append(record)
    return record


def audit_reads(config) -> set[str]:
    return set(config.stash[AUDIT].snapshot.touched) | {f"probe:{p}" for p in config.stash[PROBES].touched}


def begin(item) -> None:
    """Before a test of the suite runs: its record, its control ids as JUnit properties, and not
    verified at once if its object's kind could not be listed."""
    # What this test reads is recorded, so evidence (and fault injection) can say what it rests on.
    item.config.stash[AUDIT].snapshot.touched.clear()
    item.config.stash[PROBES].touched.clear()
    record = record_of(item)
    # One property per framework: JUnit readers keep one value per property name, and each report
    # carries its own copy (at 30,000 results, one per control id cost tens of MB).
    item.user_properties.extend((framework, ", ".join(ids)) for framework, ids in record.controls.items() if ids)
    callspec = getattr(item, "callspec", None)
    for name, value in (callspec.params.items() if callspec else ()):
        record.reads.update(parameters.kinds_read(name, value))
        if isinstance(value, parameters.Unreadable):
            raise NotVerified(f"{value.kind} objects could not be listed: {value.reason}")


# -- status ----------------------------------------------------------------------------------------
def _status(report, call, verdict) -> tuple[str | None, str]:
    """kubeproof's reading of one phase: None when the phase says nothing new (a passed setup)."""
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, NotVerified):
        return "not_verified", excinfo.value.reason
    if excinfo is not None and isinstance(excinfo.value, Unreachable):
        return "not_verified", f"the API server stopped answering: {excinfo.value}"
    if report.outcome == "failed":
        if verdict is not None and verdict.findings and call.when == "call":
            return "failed", ""
        return "error", _error_summary(call)
    if report.outcome == "skipped":
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else _last_line(str(longrepr))
        return "skipped", reason.removeprefix("Skipped: ")
    return ("passed", "") if call.when == "call" else (None, "")


def _error_summary(call) -> str:
    """An unexpected error, named by type and place only: its message and pytest's traceback (which
    prints the test's arguments) can quote cluster data, so they stay out of the evidence unless
    KUBEPROOF_DEBUG=1 asks for them."""
    excinfo = call.excinfo
    if excinfo is None:
        return "error"
    entry = excinfo.traceback[-1] if excinfo.traceback else None
    where = f" at {Path(str(entry.path)).name}:{entry.lineno + 1}" if entry is not None else ""
    return (f"kubeproof error: {excinfo.typename}{where} during {call.when}; details withheld from the evidence "
            "because they may quote cluster data (rerun with KUBEPROOF_DEBUG=1 to see them)")


def _last_line(text: str) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1][:500] if lines else ""


# -- pytest's reports ------------------------------------------------------------------------------
def not_verified_report(item, call) -> pytest.TestReport | None:
    """The report of a phase that raised NotVerified, made without the traceback pytest would format
    for it: it is a known outcome with its reason, not a crash (at thousands of unreachable nodes,
    formatting those tracebacks was a third of the run). None for any other phase."""
    excinfo = call.excinfo
    if excinfo is None or not isinstance(excinfo.value, NotVerified) or item.config.stash.get(AUDIT, None) is None:
        return None
    return pytest.TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1), "failed",
                             excinfo.value.reason, call.when,
                             [(f"Captured {key} {rwhen}", content) for rwhen, key, content in item._report_sections],
                             call.duration, call.start, call.stop, user_properties=item.user_properties)


def conclude(item, call, report) -> None:
    """Reads one phase's report into the test's record, has governance judge it (waivers, the
    ratchet), and makes the report say what the record says."""
    # pytest gives each phase's report its own copy of the item's keywords; one serves all three.
    report.keywords = item.stash.setdefault(KEYWORDS, report.keywords)
    verdict = item.stash.get(VERDICT, None)
    record = record_of(item)
    record.seconds += report.duration
    record.reads |= audit_reads(item.config)
    if call.when == "teardown":  # the last phase: from here on the set is only read, and most are alike
        reads = frozenset(record.reads)
        record.reads = _SHARED_READS.setdefault(reads, reads)
    if verdict is not None:
        record.findings = [f.to_dict() for f in verdict.findings]
        record.facts = dict(verdict.facts)
    # pytest-html builds a test's rows once its teardown is reported, when the record's status is final:
    # a passed test's setup and teardown rows are grouped away with its call row.
    report.kubeproof_record = record
    report.kubeproof_group_passed = item.config.stash.get(GROUP_PASSED, False)
    status, reason = _status(report, call, verdict)
    if status is None or (record.status in ("failed", "error", "not_verified", "waived", "accepted") and status in ("passed", "skipped")):
        return
    judgement = item.config.stash[GOVERNANCE].judge(status, record.test, record.controls.get("cis", []), record.object, record.findings)
    record.status = judgement.status
    record.reason = "; ".join(p for p in (reason, judgement.note) if p)
    _apply(report, item, record)


def _apply(report, item, record: Record) -> None:
    """Map kubeproof's status onto pytest's outcomes, so every artifact counts the same way:
    not verified -> skipped (failed with --strict), waived or accepted -> xfailed."""
    if record.status == "not_verified":
        if item.config.getoption("strict"):
            report.outcome = "failed"
            report.longrepr = f"NOT VERIFIED (--strict): {record.reason}"
        else:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] + 1, f"NOT VERIFIED: {record.reason}")
        report.kubeproof_not_verified = True
    elif record.status in ("waived", "accepted"):
        report.outcome = "skipped"
        report.wasxfail = f"{record.status.upper()}: {record.reason}"
    elif record.status == "failed" and record.reason:
        report.longrepr = f"{report.longreprtext}\n{record.reason}"
    elif record.status == "error" and os.environ.get("KUBEPROOF_DEBUG") != "1":
        report.longrepr = record.reason


def teststatus(report) -> tuple | None:
    """How a not-verified result shows in the terminal: its own letter and word, not a skip's."""
    if getattr(report, "kubeproof_not_verified", False) and report.outcome == "skipped":
        return "not verified", "N", ("NOT VERIFIED", {"yellow": True})
    return None
