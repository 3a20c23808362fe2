"""How long the API server of a --manifests cluster takes to apply a CRD-heavy set, with its garbage
collector as EmbeddedCluster.for_manifests sets it (GOGC off below GOMEMLIMIT) and with Go's defaults;
and what that costs in memory.

    .venv/bin/python bench/crd_apply.py                          # prometheus-operator-bundle, 2 rounds
    .venv/bin/python bench/crd_apply.py --set gatekeeper-deploy --rounds 3

Each round starts two fresh clusters in turn (limit, then defaults), waits for them to settle, applies
the set with kubeproof.manifests.apply and prints the apply's wall time, the CPU each process of the
cluster used meanwhile, and the API server's resident memory before and after."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests_e2e")]

import corpus  # noqa: E402

from kubeproof import manifests  # noqa: E402
from kubeproof.controlplane import EmbeddedCluster  # noqa: E402


def resident_mb(cluster: EmbeddedCluster, name: str) -> int:
    process = next(p for p in cluster.processes if p.name == name)
    status = Path(f"/proc/{process.popen.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


def cpu_seconds(cluster: EmbeddedCluster) -> dict[str, float]:
    """User and system CPU of each of the cluster's processes so far (/proc/PID/stat fields 14, 15)."""
    found = {}
    for process in cluster.processes:
        fields = Path(f"/proc/{process.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        found[process.name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def one(folder: Path, limit: str | None) -> dict:
    with EmbeddedCluster(profile="hardened", node_count=0, apiserver_memory_limit=limit) as cluster:
        time.sleep(3)  # past the controllers' first sync, as a spare would be
        idle = resident_mb(cluster, "kube-apiserver")
        documents = manifests.load(str(folder), [])
        cpu, began = cpu_seconds(cluster), time.monotonic()
        manifests.apply(cluster, documents)
        seconds = time.monotonic() - began
        used = {name: spent - cpu[name] for name, spent in cpu_seconds(cluster).items()}
        return {"apply": seconds, "idle": idle, "after": resident_mb(cluster, "kube-apiserver"),
                "rejected": sum(d.outcome == "rejected" for d in documents),
                "cpu": ", ".join(f"{name} {spent:.2f}" for name, spent in used.items() if spent >= 0.01)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="prometheus-operator-bundle", help="a set of tests_e2e/corpus.py")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    config_set = next((s for s in corpus.SETS if s.name == args.set), None)
    if config_set is None:
        print(f"crd_apply: --set {args.set}: not in tests_e2e/corpus.py", file=sys.stderr)
        return 2
    folder = corpus.fetch(config_set, Path(tempfile.mkdtemp(prefix="kubeproof-crd-")))
    limit = EmbeddedCluster.for_manifests().apiserver_memory_limit
    runs: dict[str, list[dict]] = {f"GOGC=off GOMEMLIMIT={limit}": [], "Go defaults": []}
    for _ in range(args.rounds):
        for label, setting in zip(runs, (limit, None), strict=True):
            result = one(folder, setting)
            runs[label].append(result)
            print(f"{label}: apply {result['apply']:.2f} s, API server {result['idle']} MB idle, "
                  f"{result['after']} MB after, {result['rejected']} rejected; CPU seconds during the apply: "
                  f"{result['cpu']}", flush=True)
    for label, results in runs.items():
        print(f"{label}: median apply {statistics.median(r['apply'] for r in results):.2f} s over {len(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
