"""Reporting: what the run says about itself. The audited cluster's description (pytest-html's
environment table, and the summaries), the pytest-html page (title, summary, rows, grouping of
passed results in large runs), the terminal summary, and the run folder's artifacts written when the
session finishes (results.json, junit.xml, results.sarif, summary.md, and summary.md appended to
$GITHUB_STEP_SUMMARY in CI; the HTML is pytest-html's own).

The plugin's hooks call in here; nothing here is a hook itself."""

from __future__ import annotations

import datetime
import html
import os
import platform
import subprocess

import pytest

import kubeproof
from kubeproof import ratchet
from kubeproof.artifacts import SUMMARY, sarif_log, summary_markdown, write_junit
from kubeproof.evidence import (
    Record,
    counts_by_control,
    counts_by_practice,
    is_grouped,
    outcome_counts,
    row_html,
    summary_html,
)
from kubeproof.governance import Governance
from kubeproof.practices import PRACTICES
from kubeproof.session import Audit
from kubeproof.suite import (
    AUDIT,
    COMPLETED,
    FAILURES_SHORT,
    GOVERNANCE,
    GROUP_PASSED,
    PROBES,
    RECORDS,
    RUN,
    STARTED,
    UPDATED,
    home,
)

TITLE = "kubeproof compliance evidence"
GROUP_PASSED_ABOVE = 2000  # results; above it, passed and exempt ones are grouped in the HTML summary
STEP_SUMMARY = "GITHUB_STEP_SUMMARY"  # GitHub Actions: a file whose Markdown the job's page shows
STEP_SUMMARY_PROBLEM = pytest.StashKey[str]()


# -- the audited cluster ---------------------------------------------------------------------------
def environment(config, audit: Audit) -> dict:
    return {
        "cluster": audit.cluster,
        "cluster fingerprint": audit.fingerprint,
        "backend": audit.backend.kind,
        "API server": audit.backend.server,
        "server version": audit.server_version.get("gitVersion", "unknown"),
        "identity": audit.identity,
        "baseline": audit.baseline.path,
        "baseline sha256": audit.baseline.sha256,
        "kubeproof version": kubeproof.__version__,
        "kubeproof commit": git_commit(home(config)),
        "started (UTC)": config.stash[STARTED].isoformat(timespec="seconds"),
        "strict": bool(config.getoption("strict")),
        "fail on": config.getoption("fail_on"),
    }


def add_environment_metadata(config, audit: Audit) -> None:
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:  # pytest-html without pytest-metadata: the summary still carries it
        return
    # pytest-html renders environment values as HTML; names of clusters and users are text.
    config.stash[metadata_key].update({k: html.escape(str(v)) for k, v in environment(config, audit).items()})


def git_commit(root) -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (done.stdout.strip() or "no commit") + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# -- the pytest-html page --------------------------------------------------------------------------
def html_summary(prefix: list, config) -> None:
    audit = config.stash.get(AUDIT, None)
    if audit is not None:
        described = environment(config, audit)
        described["finished (UTC)"] = _now()
        prefix.append(summary_html(config.stash[RECORDS], described, group_passed=config.stash.get(GROUP_PASSED, False)))


def html_row(report, cells: list) -> None:
    record = getattr(report, "kubeproof_record", None)
    if record is not None and is_grouped(record) and getattr(report, "kubeproof_group_passed", False):
        cells.clear()  # grouped in the summary instead: the browser renders every row it is given
        return
    # pytest-html puts the test id into the page as HTML, and ours carry object names, which RBAC
    # (and the people who name things) allow to contain markup: it must be text.
    test_id = report.nodeid + (f"::{report.when}" if report.when != "call" else "")
    for index, cell in enumerate(cells):
        if cell.startswith('<td class="col-testId">'):
            cells[index] = f'<td class="col-testId">{html.escape(test_id)}</td>'


def html_evidence(report, data: list) -> None:
    record = getattr(report, "kubeproof_record", None)
    if record is not None and (report.when == "call" or report.outcome != "passed"):
        data.append(row_html(record))


