"""Reporting: what the run says about itself. The audited cluster's description (pytest-html's
environment table, and the summaries), the pytest-html page (title, summary, rows, grouping of
passed results in large runs), the terminal summary, and the run folder's artifacts written when the
session finishes (results.json, junit.xml, results.sarif, summary.md (also appended to
$GITHUB_STEP_SUMMARY in CI), assessment-results.json (OSCAL); the HTML is pytest-html's own).

The plugin's hooks call in here; nothing here is a hook itself."""

from __future__ import annotations

import datetime
import html
import os
import platform
import re
import subprocess

import pytest

import kubeproof
from kubeproof import diff, ratchet
from kubeproof.artifacts import SUMMARY, sarif_log, summary_markdown, verdict, write_junit
from kubeproof.evidence import (
    Record,
    counts_by_control,
    counts_by_practice,
    first_page_html,
    is_grouped,
    outcome_counts,
    row_html,
    summary_html,
)
from kubeproof.governance import Governance
from kubeproof.oscal import write_assessment_results
from kubeproof.practices import PRACTICES
from kubeproof.results import NotVerified
from kubeproof.session import Audit
from kubeproof.suite import (
    AUDIT,
    COMPARE_WITH,
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
    facts = {
        "cluster": audit.cluster,
        "cluster fingerprint": audit.fingerprint,
        "backend": audit.backend.kind,
        "API server": audit.backend.server,
        "server version": audit.server_version.get("gitVersion", "unknown"),
        "nodes": describe_nodes(audit),
        "identity": audit.identity,
        "baseline": audit.baseline.path,
        "baseline sha256": audit.baseline.sha256,
        "kubeproof version": kubeproof.__version__,
        "kubeproof commit": git_commit(home(config)),
        "started (UTC)": config.stash[STARTED].isoformat(timespec="seconds"),
        "strict": bool(config.getoption("strict")),
        "fail on": config.getoption("fail_on"),
    }
    spare = getattr(getattr(audit.backend, "cluster", None), "spare", None)
    if spare:
        # The evidence says the cluster was started before the run, and that no other run had it.
        started = datetime.datetime.fromtimestamp(spare["started"], datetime.UTC)
        facts["embedded cluster"] = (f"a warm spare started {started.isoformat(timespec='seconds')} (in "
                                     f"{spare['start_seconds']} s) and claimed by this run alone")
    return facts


NODES_NAMED = 5


def describe_nodes(audit: Audit) -> str:
    """Which nodes the audit saw, each with its kubelet and runtime as the node reports them: the
    evidence names the machines it is about (a kind node, a cloud pool), not only the API server."""
    if audit.nodes is None:
        audit.nodes = _nodes_now(audit)
    return audit.nodes


def _field(obj, *path) -> str | None:
    """A text field of a node as the API server gave it; None where any step is missing or not text."""
    for step in path:
        obj = obj.get(step) if isinstance(obj, dict) else None
    return obj if isinstance(obj, str) else None


def _nodes_now(audit: Audit) -> str:
    if audit.backend.kind == "manifests":
        return "none (manifests are applied to an embedded API server with no nodes)"
    try:
        nodes = audit.snapshot.items("nodes")
    except (NotVerified, RuntimeError) as error:  # RuntimeError: asked after the snapshot was released
        return f"not readable: {error}"
    described = []
    for node in nodes[:NODES_NAMED]:
        name = _field(node, "metadata", "name") or "?"
        kubelet = _field(node, "status", "nodeInfo", "kubeletVersion") or "?"
        parts = [f"kubelet {kubelet}", _field(node, "status", "nodeInfo", "containerRuntimeVersion") or "runtime ?"]
        if _field(node, "status", "nodeInfo", "osImage"):
            parts.append(_field(node, "status", "nodeInfo", "osImage"))
        described.append(f"{name} ({', '.join(parts)})")
    if len(nodes) > NODES_NAMED:
        described.append(f"and {len(nodes) - NODES_NAMED} more")
    return "; ".join(described) or "none"


def add_environment_metadata(config, audit: Audit, described: dict | None = None) -> None:
    """pytest-html draws its environment table from pytest-metadata's values. They become the
    audited cluster's description and nothing else (pytest-metadata's Python, platform, packages and
    plugins are gone): the report holds one identity block, and the first page's is that table."""
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:  # pytest-html without pytest-metadata: the first page still carries it
        return
    metadata = config.stash[metadata_key]
    metadata.clear()  # in place: pytest-html holds this very dict as its environment data
    # pytest-html renders environment values as HTML; names of clusters and users are text.
    metadata.update({k: html.escape(str(v)) for k, v in (described or environment(config, audit)).items()})


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
    """The report's first page (verdict, audited cluster, CIS coverage, failures) in place of
    pytest-html's environment section, then the counts by practice and by control in its summary."""
    audit = config.stash.get(AUDIT, None)
    if audit is None:
        return
    records: list[Record] = config.stash[RECORDS]
    described = environment(config, audit)
    described["finished (UTC)"] = _now()
    add_environment_metadata(config, audit, described)
    strict = bool(config.getoption("strict"))
    # The verdict summary.md states, from the same records and exit status; an exit status that cannot
    # be read is taken as a failure, never a pass.
    exitstatus = _exitstatus(config)
    exitstatus = 1 if exitstatus is None else exitstatus
    comparison = _comparison(config, described)
    page = {"verdict": verdict(records, exitstatus, strict), "exitstatus": exitstatus, "strict": strict,
            "sources": getattr(audit.backend, "sources", {}),
            "since": diff.since_html(comparison) if comparison else ""}
    if not _open_report_with(config, first_page_html(records, described, **page)):
        # pytest-html's page did not have the expected shape: its own environment table holds the
        # cluster (the metadata above), and the rest of the first page leads its summary.
        prefix.append(first_page_html(records, None, **page))
    prefix.append(summary_html(records, group_passed=config.stash.get(GROUP_PASSED, False)))


def _comparison(config, described: dict) -> diff.Comparison | None:
    """This run against the one --compare-with names (read and checked when the run began)."""
    earlier = config.stash.get(COMPARE_WITH, None)
    run = config.stash.get(RUN, None)
    if earlier is None:
        return None
    return diff.compare(earlier, diff.run_of(run.stem if run else "this run", described, config.stash[RECORDS]))


def _exitstatus(config) -> int | None:
    """The exit status pytest will return: the session sets it before the session-finish hooks, where
    pytest-html asks for the summary."""
    session = config.pluginmanager.get_plugin("session")
    status = getattr(session, "exitstatus", None)
    return None if status is None else int(status)


# pytest-html's page template opens with its environment section: a heading and the table its script
# fills from the metadata. The first page takes its place, and carries that table's ids itself.
ENVIRONMENT_SECTION = re.compile(r'<div id="environment-header">\s*<h2>Environment</h2>\s*</div>\s*'
                                 r'<table id="environment"></table>')
FIRST_PAGE = "kubeproof_first_page"


def _open_report_with(config, first_page: str) -> bool:
    """Gives pytest-html's report a template whose environment section is `first_page`: the same
    template otherwise, compiled in pytest-html's own jinja environment (its includes and escaping).
    False when there is no such report or its template is not the shape expected."""
    try:
        from pytest_html.basereport import BaseReport
    except ImportError:
        return False
    report = next((p for p in config.pluginmanager.get_plugins() if isinstance(p, BaseReport)), None)
    template = getattr(report, "_template", None)
    if template is None or template.name is None:
        return False
    try:
        source, _, _ = template.environment.loader.get_source(template.environment, template.name)
    except Exception:  # any loader trouble leaves pytest-html's page as it is
        return False
    if len(ENVIRONMENT_SECTION.findall(source)) != 1:
        return False
    # A global, not text pasted into the template: cluster names never meet jinja's syntax.
    replaced = ENVIRONMENT_SECTION.sub("{{ " + FIRST_PAGE + "|safe }}", source)
    report._template = template.environment.from_string(replaced, globals={FIRST_PAGE: first_page})
    return True


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
                                    f"{SUMMARY}, assessment-results.json, SHA256SUMS)")
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
    write_assessment_results(run, records, described)
    # The page named as a reader finds it: from the checkout, or from the report directory.
    page = run.final / f"{run.stem}.html"
    html_name = str(page.relative_to(config.rootpath if page.is_relative_to(config.rootpath) else run.final.parent))
    summary = summary_markdown(records, exitstatus=int(exitstatus), strict=bool(config.getoption("strict")),
                               sources=sources, html_name=html_name, described=described)
    comparison = _comparison(config, described)
    if comparison:
        summary += "\n" + diff.summary_line(comparison) + "\n"
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
