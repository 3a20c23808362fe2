"""The kind lane's costs on this machine: the node image (warm: from the cache), the engine's start,
each cluster's `make kind-up`, each cluster's audit, and the disk the lane keeps.

    .venv/bin/python bench/kind_lane.py            # writes docs/PERFORMANCE.md between the kind markers
    .venv/bin/python bench/kind_lane.py --no-docs

Clusters that exist already are deleted first, so kind-up is measured from nothing but the cached
image; what the run created it deletes again, and an engine it started it stops. The cold build (no
Go module cache, no kubeproof cache) is measured separately, by the command docs/PERFORMANCE.md gives,
since it takes most of an hour."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubeproof.controlplane import build  # noqa: E402
from kubeproof.kind import clusters, engine, nodeimage  # noqa: E402

DOCUMENT = ROOT / "docs" / "PERFORMANCE.md"
BEGIN, END = "<!-- kind:begin -->", "<!-- kind:end -->"


def _timed(action):
    started = time.monotonic()
    value = action()
    return time.monotonic() - started, value


def _du(path: Path) -> int:
    done = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True)
    return int(done.stdout.split()[0]) if done.returncode == 0 and done.stdout else 0


def audit(cluster: str) -> dict:
    with tempfile.TemporaryDirectory() as reports:
        seconds, done = _timed(lambda: subprocess.run(
            [sys.executable, "-m", "pytest", "tests_cluster", f"--cluster=kind-{cluster}", "-q", "-p", "no:cacheprovider",
             f"--report-dir={reports}"], cwd=ROOT, capture_output=True, text=True))
        results = sorted(Path(reports).glob("*/results.json"))
        counts = json.loads(results[-1].read_text())["counts"] if results else {}
    return {"seconds": round(seconds, 1), "exit": done.returncode, "counts": counts}


def measure() -> dict:
    load = os.getloadavg()[0]
    engine_seconds, started = _timed(engine.start)
    image_seconds, image = _timed(nodeimage.ensure_image)
    clusters.down()
    created = {}
    for name in clusters.CLUSTERS:
        created[name] = round(_timed(lambda name=name: clusters.up(names=(name,)))[0], 1)
    audits = {name: audit(name) for name in clusters.CLUSTERS}
    down_seconds = _timed(clusters.down)[0]
    disk = {"node image caches": _du(build.cache_root() / "kind"), "engine state": _du(engine.state_folder())}
    if started.started_here:
        engine.stop()
    return {
        "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"), "load": round(load, 2),
        "engine": {"version": started.version, "started_here": started.started_here, "seconds": round(engine_seconds, 1)},
        "image": {"tag": image.tag, "seconds": round(image_seconds, 1)},
        "kind_up": created, "audits": audits, "down_seconds": round(down_seconds, 1), "disk_bytes": disk,
    }


def markdown(result: dict) -> str:
    gib = lambda n: f"{n / 2**30:.1f} GiB"  # noqa: E731
    rows = [f"| `make kind-up`: {name} | {seconds} s |" for name, seconds in result["kind_up"].items()]
    for name, run in result["audits"].items():
        counts = run["counts"]
        rows.append(f"| `pytest --cluster=kind-{name}` | {run['seconds']} s (exit {run['exit']}; {counts.get('passed', 0)} passed, "
                    f"{counts.get('failed', 0)} failed, {counts.get('xfailed', 0)} waived) |")
    engine_line = (f"Debian's dockerd {result['engine']['version']} started in {result['engine']['seconds']} s"
                   if result["engine"]["started_here"] else f"the running engine ({result['engine']['version']})")
    return "\n".join([
        f"Measured {result['when']} with `python bench/kind_lane.py` (load average {result['load']}); "
        f"{engine_line}; the node image {result['image']['tag']} ready (built or found) in {result['image']['seconds']} s.",
        "", "| step | wall |", "|---|---|", *rows,
        f"| `make kind-down` (both) | {result['down_seconds']} s |", "",
        f"Disk kept: node image caches {gib(result['disk_bytes']['node image caches'])}, "
        f"engine state (images, the clusters' volumes while they run) {gib(result['disk_bytes']['engine state'])}.",
    ])


def write_docs(result: dict) -> None:
    text = DOCUMENT.read_text()
    block = f"{BEGIN}\n\n{markdown(result)}\n\n{END}"
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## The kind lane (bench/kind_lane.py)\n\n" + block + "\n"
    DOCUMENT.write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/PERFORMANCE.md")
    options = parser.parse_args(argv)
    result = measure()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"kind-lane-{int(time.time())}.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))
    if not options.no_docs:
        write_docs(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
