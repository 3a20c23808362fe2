"""The node checks at scale: an embedded cluster with 20 real kubelets, audited by the node tests
(tests_cluster/test_kubelet.py and test_node_files.py); then the same cluster with 5,000 more Node
objects whose kubelet port accepts a connection and never answers (the slow way a dead node fails:
no refusal, just silence), audited again. Wall time and peak memory of both audits, and the
difference, go to bench/results/nodes-<stamp>.json and to docs/PERFORMANCE.md between the
`nodes:begin` and `nodes:end` markers.

    .venv/bin/python bench/nodes.py                    # 20 kubelets, 5,000 dead nodes
    .venv/bin/python bench/nodes.py --kubelets 4 --dead 500   # a quick look

Traffic stays on loopback: the dead nodes all point at one listener of this process on 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubeproof.controlplane import EmbeddedCluster  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
SUITE = ("tests_cluster/test_kubelet.py", "tests_cluster/test_node_files.py")
DOCUMENT = ROOT / "docs" / "PERFORMANCE.md"
BEGIN, END = "<!-- nodes:begin -->", "<!-- nodes:end -->"


class SilentListener:
    """Accepts every connection on 127.0.0.1 and never sends a byte: what a hung kubelet looks like."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            for _ in selector.select(timeout=0.2):
                try:
                    while True:
                        connection, _ = self.sock.accept()
                        self.held.append(connection)
                except BlockingIOError:
                    pass
            # Held until the end (the fd limit is raised): closing one would answer it.

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for connection in self.held:
            connection.close()
        self.sock.close()


def add_dead_nodes(cluster: EmbeddedCluster, count: int, port: int) -> float:
    began = time.monotonic()

    def create(index: int) -> None:
        name = f"dead-{index:05d}"
        status, answer = cluster.api_request("POST", "/api/v1/nodes", {"metadata": {"name": name, "labels": {
            "kubeproof.bench/dead": "true"}}})
        if status not in (201, 409):
            raise RuntimeError(f"create {name}: {status} {answer.get('message')}")
        status, answer = cluster.api_request("PATCH", f"/api/v1/nodes/{name}/status", {"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}, content_type="application/merge-patch+json")
        if status != 200:
            raise RuntimeError(f"status of {name}: {status} {answer.get('message')}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, range(count)))
    return time.monotonic() - began


def audit(cluster: EmbeddedCluster, label: str) -> dict:
    reports = Path(tempfile.mkdtemp(prefix="kubeproof-bench-nodes-"))
    command = [PYTHON, "-m", "pytest", *SUITE, "-q", "-p", "no:cacheprovider", "--tb=no", "--cluster=local",
               f"--local-attach={cluster.workdir}", f"--report-dir={reports}"]
    began = time.monotonic()
    # A child of its own, so RUSAGE_CHILDREN's peak is this audit's (the peak only grows).
    wrapper = [PYTHON, "-c", "import resource,subprocess,sys,json;"
               "r=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
               "print(json.dumps({'rc':r.returncode,'tail':r.stdout[-1500:],"
               "'rss':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))", *command]
    done = subprocess.run(wrapper, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - began
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    results = sorted(reports.glob("*/results.json"))
    counts = json.loads(results[-1].read_text()).get("counts") if results else None
    print(f"{label}: {seconds:.1f} s, peak {outcome['rss'] / 1024:.0f} MB, exit {outcome['rc']}, {counts}", flush=True)
    return {"label": label, "seconds": round(seconds, 2), "peak_rss_mb": round(outcome["rss"] / 1024),
            "exit": outcome["rc"], "counts": counts, "tail": outcome["tail"][-600:]}


def _counts(counts: dict | None) -> str:
    if not counts:
        return "-"
    return (f"{counts['tests']} results: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} not verified or exempt")


def write_markdown(result: dict) -> None:
    first, second = result["audits"]
    lines = [
        BEGIN,
        "",
        f"Measured {result['when']} with `{result['command']}` (load average {result['load']}).",
        "",
        "| audit | nodes | node tests wall | peak RSS | results |",
        "|---|---|---|---|---|",
        f"| {result['kubelets']} real kubelets | {result['kubelets']} | {first['seconds']:.1f} s | {first['peak_rss_mb']} MB | {_counts(first['counts'])} |",
        f"| the same plus {result['dead']} silent kubelets | {result['kubelets'] + result['dead']} | {second['seconds']:.1f} s | {second['peak_rss_mb']} MB | {_counts(second['counts'])} |",
        "",
        f"The {result['dead']} dead nodes added **{second['seconds'] - first['seconds']:.1f} s** "
        f"(target: at most 30 s) and {second['peak_rss_mb'] - first['peak_rss_mb']} MB. Starting the "
        f"{result['kubelets']} kubelets took {result['start_seconds']:.1f} s with the rest of the cluster; "
        f"creating the dead Node objects took {result['create_seconds']:.1f} s (not part of either audit).",
        "",
        END,
    ]
    text = DOCUMENT.read_text()
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + "\n".join(lines) + text[text.index(END) + len(END):]
    else:
        text += "\n## Nodes at scale (bench/nodes.py)\n\n" + "\n".join(lines) + "\n"
    DOCUMENT.write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubelets", type=int, default=20)
    parser.add_argument("--dead", type=int, default=5000)
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/PERFORMANCE.md")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    began = time.monotonic()
    with EmbeddedCluster(profile="hardened", node_count=args.kubelets) as cluster:
        start_seconds = time.monotonic() - began
        print(f"cluster with {args.kubelets} kubelets up in {start_seconds:.1f} s", flush=True)
        audits = [audit(cluster, f"{args.kubelets} kubelets")]
        listener = SilentListener()
        try:
            create_seconds = add_dead_nodes(cluster, args.dead, listener.port)
            print(f"{args.dead} dead nodes created in {create_seconds:.1f} s", flush=True)
            audits.append(audit(cluster, f"{args.kubelets} kubelets + {args.dead} dead"))
        finally:
            listener.close()
    result = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "kubelets": args.kubelets, "dead": args.dead,
              "command": "python bench/nodes.py" + (f" --kubelets {args.kubelets} --dead {args.dead}"
                                                    if (args.kubelets, args.dead) != (20, 5000) else ""),
              "load": round(os.getloadavg()[0], 2), "start_seconds": start_seconds,
              "create_seconds": create_seconds, "audits": audits}
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"nodes-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json").write_text(json.dumps(result, indent=1))
    if not args.no_docs:
        write_markdown(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