# -- the terminal ----------------------------------------------------------------------------------
def terminal_summary(terminalreporter, config) -> None:
    audit = config.stash.get(AUDIT, None)
    if audit is None:
        return
    terminalreporter.section("kubeproof")
    for practice, counts in counts_by_practice(config.stash[RECORDS]).items():
        shown = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        terminalreporter.write_line(f"{PRACTICES.get(practice, practice)}: {shown}")
    governance: Governance = config.stash[GOVERNANCE]
    for waiver in governance.stale():
        terminalreporter.write_line(f"stale waiver (matched nothing): {waiver.label}", yellow=True)
    if governance.accepted is not None:
        for entry in governance.fixed({r.test for r in config.stash[RECORDS]}):
            terminalreporter.write_line(f"fixed since accepted: {entry.get('test')} {entry.get('object')} {entry.get('path')}", green=True)
    updated = config.stash.get(UPDATED, None)
    if updated:
        terminalreporter.write_line(f"recorded {updated[1]} accepted finding(s) in {updated[0]}")
    if config.stash.get(FAILURES_SHORT, False):
        terminalreporter.write_line(f"more than {GROUP_PASSED_ABOVE} results: failures are listed one line each "
                                    "(--tb=short prints every finding here; the report holds them all)")
    run = config.stash.get(RUN, None)
    if run is not None and config.stash.get(COMPLETED, False):
        terminalreporter.write_line(f"evidence: {run.final}/ ({run.stem}.html, results.json, junit.xml, results.sarif, "
                                    f"{SUMMARY}, SHA256SUMS)")
    problem = config.stash.get(STEP_SUMMARY_PROBLEM, None)
    if problem:
        terminalreporter.write_line(problem, yellow=True)


# -- the run folder --------------------------------------------------------------------------------
def write_artifacts(config, exitstatus) -> None:
    """At the session's end, the run folder's artifacts from the records: only a run that got to the
    end (0 proven, 1 findings) leaves them, and the folder is named final when pytest unconfigures."""
    audit, run = config.stash.get(AUDIT, None), config.stash.get(RUN, None)
    config.stash[COMPLETED] = audit is not None and run is not None and int(exitstatus) in (0, 1)
    if not config.stash[COMPLETED]:
        return
    records: list[Record] = config.stash[RECORDS]
    governance: Governance = config.stash[GOVERNANCE]
    audit.snapshot.release()
    config.stash[PROBES].release()
    described = environment(config, audit)
    described["finished (UTC)"] = _now()
    tests_run = {r.test for r in records}
    run.write_json_rows("results.json", {
        "environment": described,
        "snapshot": audit.snapshot.summary(),
        "counts": outcome_counts(records, strict=bool(config.getoption("strict"))),
        "summary_by_practice": {p: dict(c) for p, c in counts_by_practice(records).items()},
        "summary_by_control": {c: dict(n) for c, n in counts_by_control(records).items()},
        "waivers": {
            "stale": [w.label for w in governance.stale()],
            "expired": [w.label for w in audit.baseline.waivers if w.expired(governance.today)],
        },
        "ratchet": {"fail_on": config.getoption("fail_on"),
                    "fixed": governance.fixed(tests_run) if governance.accepted is not None else []},
    }, "results", (r.to_dict() for r in records))
    write_junit(run.junit, records, strict=bool(config.getoption("strict")), started=described["started (UTC)"],
                seconds=(datetime.datetime.now(datetime.UTC) - config.stash[STARTED]).total_seconds(),
                hostname=platform.node())
    sources = getattr(audit.backend, "sources", {})
    run.write_json("results.sarif", sarif_log(records, kubeproof.__version__, sources))
    # The page named as a reader finds it: from the checkout, or from the report directory.
    page = run.final / f"{run.stem}.html"
    html_name = str(page.relative_to(config.rootpath if page.is_relative_to(config.rootpath) else run.final.parent))
    summary = summary_markdown(records, exitstatus=int(exitstatus), strict=bool(config.getoption("strict")),
                               sources=sources, html_name=html_name, described=described)
    run.write_text(SUMMARY, summary)
    append_step_summary(config, summary)
    if config.getoption("update_baseline"):
        path = ratchet.accepted_path(audit.baseline.path)
        previous = ratchet.load(path) if path.exists() else {}
        config.stash[UPDATED] = (path, ratchet.save(path, [r for r in records if r.findings], previous))


def append_step_summary(config, summary: str) -> None:
    """In GitHub Actions, the summary goes to the job's page too: appended, since other steps (and
    other runs in this step) write there as well. A file that cannot be written is a warning, not a
    failed audit: the run folder holds the same text."""
    path = os.environ.get(STEP_SUMMARY, "")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(("\n" if out.tell() else "") + summary)
    except OSError as error:
        config.stash[STEP_SUMMARY_PROBLEM] = (f"kubeproof: could not append the summary to ${STEP_SUMMARY} "
                                              f"({path}): {error.strerror or error}; it is in {SUMMARY} in the run folder")
