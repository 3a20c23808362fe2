"""Many clusters in one run: `--cluster=a,b,c`, or a glob over the kubeconfig's context names
(`--cluster='prod-*'`), or both (`--cluster='local,prod-*'`).

Each cluster is audited by a run of the suite of its own, one after another: `python -m pytest` with
the invocation's own arguments and `--cluster=<that one>`. A cluster's snapshot is gone with its
process before the next one is read, so memory is one cluster's however many there are, and one
cluster's failure (unreachable, misconfigured, crashed) cannot take the others with it. Each run
writes its own run folder (and picks its own baseline: `--baseline DIR` means DIR/<cluster>.yaml,
else DIR/default.yaml), exactly as a run of that one cluster would.

Then the fleet folder, `<report dir>/fleet-<UTC timestamp>/`, is written from the head of each run's
results.json (its environment and counts; the results themselves are not read): fleet.json, fleet.md
and fleet.html, every control against every cluster, with each cluster's verdict and exit reason,
under a temporary name renamed when complete and with SHA256SUMS over them, as a run folder is.

The fleet's exit status is the worst of its clusters', in the order 3 (unreachable) > 2 (usage or
configuration error) > 1 (findings) > 0 (none of these): a cluster nobody could reach is the one
we know least about. A run that ended any other way (pytest's usage error 4, nothing collected 5, a
crash, a signal) counts as 2, and so does one that exited 0 or 1 without a sealed run folder."""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import html
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import kubeproof
from kubeproof import baseline as baselines
from kubeproof.artifacts import SUMS, RunFolder, _cell, listed_digests
from kubeproof.controlplane.embedded import _die_with_parent
from kubeproof.reporting import STEP_SUMMARY_PROBLEM, append_step_summary
from kubeproof.session import (
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_UNREACHABLE,
    IN_CLUSTER,
    LOCAL,
    ConfigError,
    Options,
    is_fleet,
    kubeconfig_contexts,
    kubeconfig_path,
    unknown_context,
)

NOTE = "KUBEPROOF_FLEET_NOTE"  # environment: the file where a member run notes its run folder, or why it stopped
GLOB = "*?["
EXIT_ORDER = "3 unreachable > 2 usage or configuration error > 1 findings > 0 none of these"
EXIT_MEANING = {0: "no findings", EXIT_FINDINGS: "findings", EXIT_CONFIG: "usage or configuration error",
                EXIT_UNREACHABLE: "API server unreachable"}
# A control's status on one cluster, worst first. "exempt": every result was exempt for a stated
# reason, which proves nothing but is not a gap either; a control the cluster's run has no result
# for (a subset by marker, or no run at all) is not verified.
CONTROL_STATUSES = ("failed", "not verified", "waived", "exempt", "proved")
REASON_LABELS = {"failed": "failed", "error": "errors", "not_verified": "not verified", "waived": "waived",
                 "accepted": "accepted", "passed": "passed", "skipped": "exempt"}
JSON_NAME, MARKDOWN_NAME, HTML_NAME = "fleet.json", "fleet.md", "fleet.html"
__all__ = ["NOTE", "Member", "expand", "fleet_exit", "is_fleet", "member_args", "note", "plan", "summarize"]


# -- which clusters --------------------------------------------------------------------------------
def expand(value: str, contexts: list[str], kubeconfig: str) -> list[str]:
    """The clusters `--cluster` names, in the order given, each once. A pattern's matches are sorted
    (as `kubectl config get-contexts` lists them); a pattern that matches nothing, an unknown name
    or an empty item is a usage error naming it."""
    chosen: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            raise ConfigError(f"--cluster {value}: an empty name in the list")
        if any(c in item for c in GLOB):
            matched = sorted(c for c in contexts if c and fnmatch.fnmatchcase(c, item))
            if not matched:
                known = ", ".join(sorted(c for c in contexts if c)) or "none"
                raise ConfigError(f"--cluster {item}: the pattern matches no context in {kubeconfig} (contexts there: {known})")
        elif item in (LOCAL, IN_CLUSTER) or item in contexts:
            matched = [item]
        else:
            raise unknown_context(item, kubeconfig, contexts)
        chosen += [name for name in matched if name not in chosen]
    return chosen


