"""The CIS Kubernetes Benchmark 1.12 control list, kept as the project's own data: each control's id,
section, group and whether the benchmark scores it Automated or Manual. No benchmark text is kept;
the ids are the reference an auditor looks up."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "cis-1.12-controls.json"


def id_key(control_id: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in control_id.split("."))


@lru_cache(maxsize=1)
def controls() -> tuple[dict, ...]:
    """Every control, in benchmark order, as {"id", "section", "group", "type"}."""
    document = json.loads(DATA.read_text(encoding="utf-8"))
    return tuple(sorted(document["controls"], key=lambda c: id_key(c["id"])))


def ids() -> frozenset[str]:
    return frozenset(c["id"] for c in controls())


def automated() -> frozenset[str]:
    return frozenset(c["id"] for c in controls() if c["type"] == "automated")
