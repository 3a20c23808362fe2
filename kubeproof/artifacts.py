"""The run folder: every artifact of one run, written under a temporary name and renamed when the
run completes, with SHA256SUMS over all of them (check with `sha256sum -c SHA256SUMS` inside it)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

SUMS = "SHA256SUMS"


class RunFolder:
    def __init__(self, report_dir: Path, stem: str):
        self.stem = stem
        self.final = report_dir / stem
        self.partial = report_dir / f".{stem}.partial"
        self.partial.mkdir(parents=True, exist_ok=False)

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
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
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