def plan(options: Options, update_baseline: bool = False, compare_with: str | None = None) -> list[str]:
    """The clusters to audit, or ConfigError (exit 2) for options that cannot apply to many."""
    if compare_with:
        raise ConfigError("--compare-with compares one cluster with an earlier run of that cluster; "
                          "give --cluster one cluster (or compare run folders with `python -m kubeproof diff`)")
    if options.manifests:
        raise ConfigError("--manifests audits one fresh embedded cluster of its own; drop the list or pattern from --cluster")
    if update_baseline:
        raise ConfigError("--update-baseline records one cluster's findings beside its baseline; give --cluster one cluster")
    items = [part.strip() for part in options.cluster.split(",")]
    path = kubeconfig_path(options.kubeconfig)
    # The kubeconfig is read only when a name needs it: `--cluster=local,in-cluster` needs none.
    contexts = kubeconfig_contexts(path)[0] if any(i not in (LOCAL, IN_CLUSTER) for i in items) else []
    return expand(options.cluster, contexts, path)


def member_args(args, cluster: str) -> list[str]:
    """The invocation's arguments for one cluster's run: the list or pattern dropped and the cluster
    given last, so it also wins over a --cluster in PYTEST_ADDOPTS or the ini's addopts (read first)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--cluster":
            skip = True
        elif not arg.startswith("--cluster="):
            kept.append(arg)
    return [*kept, f"--cluster={cluster}"]


def note(**fields) -> None:
    """In a member run, tells the fleet where its run folder is or why it stopped. A note that
    cannot be written leaves the fleet to report the run as not completed (fail closed)."""
    path = os.environ.get(NOTE)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(fields, default=str) + "\n")
    except OSError:
        pass


# -- one cluster -----------------------------------------------------------------------------------
@dataclass
class Member:
    """One cluster's run, as the fleet summary needs it."""

    cluster: str
    exit_status: int
    reason: str = ""
    endpoint: str | None = None
    run_folder: str | None = None  # its name, beside the fleet folder
    head: dict | None = None  # results.json without its results
    sums_sha256: str | None = None  # of the run folder's SHA256SUMS, which covers every artifact in it
    baseline: str = ""
    peak_rss_mib: float | None = None
    seconds: float = 0.0
    status_counts: Counter = field(default_factory=Counter)


def _read_notes(path: Path) -> dict:
    told: dict = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                told.update(json.loads(line))
            except ValueError:
                continue
    return told


def read_head(path: Path) -> dict:
    """results.json without its results: RunFolder.write_json_rows writes them last, one per line
    after a line of their own, so the head is read without reading a large run's results."""
    lines = []
    with path.open(encoding="utf-8") as results:
        for line in results:
            if line.rstrip("\n") == ' "results": [':
                return json.loads("".join(lines) + '"results": []}')
            lines.append(line)
    raise ValueError(f"{path}: no results list where kubeproof writes it")


def _sha256(path: Path) -> str:
    with path.open("rb") as artifact:
        return hashlib.file_digest(artifact, "sha256").hexdigest()


def read_run_folder(folder: Path) -> tuple[dict, str]:
    """The head of a sealed run folder's results.json and the digest of its SHA256SUMS, after
    checking results.json against it: the fleet summarises only what the run folder vouches for."""
    sums = folder / SUMS
    if listed_digests(folder).get("results.json") != _sha256(folder / "results.json"):
        raise ValueError(f"{folder}/results.json does not match its {SUMS}")
    return read_head(folder / "results.json"), _sha256(sums)


def conclude(cluster: str, code: int, told: dict, report_dir: Path) -> Member:
    """What one run's exit status, its note and its run folder say, fail closed: a run that exited
    0 or 1 without a run folder the fleet can read counts as a configuration error."""
    member = Member(cluster, code, reason=told.get("reason", ""), endpoint=told.get("endpoint"))
    if code in (0, EXIT_FINDINGS):
        folder = Path(told["run_folder"]) if told.get("run_folder") else None
        try:
            if folder is None:
                raise ValueError("it wrote no run folder")
            member.head, member.sums_sha256 = read_run_folder(folder)
            member.run_folder = os.path.relpath(folder, report_dir)
        except (OSError, ValueError) as error:
            member.exit_status = EXIT_CONFIG
            member.reason = f"the run exited {code} but its evidence cannot be read: {error}"
            return member
        member.reason = _completed_reason(member.head, code)
    elif not member.reason:
        why = f"killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() else f"exit status {code}"
        member.reason = f"the run ended with {why} (its output is above)"
    return member


