"""The run folder: every artifact of one run, written under a temporary name and renamed when the
run completes, with SHA256SUMS over all of them (check with `sha256sum -c SHA256SUMS` inside it)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

from kubeproof.evidence import outcome_counts

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
        items = record.findings if record.findings and record.status != "not_verified" else [None]
        for finding in items:
            obj = (finding or {}).get("object") or record.object or {}
            text = (f"{_name(obj)}: {finding['path']} is {finding['observed']!r}; expected {finding['expected']}"
                    if finding else f"not verified: {record.reason}")
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


def _name(obj: dict) -> str:
    return "/".join(str(p) for p in (obj.get("kind"), obj.get("namespace"), obj.get("name")) if p)


def _location(obj: dict, sources: dict) -> dict:
    source = sources.get((obj.get("kind"), obj.get("namespace"), obj.get("name")))
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
    findings = "\n".join(f"{_name(f.get('object') or {})}: {f['path']} is {f['observed']!r}; expected {f['expected']}"
                         for f in record.findings)
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
