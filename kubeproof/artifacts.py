"""The run folder: every artifact of one run, written under a temporary name and renamed when the
run completes, with SHA256SUMS over all of them (check with `sha256sum -c SHA256SUMS` inside it)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree

from kubeproof.evidence import LABELS, STATUSES, counts_by_practice, outcome_counts
from kubeproof.practices import PRACTICES

SUMS = "SHA256SUMS"


class RunFolder:
    def __init__(self, report_dir: Path, stem: str):
        report_dir.mkdir(parents=True, exist_ok=True)
        # Two runs of one cluster within the same second share a timestamp: the second takes -2, -3...
        for attempt in range(1, 1000):
            self.stem = stem if attempt == 1 else f"{stem}-{attempt}"
            self.final = report_dir / self.stem
            self.partial = report_dir / f".{self.stem}.partial"
            if self.final.exists():
                continue
            try:
                self.partial.mkdir()
                return
            except FileExistsError:
                continue
        raise FileExistsError(f"{report_dir}: no free run folder name for {stem}")

    @property
    def html(self) -> Path:
        return self.partial / f"{self.stem}.html"

    @property
    def junit(self) -> Path:
        return self.partial / "junit.xml"

    def write_json(self, name: str, data) -> None:
        (self.partial / name).write_text(json.dumps(data, indent=1, default=str) + "\n")

    def write_text(self, name: str, text: str) -> None:
        (self.partial / name).write_text(text, encoding="utf-8")

    def write_json_rows(self, name: str, head: dict, key: str, rows) -> None:
        """`head` with `key` last, holding `rows` written one per line as they come: a large run's
        results are never all in memory as JSON at once."""
        text = json.dumps({**head, key: []}, indent=1, default=str)
        marker = f'"{key}": []\n}}'
        if not text.endswith(marker):
            raise ValueError(f"{key} must be the last key of {name}")
        with (self.partial / name).open("w") as out:
            out.write(text[: -len(marker)] + f'"{key}": [')
            for number, row in enumerate(rows):
                out.write(("," if number else "") + "\n  " + json.dumps(row, default=str))
            out.write("\n ]\n}\n")

    def finish(self) -> Path:
        lines = []
        for path in sorted(p for p in self.partial.iterdir() if p.is_file() and p.name != SUMS):
            with path.open("rb") as artifact:
                digest = hashlib.file_digest(artifact, "sha256").hexdigest()
            lines.append(f"{digest}  {path.name}\n")
        (self.partial / SUMS).write_text("".join(lines))
        self.partial.rename(self.final)
        return self.final

    def abandon(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


def listed_digests(folder: Path) -> dict[str, str]:
    """File name -> SHA-256, as a sealed run folder's SHA256SUMS lists them. OSError when it cannot be
    read, ValueError (UnicodeDecodeError) when it is not text."""
    return dict(reversed(line.split("  ", 1)) for line in (folder / SUMS).read_text().splitlines() if "  " in line)


def sarif_log(records: list, version: str, sources: dict) -> dict:
    """SARIF 2.1.0: one rule per test, one result per finding (and per result not verified).
    `sources` maps (kind, namespace, name) to (file, line) for objects that came from manifests."""
    rules, results = {}, []
    levels = {"failed": "error", "waived": "note", "accepted": "note", "not_verified": "warning"}
    for record in records:
        if record.status not in levels:
            continue
        rules.setdefault(record.test, {
            "id": record.test,
            "name": record.test,
            "shortDescription": {"text": record.test.removeprefix("test_").replace("_", " ")},
            "properties": {"controls": record.controls, "practice": record.practice},
        })
        for finding, obj in _entries(record):
            text = finding_text(finding, obj) if finding else f"not verified: {record.reason}"
            result = {"ruleId": record.test, "level": levels[record.status], "message": {"text": text},
                      "locations": [_location(obj, sources)],
                      "properties": {"controls": (finding or {}).get("controls") or record.controls.get("cis", []),
                                     "status": record.status}}
            if finding:
                result["properties"]["remediation"] = finding["remediation"]
            if record.status in ("waived", "accepted"):
                result["suppressions"] = [{"kind": "external", "justification": record.reason}]
            results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "kubeproof", "version": version, "rules": list(rules.values())}},
                  "results": results}],
    }


def _entries(record):
    """(finding, object) per finding of a result, or (None, its object) for a result with none or
    not verified: what SARIF and summary.md each give one entry."""
    items = record.findings if record.findings and record.status != "not_verified" else [None]
    for finding in items:
        yield finding, (finding or {}).get("object") or record.object or {}


def _name(obj: dict) -> str:
    return "/".join(str(p) for p in (obj.get("kind"), obj.get("namespace"), obj.get("name")) if p)


def finding_text(finding: dict, obj: dict) -> str:
    """One finding in one line, as SARIF, JUnit and summary.md all say it: names, paths and the
    values checks chose to report (checks report no secret value), nothing from the evidence."""
    return f"{_name(obj)}: {finding['path']} is {finding['observed']!r}; expected {finding['expected']}"


def source_of(obj: dict, sources: dict) -> tuple[str, int] | None:
    """The manifest file and line an object came from (--manifests), or None."""
    return sources.get((obj.get("kind"), obj.get("namespace"), obj.get("name")))


def _location(obj: dict, sources: dict) -> dict:
    source = source_of(obj, sources)
    if source:
        return {"physicalLocation": {"artifactLocation": {"uri": source[0]}, "region": {"startLine": source[1]}}}
    return {"logicalLocations": [{"fullyQualifiedName": _name(obj) or "cluster", "kind": "resource"}]}


def write_junit(path: Path, records: list, *, strict: bool, started: str, seconds: float, hostname: str) -> None:
    """JUnit XML from the records, one testcase at a time, counted as every other artifact counts:
    waived and accepted results are skipped as pytest.xfail, not-verified ones skipped (failures
    with --strict). kubeproof writes it itself: pytest's writer kept every testcase's XML tree until
    the end (60 MB at 34,000 results)."""
    from xml.etree import ElementTree


    counts = outcome_counts(records, strict=strict)
    suite = ElementTree.Element("testsuite", name="kubeproof", errors=str(counts["error"]), failures=str(counts["failed"]),
                                skipped=str(counts["skipped"] + counts["xfailed"]), tests=str(counts["tests"]),
                                time=f"{seconds:.3f}", timestamp=started, hostname=hostname)
    opening = ElementTree.tostring(suite, encoding="unicode").removesuffix(" />") + ">"
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="kubeproof">' + opening)
        for record in records:
            out.write(ElementTree.tostring(_testcase(record, strict), encoding="unicode"))
        out.write("</testsuite></testsuites>\n")


def _testcase(record, strict: bool) -> ElementTree.Element:
    module, _, name = record.nodeid.partition("::")
    case = ElementTree.Element("testcase", classname=module.removesuffix(".py").replace("/", "."), name=name,
                               time=f"{record.seconds:.3f}")
    controls = [(framework, ", ".join(ids)) for framework, ids in record.controls.items() if ids]
    if controls:
        properties = ElementTree.SubElement(case, "properties")
        for framework, ids in controls:
            ElementTree.SubElement(properties, "property", name=framework, value=ids)
    findings = "\n".join(finding_text(f, f.get("object") or {}) for f in record.findings)
    text = "\n".join(p for p in (findings, record.reason) if p)
    first = text.splitlines()[0][:500] if text else record.status
    if record.status == "failed" or (record.status == "not_verified" and strict):
        ElementTree.SubElement(case, "failure", message=first).text = text
    elif record.status == "error":
        ElementTree.SubElement(case, "error", message=first).text = text
    elif record.status in ("waived", "accepted"):
        ElementTree.SubElement(case, "skipped", type="pytest.xfail", message=first)
    elif record.status in ("not_verified", "skipped"):
        ElementTree.SubElement(case, "skipped", type="pytest.skip", message=first)
    return case


# -- summary.md: the run in a page of Markdown (also what CI's step summary shows) --------------------
SUMMARY = "summary.md"
LISTED = 50  # entries per list: the rest are counted, and the HTML holds them all
TEXT_LIMIT = 300  # characters per entry: observed values can be long lists


def verdict(records: list, exitstatus: int, strict: bool) -> str:
    """pass, fail or not verified. It agrees with the exit status: anything that made the run exit
    non-zero fails it; a run with results nobody could prove, or that proved nothing (no results,
    or none passed: every one exempt, waived or accepted), is not a pass."""
    counts = outcome_counts(records, strict=strict)
    if int(exitstatus) != 0 or counts["failed"] or counts["error"]:
        return "fail"
    if any(r.status == "not_verified" for r in records) or not any(r.status == "passed" for r in records):
        return "not verified"
    return "pass"


def summary_markdown(records: list, *, exitstatus: int, strict: bool, sources: dict, html_name: str,
                     described: dict | None = None, limit: int = LISTED) -> str:
    """The run as Markdown: verdict, counts by practice, and each failure and not-verified result
    with where it came from (the manifest's file:line, else the object and the test). Only what the
    HTML and results.json already say is used: finding texts and reasons, never the evidence."""
    counts = outcome_counts(records, strict=strict)
    about = [f"{key} {_code(value)}" for key, value in (described or {}).items()
             if key in ("cluster", "backend", "baseline") and value]
    lines = [
        f"## kubeproof: {verdict(records, exitstatus, strict).upper()}", "",
        "; ".join(about) + (". " if about else "") + f"Exit status {int(exitstatus)}. {counts['tests']} results: "
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, {counts['skipped']} skipped "
        f"(not verified{'' if strict else ' or exempt'}), {counts['xfailed']} waived or accepted"
        f"{'; --strict fails not verified results' if strict else ''}.", "",
        *_practice_table(records), "",
    ]
    failing = [r for r in records if r.status in ("failed", "error")]
    unproven = [r for r in records if r.status == "not_verified"]
    lines += _listed("Failures", failing, sources, limit, html_name)
    lines += _listed("Not verified (never a pass)", unproven, sources, limit, html_name)
    lines.append(f"Every result, with its evidence: {_code(html_name)} and results.json in the run folder.")
    return "\n".join(lines) + "\n"


def _practice_table(records: list) -> list[str]:
    shown = [s for s in STATUSES if s != "error" or any(r.status == "error" for r in records)]
    rows = ["| practice | " + " | ".join(LABELS[s] for s in shown) + " |", "|---" * (len(shown) + 1) + "|"]
    total = {s: 0 for s in shown}
    for practice, counts in counts_by_practice(records).items():
        rows.append(f"| {_cell(PRACTICES.get(practice, practice))} | " + " | ".join(str(counts.get(s, 0)) for s in shown) + " |")
        for s in shown:
            total[s] += counts.get(s, 0)
    rows.append("| **total** | " + " | ".join(f"**{total[s]}**" for s in shown) + " |")
    return rows


def _summary_entry(record, finding: dict | None, obj: dict, sources: dict) -> str:
    """`- file:line Kind/ns/name: what was found (test `x`, its file)`; the file and line only for
    objects from manifests."""
    source = source_of(obj, sources)
    where = f"{_code(f'{source[0]}:{source[1]}')} " if source else ""
    text = finding_text(finding, obj) if finding else f"{_name(obj) or '(cluster)'}: {record.reason or record.status}"
    return f"- {where}{_code(text)} (test {_code(record.test)} in {_code(record.nodeid.partition('::')[0])})"


def _listed(title: str, records: list, sources: dict, limit: int, html_name: str) -> list[str]:
    """A heading with the number of results, then an entry per finding (or per result without
    findings), at most `limit` of them: a large run's summary stays a page, not megabytes."""
    if not records:
        return []
    lines = [f"### {title}: {len(records)}", ""]
    shown = 0
    for record in records:
        for finding, obj in _entries(record):
            shown += 1
            if shown <= limit:  # past it only counted: 27,000 entries are not formatted to be dropped
                lines.append(_summary_entry(record, finding, obj, sources))
    if shown > limit:
        lines.append(f"- ... and {shown - limit} more; see {_code(html_name)}")
    return lines + [""]


def _one_line(value) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 3] + "..."


def _code(value) -> str:
    """Text from the cluster or a repository as a Markdown code span: shown as it is, never read as
    markup or HTML. One line and bounded; the fence is longer than any run of backticks inside."""
    text = _one_line(value) or " "
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(value) -> str:
    """A table cell of our own text (practice names): one line, no cell break, no markup."""
    return "".join("\\" + c if c in "\\`*_[]|<>&~" else c for c in _one_line(value))
