"""Accepted findings, for the ratchet: `--update-baseline` records today's findings beside the
baseline; `--fail-on=new` then fails only on findings that are not recorded, and reports the
recorded ones that are gone so the record can shrink.

A finding is identified by the test, the object and the field path, not by the observed value, so a
finding whose value drifts (one more policy, another image tag) is still the same finding."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
from pathlib import Path

import yaml


class AcceptedFileError(Exception):
    pass


def fingerprint(test: str, finding: dict) -> str:
    obj = finding.get("object") or {}
    key = [test, obj.get("kind"), obj.get("namespace"), obj.get("name"), finding.get("path"), sorted(finding.get("controls") or [])]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def accepted_path(baseline_path: str) -> Path:
    path = Path(baseline_path)
    return path.with_name(f"{path.stem}.accepted.yaml")


def load(path: Path) -> dict[str, dict]:
    """fingerprint -> entry; a missing file is an empty record."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise AcceptedFileError(f"{where}: not valid YAML") from None
    entries = (data or {}).get("accepted_findings") if isinstance(data, dict) else None
    if entries is None:
        return {}
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("fingerprint"), str) for e in entries):
        raise AcceptedFileError(f"{path}: accepted_findings must be a list of entries with a fingerprint")
    return {e["fingerprint"]: e for e in entries}


def save(path: Path, records: list, previous: dict[str, dict]) -> int:
    """Writes every current finding as accepted, keeping the date each was first recorded."""
    today = datetime.date.today().isoformat()
    entries = []
    for record in records:
        for finding in record.findings:
            mark = fingerprint(record.test, finding)
            obj = finding["object"]
            entries.append({
                "fingerprint": mark,
                "test": record.test,
                "controls": finding["controls"],
                "object": "/".join(p for p in (obj.get("kind"), obj.get("namespace"), obj.get("name")) if p),
                "path": finding["path"],
                "recorded": (previous.get(mark) or {}).get("recorded", today),
            })
    entries.sort(key=lambda e: (e["test"], e["object"], e["path"]))
    text = "# Findings accepted for the ratchet (--fail-on=new). Written by --update-baseline; shrink it as findings are fixed.\n"
    text += yaml.safe_dump({"accepted_findings": entries}, sort_keys=False)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.replace(temporary, path)
    return len(entries)