def _completed_reason(head: dict, code: int) -> str:
    """`findings: 29 failed, 83 not verified, 257 passed, 46 exempt`, the worst counts first."""
    totals = _status_totals(head)
    shown = ", ".join(f"{totals[s]} {label}" for s, label in REASON_LABELS.items() if totals[s])
    return f"{'findings' if code == EXIT_FINDINGS else 'no findings'}: {shown or 'no results'}"


def _status_totals(head: dict) -> Counter:
    totals: Counter = Counter()
    for counts in (head.get("summary_by_practice") or {}).values():
        totals.update(counts)
    return totals


def audit_one(cluster: str, args, cwd: Path, report_dir: Path) -> Member:
    """One cluster's audit in a pytest process of its own, its output going straight to ours."""
    began = datetime.datetime.now(datetime.UTC)
    with tempfile.TemporaryDirectory(prefix="kubeproof-fleet-") as scratch:
        notes = Path(scratch, "note.jsonl")
        # A fleet stopped by SIGTERM (a cancelled CI job) stops the audit it is running too.
        process = subprocess.Popen([sys.executable, "-m", "pytest", *member_args(args, cluster)],
                                   cwd=cwd, env={**os.environ, NOTE: str(notes)},
                                   preexec_fn=lambda: _die_with_parent(signal.SIGTERM))
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.wait()  # Ctrl-C reached the run too: it removes its unfinished folder first
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        member = conclude(cluster, process.returncode, _read_notes(notes), report_dir)
    member.peak_rss_mib = round(usage.ru_maxrss / 1024, 1)  # KiB on Linux
    member.seconds = round((datetime.datetime.now(datetime.UTC) - began).total_seconds(), 1)
    return member


# -- the fleet summary -----------------------------------------------------------------------------
def fleet_exit(codes) -> int:
    """The worst status in the order 3 > 2 > 1 > 0; any other counts as 2 (see the module's text)."""
    return max((code if code in EXIT_MEANING else EXIT_CONFIG for code in codes), default=EXIT_CONFIG)


def control_status(counts: dict | None) -> str:
    """One control on one cluster from its results' statuses, fail closed: anything failed fails it,
    then anything not verified; waived (or accepted) before proved; only exempt results are exempt."""
    counts = counts or {}
    if counts.get("failed") or counts.get("error"):
        return "failed"
    if counts.get("not_verified") or not any(counts.values()):
        return "not verified"
    if counts.get("waived") or counts.get("accepted"):
        return "waived"
    return "proved" if counts.get("passed") else "exempt"


def cluster_verdict(member: Member) -> str:
    if member.head is None:
        return "unreachable" if member.exit_status == EXIT_UNREACHABLE else "not audited"
    totals = _status_totals(member.head)
    if member.exit_status != 0 or totals["failed"] or totals["error"]:
        return "fail"
    # The single run's rule (artifacts.verdict): nothing passed means nothing was proven.
    if totals["not_verified"] or not totals["passed"]:
        return "not verified"
    return "pass"


