"""Writes the measured part of docs/PERFORMANCE.md from bench/benchmark.py's result files: everything
between the `benchmark:begin` and `benchmark:end` markers is replaced; the prose around them is kept.

    .venv/bin/python bench/performance_md.py bench/results/benchmark-summary-<stamp>.json

bench/benchmark.py calls it itself after measuring both sizes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "PERFORMANCE.md"
BEGIN, END = "<!-- benchmark:begin -->", "<!-- benchmark:end -->"
PHASES = ("startup", "connect", "collect", "list (snapshot, inside collect)", "run", "report", "close", "exit")


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _mb(value) -> str:
    return f"{value:.0f} MB" if isinstance(value, (int, float)) else "-"


def _s(value) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) else "-"


def _cell(text: str) -> str:
    """One line of a table cell: no column separators, no tabs, and not too long to read."""
    text = " ".join(str(text).replace("|", "/").split())
    return text if len(text) <= 300 else text[:297] + "..."


def _check(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(summary: dict, results: dict[str, dict], command: str) -> str:
    machine = summary["machine"]
    lines = [BEGIN, "", f"Measured {summary.get('measured', '')} with `{command}`.", "",
             f"Machine: {machine['nproc']} cores ({machine['cpu']}), {machine['memory_gb']} GB, Python {machine['python']}; "
             f"`uptime` before: {machine['uptime']}.", ""]
    lines += ["### The clusters", "", _row("size", "objects written", "fill", "pods made by the controller-manager",
                                            "seeded violations found"), _row(*["---"] * 5)]
    for size, r in results.items():
        fill, pods = r["fill"], r["fill"].get("pods", {})
        e = r["expectations"]
        lines.append(_row(size, fill["writes"], _s(fill["fill_seconds"]), f"{pods.get('pods')} in {_s(pods.get('seconds'))}",
                          f"{e['found']} of {e['expected']} (unexpected failures: {e['unexpected_in_generated']})"))
    lines += ["", "### kubeproof (medians of the runs)", "",
              _row("size", "objects listed", "results", "I/O floor", "audit wall", "audit CPU", "peak RSS", "HTML",
                   "HTML visible in Chromium"), _row(*["---"] * 9)]
    for size, r in results.items():
        a, floor = r["audit"], r["io_floor"]
        objects = sum(k["count"] for k in floor["runs"][0]["per_kind"].values())
        lines.append(_row(size, objects, a["items"], _s(floor["seconds"]), _s(a["wall"]), _s(a["cpu"]), _mb(a["rss_mb"]),
                          _mb(a["html_bytes"] / 1e6), _s(r["browser"]["time_to_visible"])))
    lines += ["", "Phases of the audit (seconds, medians; `list` is inside `collect`):", "",
              _row("size", *PHASES), _row(*["---"] * (len(PHASES) + 1))]
    for size, r in results.items():
        lines.append(_row(size, *(f"{r['audit']['phases'][p]:.1f}" for p in PHASES)))
    lines += ["", "Peak RSS reached by the end of each phase (MB, sampled every 0.25 s):", "",
              _row("size", "connect", "collect", "run", "report", "end"), _row(*["---"] * 6)]
    for size, r in results.items():
        by = r["audit"]["rss_by_phase_mb"]
        lines.append(_row(size, *(f"{by[p]:.0f}" for p in ("connect", "collect", "run", "report", "end"))))
    lines += ["", "### pytest alone, for the same number of trivial tests", "",
              _row("size", "tests", "plain pytest", "with pytest-html and JUnit", "2 x (I/O floor + plain)",
                   "2 x (I/O floor + with reports)", "kubeproof audit"), _row(*["---"] * 7)]
    for size, r in results.items():
        p, floor = r["pytest_alone"], r["io_floor"]["seconds"]
        lines.append(_row(size, p["items"], f"{_s(p['wall'])}, {_mb(p['rss_mb'])}",
                          f"{_s(p['with_reports']['wall'])}, {_mb(p['with_reports']['rss_mb'])}",
                          _s(2 * (floor + p["wall"])), _s(2 * (floor + p["with_reports"]["wall"])), _s(r["audit"]["wall"])))
    lines += ["", "### Peers on the same cluster, in the same run", "",
              _row("size", "tool", "wall", "peak RSS", "wall / kubeproof", "RSS / kubeproof", "outcome"), _row(*["---"] * 7)]
    for size, r in results.items():
        for name, peer in (r.get("peers") or {}).items():
            if "wall" not in peer:
                lines.append(_row(size, name, "-", "-", "-", "-", _cell(peer.get("error", "not run"))))
                continue
            outcome = f"exit {peer.get('exit')}" + (f": {_cell(peer['error'])}" if peer.get("error") else "")
            if name == "trivy" and peer.get("exit") != 0:
                outcome = f"**did not finish**: {outcome}"
            if name == "kube-score":
                outcome += (" (it found critical issues)" if peer.get("exit") == 1 else "") + \
                    f"; scored {peer['export']['objects']} exported objects"
            lines.append(_row(size, name, _s(peer["wall"]), _mb(peer["rss_mb"]), f"{peer['wall'] / r['audit']['wall']:.1f}x",
                              f"{peer['rss_mb'] / r['audit']['rss_mb']:.1f}x", outcome))
    if "small" in results and "large" in results:
        small, large = results["small"], results["large"]
        ratio = large["audit"]["wall"] / small["audit"]["wall"]
        objects = (sum(k["count"] for k in large["io_floor"]["runs"][0]["per_kind"].values())
                   / sum(k["count"] for k in small["io_floor"]["runs"][0]["per_kind"].values()))
        lt = large["targets"]
        lines += ["", "### The targets (issue 6), on `large`", "",
                  _row("target", "measured", ""), _row("---", "---", "---"),
                  _row("audit at most 60 s", _s(lt["audit_wall_s"]), _check(lt["audit_wall_s"] <= 60)),
                  _row("peak RSS at most 600 MB", _mb(lt["audit_rss_mb"]), _check(lt["audit_rss_mb"] <= 600)),
                  _row("within 2 x (I/O floor + pytest's per-test cost), plain pytest",
                       f"{_s(lt['audit_wall_s'])} vs {_s(2 * lt['io_floor_plus_pytest_s'])}",
                       _check(lt["audit_wall_s"] <= 2 * lt["io_floor_plus_pytest_s"])),
                  _row("the same, pytest with pytest-html and JUnit as the audit writes them",
                       f"{_s(lt['audit_wall_s'])} vs {_s(2 * lt['io_floor_plus_pytest_with_reports_s'])}",
                       _check(lt["audit_wall_s"] <= 2 * lt["io_floor_plus_pytest_with_reports_s"])),
                  _row("HTML at most 30 MB", _mb(lt["html_mb"]), _check(lt["html_mb"] <= 30)),
                  _row("summary and failures visible within 5 s", _s(lt["html_time_to_visible_s"]),
                       _check(lt["html_time_to_visible_s"] <= 5)),
                  _row(f"small to large ({objects:.1f}x objects) at most 11x the time", f"{ratio:.1f}x", _check(ratio <= 11))]
    lines += ["", END]
    return "\n".join(lines)


def write(summary_path: Path, command: str) -> None:
    summary = json.loads(summary_path.read_text())
    results = {size: json.loads(Path(path).read_text()) for size, path in summary["files"].items()}
    section = render(summary, results, command)
    text = DOCUMENT.read_text() if DOCUMENT.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOCUMENT}: the markers {BEGIN} and {END} are missing")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOCUMENT.write_text(before + section + after)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    path = Path(sys.argv[1])
    write(path, json.loads(path.read_text()).get("command", ".venv/bin/python bench/benchmark.py"))
