"""Pod Security at scale: kubeproof's evaluator against the API server's PodSecurity admission.

    python bench/psa_differential.py --count 10000

starts a hardened embedded cluster, and for each level (baseline, restricted) runs --count
generated objects (by default 60 % Pods, 20 % workloads, 20 % ephemeral containers; see
tests_e2e/psa_strategies.py) through both, each at the pinned policy versions v1.24, v1.28, v1.31,
v1.35 and latest, one version drawn from v1.0-v1.37, and both sides of every upstream policy
boundary its fields concern (tests_e2e/psa_lab.py). It prints, per
level and kind, the objects compared, the objects discarded because the API server's validation
refused them, the comparisons, the disagreements and the wall time, and writes the same as JSON
to bench/results/psa-differential-<UTC time>.json (with the first disagreeing objects, if any).
Exit status 1 if any disagreement was found.

Unlike the test, a disagreement does not stop the run: every one is counted and kept.
Generation is seeded (--seed), so a run can be repeated.

    python bench/psa_differential.py --mutants 300

measures the harness instead: it runs 300 pods per level against copies of the evaluator that are
each wrong by one policy version at one upstream boundary, and reports how many disagreements
each wrong copy caused (0 would mean the comparison cannot see that mistake).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests_e2e")]

import psa_lab  # noqa: E402
import psa_strategies  # noqa: E402
from hypothesis import HealthCheck, Phase, given, reject, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kubeproof.controlplane import EmbeddedCluster  # noqa: E402

KINDS = ("pods", "workloads", "ephemeral")
STATS_KEY = {"pods": "Pod", "workloads": "workload", "ephemeral": "ephemeral"}


def _split(text: str) -> dict[str, int]:
    shares = {}
    for part in text.split(","):
        kind, _, share = part.partition("=")
        if kind not in KINDS or not share.isdigit():
            raise argparse.ArgumentTypeError(f"--split expects e.g. pods=60,workloads=20,ephemeral=20, got {text!r}")
        shares[kind] = int(share)
    if sum(shares.values()) <= 0:
        raise argparse.ArgumentTypeError("--split shares must add up to more than 0")
    return shares


def _counts(total: int, shares: dict[str, int]) -> dict[str, int]:
    whole = sum(shares.values())
    counts = {kind: total * shares.get(kind, 0) // whole for kind in KINDS}
    counts[max(shares, key=shares.get)] += total - sum(counts.values())
    return counts


def _run(lab: psa_lab.Lab, level: str, kind: str, count: int, run_seed: int) -> None:
    if kind == "ephemeral":
        strategy = psa_strategies.ephemeral_cases()

        def compare(case, version):
            lab.compare_ephemeral(case[0], case[1], level, version)
    else:
        strategy = psa_strategies.pods() if kind == "pods" else psa_strategies.workloads()

        def compare(obj, version):
            lab.compare(obj, level, version)

    @seed(run_seed)
    @settings(max_examples=count, deadline=None, database=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck))
    @given(obj=strategy, version=st.sampled_from(psa_lab.ALL_VERSIONS))
    def one(obj, version):
        try:
            compare(obj, version)  # disagreements are recorded in lab.stats, not raised
        except psa_lab.Discard:
            reject()

    one()


def _shifted(real, check_id: str, version: str, behaves_as: str):
    """The evaluator `real`, except that `check_id` at `version` behaves as at `behaves_as`."""

    def wrong(obj, level, at="latest"):
        found = real(obj, level, at)
        if at == version:
            found = [v for v in found if v.check_id != check_id]
            found += [v for v in real(obj, level, behaves_as) if v.check_id == check_id]
        return found

    return wrong


# One-version mistakes at upstream boundaries: (name, check id, version, behaves as).
MUTANTS = (
    ("allowPrivilegeEscalation from 1.9", "allowPrivilegeEscalation", "v1.8", "v1.7"),
    ("seccomp fields from 1.20", "seccompProfile_baseline", "v1.19", "v1.18"),
    ("restricted capabilities from 1.21", "capabilities_restricted", "v1.21", "v1.22"),
    ("Windows exemption from 1.26", "allowPrivilegeEscalation", "v1.25", "v1.24"),
    ("container_engine_t from 1.32", "seLinuxOptions", "v1.31", "v1.30"),
    ("probe hosts from 1.33", "hostProbesAndHostLifecycle", "v1.33", "v1.34"),
    ("user-namespace relaxation from 1.36", "runAsUser", "v1.35", "v1.34"),
    ("1.37 sysctls already at 1.36", "sysctls", "v1.36", "v1.37"),
)


def _measure_mutants(lab: psa_lab.Lab, levels, count: int, run_seed: int) -> dict:
    real = psa_lab.evaluate
    found = {}
    try:
        for name, check_id, version, behaves_as in MUTANTS:
            psa_lab.evaluate = _shifted(real, check_id, version, behaves_as)
            found[name] = {}
            for level in levels:
                lab.stats[level]["Pod"] = psa_lab.Stats()
                _run(lab, level, "pods", count, run_seed)
                found[name][level] = lab.stats[level]["Pod"].disagreements
            print(f"{name:38} disagreements {found[name]}", flush=True)
    finally:
        psa_lab.evaluate = real
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/psa_differential.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="generated objects per level (default 1000)")
    parser.add_argument("--split", type=_split, default=_split("pods=60,workloads=20,ephemeral=20"),
                        help="how the objects divide between kinds (default pods=60,workloads=20,ephemeral=20)")
    parser.add_argument("--levels", nargs="+", choices=psa_lab.LEVELS, default=list(psa_lab.LEVELS))
    parser.add_argument("--seed", type=int, default=20240501, help="generation seed (default 20240501)")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--mutants", type=int, metavar="N",
                        help="instead: N pods per level against each one-version-wrong evaluator")
    args = parser.parse_args(argv)
    counts = _counts(args.count, args.split)

    began = time.monotonic()
    started = datetime.datetime.now(datetime.UTC)
    report = {
        "command": "python bench/psa_differential.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "seed": args.seed, "count_per_level": args.count, "split": counts,
        "pinned_versions": list(psa_lab.PINNED_VERSIONS),
        "upstream_boundaries": list(psa_lab.UPSTREAM_BOUNDARIES), "levels": {},
    }
    with EmbeddedCluster(profile="hardened") as cluster:
        report["kubernetes"] = cluster.binaries.kubernetes_version
        lab = psa_lab.Lab(cluster, levels=tuple(args.levels)).prepare()
        report["setup_seconds"] = round(time.monotonic() - began, 1)
        print(f"embedded cluster {report['kubernetes']} ready with {len(lab.versions)} policy versions per level "
              f"in {report['setup_seconds']} s", flush=True)
        if args.mutants:
            report["mutants"] = _measure_mutants(lab, args.levels, args.mutants, args.seed)
            report["wall_seconds"] = round(time.monotonic() - began, 1)
            missed = [name for name, levels in report["mutants"].items() if not any(levels.values())]
            print(f"mutants missed: {missed or 'none'}; wall time {report['wall_seconds']} s")
            _write(args.results, started, report, "psa-mutants")
            return 1 if missed else 0
        for level in args.levels:
            level_report = report["levels"][level] = {}
            for kind in KINDS:
                if not counts[kind]:
                    continue
                kind_began = time.monotonic()
                _run(lab, level, kind, counts[kind], args.seed)
                stats = lab.stats[level][STATS_KEY[kind]]
                seconds = round(time.monotonic() - kind_began, 1)
                level_report[kind] = {**stats.summary(), "wall_seconds": seconds, "failures": stats.failures[:20]}
                print(f"{level:10} {kind:9} objects {stats.examples:6}  discarded {stats.discards:5} "
                      f"({stats.discard_rate:.2%})  comparisons {stats.comparisons:6}  denied {stats.denied:6}  "
                      f"disagreements {stats.disagreements}  {seconds} s", flush=True)
    report["wall_seconds"] = round(time.monotonic() - began, 1)
    totals = {key: sum(kind[key] for level in report["levels"].values() for kind in level.values())
              for key in ("examples", "discards", "comparisons", "disagreements")}
    report["totals"] = totals
    print(f"total: objects {totals['examples']}, discarded {totals['discards']}, comparisons "
          f"{totals['comparisons']}, disagreements {totals['disagreements']}, wall time {report['wall_seconds']} s")
    _write(args.results, started, report, "psa-differential")
    return 1 if totals["disagreements"] else 0


def _write(folder: Path, started: datetime.datetime, report: dict, stem: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{stem}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"written to {out}")


if __name__ == "__main__":
    sys.exit(main())
