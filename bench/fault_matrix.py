"""The full fault-injection matrix: every fault the proxy injects x every target the suite asks the
API server, one suite run per pair, against a seeded embedded cluster audited as a live cluster.

    .venv/bin/python bench/fault_matrix.py              # every pair; prints the table and the result
    .venv/bin/python bench/fault_matrix.py --jobs 1     # one run at a time (default: two, each through its own proxy)
    .venv/bin/python bench/fault_matrix.py --targets "list roles,dry-run pod" --faults 500,corrupt

Each pair runs the suite's test functions that depend on the target (by the run without faults;
--whole-suite runs all of tests_cluster for every pair instead). Writes bench/results/fault-matrix.json
and exits 1 when any pair produced a false pass or broke a rule (see tests_e2e/faults.py)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests_e2e"))
sys.path.insert(0, str(ROOT))

import faults  # noqa: E402
from faultproxy import FAULTS  # noqa: E402

from kubeproof.controlplane import EmbeddedCluster  # noqa: E402

COLUMNS = (*FAULTS, *faults.CONTINUE_FAULTS)
SHORT = {"not verified": "NV", "run stopped (exit 2)": "exit 2", "run stopped (exit 3)": "exit 3", "not asked": "-",
         "passed": "pass"}


def cell(verdict: faults.Verdict | None) -> str:
    if verdict is None:
        return "n/a"
    text = SHORT.get(verdict.outcome) or verdict.outcome.replace("not verified", "NV").replace("skipped", "skip")
    if verdict.false_passes:
        text += f" **{len(verdict.false_passes)} FALSE PASS**"
    if verdict.problems:
        text += " (!)"
    if verdict.indistinguishable:
        text += " (=)"
    return text


def table(verdicts: list[faults.Verdict]) -> str:
    found = {(v.target, v.fault): v for v in verdicts}
    lines = ["| target | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in faults.TARGETS:
        lines.append(f"| {name} | " + " | ".join(cell(found.get((name, f))) for f in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="suite runs at a time, each through its own proxy (default 2)")
    parser.add_argument("--targets", help="comma-separated target names (default: all)")
    parser.add_argument("--faults", help="comma-separated faults (default: all)")
    parser.add_argument("--whole-suite", action="store_true", help="run all of tests_cluster for every pair")
    parser.add_argument("--out", default=str(ROOT / "bench/results/fault-matrix.json"))
    options = parser.parse_args(argv)
    chosen_targets = [faults.TARGETS[t.strip()] for t in options.targets.split(",")] if options.targets else list(faults.TARGETS.values())
    chosen_faults = set(options.faults.split(",")) if options.faults else None
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="kubeproof-fault-matrix-"))
    proxies = []
    try:
        with EmbeddedCluster(profile="hardened") as cluster:
            faults.seed(cluster)
            proxies = [faults.start_proxy(cluster) for _ in range(max(1, options.jobs))]
            clean = faults.run_suite(proxies[0], work / "clean")
            if clean.returncode not in (0, 1) or not clean.results:
                print(clean.output[-3000:])
                print("the run without faults did not finish; nothing to compare against")
                return 2
            seen = list(proxies[0].seen)
            print(f"run without faults: exit {clean.returncode}, {len(clean.records())} results, {clean.seconds:.1f} s", flush=True)
            pairs = [(f, t) for t in chosen_targets for f in t.faults(full=True) if not chosen_faults or f in chosen_faults]

            def progress(done: int, total: int, verdict: faults.Verdict) -> None:
                flag = (" FALSE PASS: " + ", ".join(verdict.false_passes[:3])) if verdict.false_passes else ""
                flag += (" PROBLEMS: " + "; ".join(verdict.problems)) if verdict.problems else ""
                print(f"[{done}/{total}] {verdict.fault} x {verdict.target}: {verdict.outcome} ({verdict.seconds:.1f} s){flag}",
                      flush=True)

            verdicts = faults.run_pairs(proxies, pairs, clean, seen, work, options.whole_suite, on_verdict=progress)
    finally:
        for proxy in proxies:
            proxy.stop()
        shutil.rmtree(work, ignore_errors=True)
    wall = time.monotonic() - began
    summary = faults.summary(verdicts)
    summary.update(wall_seconds=round(wall, 1), jobs=options.jobs, whole_suite=options.whole_suite,
                   sibling_passes=sum(v.sibling_passes for v in verdicts))
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "verdicts": [v.to_dict() for v in verdicts]}, indent=1) + "\n")
    print()
    print(table(verdicts))
    print()
    print(f"pairs: {summary['pairs']}, tried: {summary['pairs_tried']}, not asked: {len(summary['not_asked'])}, "
          f"false passes: {summary['false_passes']}, pairs with problems: {len(summary['pairs_with_problems'])}, "
          f"wall time: {wall / 60:.1f} min; verdicts in {out}")
    return 1 if summary["false_passes"] or summary["pairs_with_problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