def summarize(members: list[Member], started: str, finished: str) -> dict:
    """fleet.json: each cluster's verdict, exit reason, run folder and counts, and every control any
    run reported, against every cluster (a cluster without results is not verified on each)."""
    by_control = {m.cluster: (m.head or {}).get("summary_by_control") or {} for m in members}
    union = {control for table in by_control.values() for control in table}
    controls = {}
    for control in _sorted_controls(union):
        controls[control] = {m.cluster: {"status": control_status(by_control[m.cluster].get(control)),
                                         "counts": dict(by_control[m.cluster].get(control) or {})} for m in members}
    clusters = []
    for member in members:
        environment = (member.head or {}).get("environment") or {}
        statuses = Counter(row[member.cluster]["status"] for row in controls.values())
        clusters.append({
            "cluster": member.cluster,
            "exit_status": member.exit_status,
            "verdict": cluster_verdict(member),
            "reason": member.reason,
            "endpoint": member.endpoint or environment.get("API server"),
            "run_folder": member.run_folder,
            "run_folder_sha256sums": member.sums_sha256,
            "baseline": environment.get("baseline") or member.baseline,
            "baseline_sha256": environment.get("baseline sha256"),
            "fingerprint": environment.get("cluster fingerprint"),
            "server_version": environment.get("server version"),
            "results": (member.head or {}).get("counts"),
            "controls": {s: statuses.get(s, 0) for s in CONTROL_STATUSES},
            "peak_rss_mib": member.peak_rss_mib,
            "seconds": member.seconds,
        })
    verdicts = {c["verdict"] for c in clusters}
    code = fleet_exit(m.exit_status for m in members)
    return {
        "kubeproof_version": kubeproof.__version__,
        "started (UTC)": started,
        "finished (UTC)": finished,
        "exit_status": code,
        "exit_order": EXIT_ORDER,
        "verdict": "pass" if verdicts == {"pass"} else "fail" if "fail" in verdicts else "not verified",
        "clusters": clusters,
        "controls": controls,
    }


def _sorted_controls(controls) -> list[str]:
    """1.2.9 before 1.2.10, as a run's summary by control orders them; "(no CIS id)" last."""
    return sorted(controls, key=lambda c: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in c.split(".")])


def markdown(summary: dict) -> str:
    """fleet.md: the clusters, then the controls against the clusters. Names come from the
    kubeconfig, so every cell is escaped text, never markup."""
    clusters = summary["clusters"]
    lines = [
        f"## kubeproof fleet: {summary['verdict'].upper()}", "",
        f"{len(clusters)} clusters, one after another. Exit status {summary['exit_status']}, the worst of "
        f"theirs ({summary['exit_order']}). Started {summary['started (UTC)']}, finished {summary['finished (UTC)']}.", "",
        "| cluster | exit | verdict | why | " + " | ".join(f"controls {s}" for s in CONTROL_STATUSES) + " | run folder |",
        "|---" * (5 + len(CONTROL_STATUSES)) + "|",
    ]
    for c in clusters:
        lines.append(f"| {_cell(c['cluster'])} | {c['exit_status']} | {c['verdict']} | {_cell(c['reason'])} | "
                     + " | ".join(str(c["controls"][s]) for s in CONTROL_STATUSES)
                     + f" | {_cell(c['run_folder'] or 'none')} |")
    lines += ["", f"### Controls: {len(summary['controls'])}", "",
              "| control | " + " | ".join(_cell(c["cluster"]) for c in clusters) + " |",
              "|---" * (1 + len(clusters)) + "|"]
    for control, row in summary["controls"].items():
        lines.append(f"| {_cell(control)} | " + " | ".join(row[c["cluster"]]["status"] for c in clusters) + " |")
    lines += ["", f"Each cluster's evidence is in its run folder beside this one; {JSON_NAME} holds every count."]
    return "\n".join(lines) + "\n"


STYLE = """body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left}.failed,.fail,.unreachable,.not-audited{background:#f6c6c6}
.not-verified{background:#fbe3b0}.waived,.exempt{background:#e4e4f4}.proved,.pass{background:#cdeccd}"""


def html_page(summary: dict) -> str:
    """fleet.html: the same as fleet.md, self-contained, each run's report linked beside it."""
    def e(value) -> str:
        return html.escape(str(value), quote=True)

    def css(status: str) -> str:
        return e(status.replace(" ", "-"))

    clusters = summary["clusters"]
    rows = []
    for c in clusters:
        link = (f'<a href="../{e(c["run_folder"])}/{e(c["run_folder"])}.html">{e(c["run_folder"])}</a>'
                if c["run_folder"] else "none")
        rows.append(f'<tr><td>{e(c["cluster"])}</td><td>{c["exit_status"]}</td><td class="{css(c["verdict"])}">'
                    f'{e(c["verdict"])}</td><td>{e(c["reason"])}</td><td>{e(c["endpoint"] or "")}</td>'
                    + "".join(f"<td>{c['controls'][s]}</td>" for s in CONTROL_STATUSES)
                    + f"<td>{e(c['baseline'])}</td><td>{link}</td></tr>")
    matrix = []
    for control, row in summary["controls"].items():
        cells = "".join(f'<td class="{css(row[c["cluster"]]["status"])}" title="{e(json.dumps(row[c["cluster"]]["counts"]))}">'
                        f'{e(row[c["cluster"]]["status"])}</td>' for c in clusters)
        matrix.append(f"<tr><td>{e(control)}</td>{cells}</tr>")
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>kubeproof fleet</title><style>{STYLE}</style></head><body>'
        f'<h1>kubeproof fleet: <span class="{css(summary["verdict"])}">{e(summary["verdict"])}</span></h1>'
        f'<p>{len(clusters)} clusters, one after another. Exit status {summary["exit_status"]}, the worst of theirs '
        f'({e(summary["exit_order"])}). Started {e(summary["started (UTC)"])}, finished {e(summary["finished (UTC)"])}; '
        f'kubeproof {e(summary["kubeproof_version"])}.</p>'
        "<table><tr><th>cluster</th><th>exit</th><th>verdict</th><th>why</th><th>API server</th>"
        + "".join(f"<th>controls {s}</th>" for s in CONTROL_STATUSES)
        + "<th>baseline</th><th>run folder</th></tr>" + "".join(rows) + "</table>"
        f"<h2>Controls: {len(summary['controls'])}</h2><table><tr><th>control</th>"
        + "".join(f"<th>{e(c['cluster'])}</th>" for c in clusters) + "</tr>" + "".join(matrix) + "</table>"
        f"<p>Each cluster's evidence is in its run folder beside this one; {JSON_NAME} holds every count.</p>"
        "</body></html>\n"
    )


# -- the run ---------------------------------------------------------------------------------------
def run(config, options: Options, root: Path) -> int:
    """Audits each cluster, then writes the fleet folder; returns the fleet's exit status."""
    def say(text: str) -> None:
        print(f"kubeproof fleet: {text}", flush=True)

    try:
        clusters = plan(options, update_baseline=bool(config.getoption("update_baseline")),
                        compare_with=config.getoption("compare_with"))
    except ConfigError as error:
        print(f"kubeproof: {error}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    started = datetime.datetime.now(datetime.UTC)
    report_dir = Path(config.rootpath, config.getoption("report_dir"))
    folder = RunFolder(report_dir, f"fleet-{started.strftime('%Y%m%dT%H%M%SZ')}")
    try:
        say(f"{len(clusters)} clusters, audited one after another: {', '.join(clusters)}")
        members = []
        for number, cluster in enumerate(clusters, 1):
            baseline = baselines.locate(options.baseline, cluster, root)
            say(f"[{number}/{len(clusters)}] {cluster}, against {baseline}")
            member = audit_one(cluster, config.invocation_params.args, config.invocation_params.dir, report_dir)
            member.baseline = str(baseline)
            say(f"[{number}/{len(clusters)}] {cluster}: exit {member.exit_status}, {cluster_verdict(member)}: {member.reason}")
            members.append(member)
        summary = summarize(members, started.isoformat(timespec="seconds"),
                            datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
        text = markdown(summary)
        folder.write_json(JSON_NAME, summary)
        folder.write_text(MARKDOWN_NAME, text)
        folder.write_text(HTML_NAME, html_page(summary))
        final = folder.finish()
    except BaseException:
        folder.abandon()
        raise
    for c in summary["clusters"]:
        say(f"{c['cluster']}: exit {c['exit_status']}, {c['verdict']}; {c['reason']}"
            + (f"; evidence {report_dir / c['run_folder']}/" if c["run_folder"] else ""))
    append_step_summary(config, text)
    problem = config.stash.get(STEP_SUMMARY_PROBLEM, None)
    if problem:
        print(problem, file=sys.stderr, flush=True)
    say(f"fleet evidence: {final}/ ({JSON_NAME}, {MARKDOWN_NAME}, {HTML_NAME}, {SUMS})")
    say(f"exit status {summary['exit_status']} ({EXIT_MEANING[summary['exit_status']]}), the worst of the "
        f"clusters' ({EXIT_ORDER})")
    return summary["exit_status"]
