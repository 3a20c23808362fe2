"""kubeproof at scale, in one run on one filled embedded cluster per size (medians of --runs runs):

    .venv/bin/python bench/benchmark.py --sizes small,large          # the figures in docs/PERFORMANCE.md
    .venv/bin/python bench/benchmark.py --sizes small --runs 1       # a quick look
    .venv/bin/python bench/benchmark.py --size large --attach DIR    # a cluster bench/generate.py filled
    bash bench/peers.sh                                              # first, to compare with peer tools

For each size: fill (bench/generate.py; the pods' creation by the controller-manager timed apart),
then the I/O floor (a raw paginated LIST of every kind the suite reads, JSON parsed, nothing else),
the full audit (wall time, peak RSS, phases from bench/phase_timer.py, the snapshot's per-kind list
seconds from results.json; its results checked against the generator's expectations), pytest's own
cost for the same number of trivial tests, the HTML report's size and the time headless Chromium
takes to show its summary and failures, and the peers bench/peers.sh built (kube-score on the objects
exported with our own LIST code). Raw figures go to bench/results/benchmark-<size>-<stamp>.json.
The machine is shared: the load average is recorded next to every figure."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402
import performance_md  # noqa: E402

from kubeproof.controlplane import EmbeddedCluster  # noqa: E402
from kubeproof.snapshot import KINDS, METADATA_ONLY, PAGE_SIZE  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
PEERS = Path(os.environ.get("KUBEPROOF_PEERS_DIR", Path.home() / ".cache" / "kubeproof" / "peers"))
BENCH_TOOLS = Path.home() / ".cache" / "kubeproof" / "bench-tools"  # pyinstrument, for --profile
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUIET_BUSY = 0.35  # share of both cores busy (anyone's) under which a measurement may start
QUIET_WAIT = 60.0  # seconds to wait for that; after it the measurement runs anyway, with the figure recorded


def load() -> float:
    return round(os.getloadavg()[0], 2)


def cpu_busy(interval: float = 2.0) -> float:
    """The share of all cores busy over `interval` (every process's, from /proc/stat)."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])
    idle0, total0 = sample()
    time.sleep(interval)
    idle1, total1 = sample()
    return round(1 - (idle1 - idle0) / max(total1 - total0, 1), 2)


def quiet() -> float:
    """Waits (up to QUIET_WAIT) for the other engineers' work on this shared machine to leave the
    CPU mostly idle; returns the busy share seen last."""
    deadline = time.monotonic() + QUIET_WAIT
    busy = cpu_busy()
    while busy > QUIET_BUSY and time.monotonic() < deadline:
        busy = cpu_busy(5.0)
    return busy


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load():.2f}] {message}", flush=True)


# -- processes timed by /usr/bin/time -------------------------------------------------------------------
def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _sample_rss(parent: int, samples: list, stop: threading.Event) -> None:
    """The measured command's RSS over time (it runs under /usr/bin/time: its child), every 0.25 s."""
    while not stop.wait(0.25):
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        rss = _rss_mb(int(children[0])) if children else None
        if rss is not None:
            samples.append((time.time(), round(rss, 1)))


def timed(argv: list[str], cwd: Path, env: dict | None = None, stdout=None) -> dict:
    """Wall seconds, peak RSS (MB), the RSS over time and CPU seconds of one command, with the load
    before it."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        before = load()
        began = time.time()
        process = subprocess.Popen(["/usr/bin/time", "-v", "-o", report.name, *argv], cwd=cwd, env=env,
                                   stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples: list = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(process.pid, samples, stop), daemon=True)
        sampler.start()
        out, err = process.communicate()
        ended = time.time()
        stop.set()
        sampler.join()
        text = report.read()
    field = lambda name: re.search(rf"{re.escape(name)}: (.+)", text).group(1).strip()  # noqa: E731
    return {"wall": round(ended - began, 3), "began": began, "ended": ended,
            "rss_mb": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1),
            "cpu": round(float(field("User time (seconds)")) + float(field("System time (seconds)")), 2),
            "exit": process.returncode, "load_before": before, "load_after": load(), "rss_samples": samples,
            "stdout_tail": (out or "")[-1500:] if stdout is None else "", "stderr_tail": (err or "")[-1500:]}


def rss_at(samples: list, moment: float) -> float | None:
    """The highest RSS sampled up to `moment`."""
    seen = [rss for when, rss in samples if when <= moment]
    return max(seen) if seen else None


def measured(what: str, runs: int, once) -> list[dict]:
    """`runs` measurements, each started once the machine is quiet (or QUIET_WAIT has passed), with
    the CPU share others used just before it."""
    results = []
    for number in range(runs):
        busy = quiet()
        result = {**once(), "busy_before": busy}
        log(f"{what} run {number + 1}: {result.get('wall', result.get('seconds'))} s"
            + (f", {result['rss_mb']} MB" if "rss_mb" in result else "") + f" (CPU busy before: {busy:.0%})")
        results.append(result)
    return results


# -- the I/O floor ------------------------------------------------------------------------------------
def suite_pool(cluster: EmbeddedCluster) -> urllib3.PoolManager:
    return urllib3.PoolManager(maxsize=1, retries=False, timeout=urllib3.Timeout(connect=5, read=120),
                               cert_reqs="CERT_REQUIRED", ca_certs=str(cluster.ca.cert),
                               cert_file=str(cluster.suite_client.cert), key_file=str(cluster.suite_client.key))


def list_all(cluster: EmbeddedCluster, keep: bool = False) -> tuple[dict, dict[str, list[dict]]]:
    """Every kind the snapshot reads, paginated as the suite pages it, JSON parsed; nothing else."""
    pool = suite_pool(cluster)
    per_kind, kept = {}, {}
    for kind in KINDS.values():
        began, items, token, pages, nbytes = time.monotonic(), [], None, 0, 0
        while True:
            query = f"?limit={PAGE_SIZE}" + (f"&continue={token}" if token else "")
            response = pool.request("GET", cluster.server + kind.path + query,
                                    headers={"Accept": METADATA_ONLY if kind.metadata_only else "application/json"})
            pages += 1
            nbytes += len(response.data)
            body = json.loads(response.data) if response.status == 200 else {}
            items.extend(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                break
        per_kind[kind.name] = {"count": len(items), "pages": pages, "bytes": nbytes,
                               "seconds": round(time.monotonic() - began, 4), "status": response.status}
        if keep:
            kept[kind.name] = items
    pool.clear()
    return per_kind, kept


def io_floor(cluster: EmbeddedCluster) -> dict:
    before = load()
    began = time.monotonic()
    per_kind, _ = list_all(cluster)
    return {"seconds": round(time.monotonic() - began, 3), "load_before": before, "per_kind": per_kind,
            "objects": sum(k["count"] for k in per_kind.values()),
            "megabytes": round(sum(k["bytes"] for k in per_kind.values()) / 1e6, 1)}


# -- the audit ----------------------------------------------------------------------------------------
def audit_once(workdir: Path, out: Path, profile: bool = False, extra: tuple[str, ...] = ()) -> dict:
    reports = Path(tempfile.mkdtemp(prefix="audit-", dir=out))
    phases_file = reports / "phases.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), str(BENCH_TOOLS) if profile else None])),
           "KUBEPROOF_PHASES_FILE": str(phases_file)}
    pytest_args = ["tests_cluster", "--cluster=local", f"--local-attach={workdir}", "-q", "-p", "no:cacheprovider",
                   f"--report-dir={reports}", "-p", "phase_timer", *extra]
    if profile:
        argv = [PYTHON, "-m", "pyinstrument", "-r", "text", "-o", str(out / "profile.txt"), "-m", "pytest", *pytest_args]
    else:
        argv = [PYTHON, "-m", "pytest", *pytest_args]
    result = timed(argv, ROOT, env)
    folders = [p for p in reports.iterdir() if p.is_dir()]
    if result["exit"] not in (0, 1) or not folders:
        raise RuntimeError(f"the audit failed (exit {result['exit']}):\n{result['stdout_tail']}\n{result['stderr_tail']}")
    folder = folders[0]
    results = json.loads((folder / "results.json").read_text())
    html = next(folder.glob("*.html"))
    stamps = json.loads(phases_file.read_text())
    s = stamps["stamps"]
    snapshot_seconds = sum(k["seconds"] for k in results["snapshot"].values())
    phases = {
        "startup": s["configure"] - result["began"],
        "connect": s["first_collector"] - s["collection_start"],
        "collect": s["collection_end"] - s["first_collector"],
        "list (snapshot, inside collect)": snapshot_seconds,
        "run": s["run_end"] - s["run_start"],
        "report": s["sessionfinish_end"] - s["sessionfinish_start"],
        "close": s["unconfigure_end"] - s["unconfigure_start"],
        "exit": result["ended"] - s["unconfigure_end"],
    }
    result.update({
        "phases": {k: round(v, 3) for k, v in phases.items()},
        # Peak RSS reached by the end of each phase, from the samples (0.25 s apart).
        "rss_by_phase_mb": {"connect": rss_at(result["rss_samples"], s["first_collector"]),
                            "collect": rss_at(result["rss_samples"], s["collection_end"]),
                            "run": rss_at(result["rss_samples"], s["run_end"]),
                            "report": rss_at(result["rss_samples"], s["sessionfinish_end"]),
                            "end": rss_at(result["rss_samples"], result["ended"])},
        "items": stamps["items"], "counts": results["counts"], "snapshot": results["snapshot"],
        "html_bytes": html.stat().st_size, "html": str(html), "results": str(folder / "results.json"),
        "artifact_bytes": {p.name: p.stat().st_size for p in folder.iterdir()},
    })
    return result


def object_id(obj: dict | None) -> str | None:
    if not obj:
        return None
    return f"{obj['kind']}/{obj['namespace']}/{obj['name']}" if obj.get("namespace") else f"{obj['kind']}/{obj['name']}"


def check_expectations(manifest: dict, results_path: str) -> dict:
    """The audit's failures against the generator's expectations: every seeded violation found, and
    no generated object failing for a reason nobody seeded."""
    results = json.loads(Path(results_path).read_text())["results"]
    expected = {(t, o) for t, objects in manifest["expected_failures"].items() for o in objects}
    by_control = {t.split("#")[0] for t in manifest["expected_failures"] if "#" in t}
    failing = set()
    for r in results:
        if r["status"] not in ("failed", "error"):
            continue
        if r["test"] in by_control and r["status"] == "failed":  # one result, judged under several controls
            failing.update((f"{r['test']}#{c}", object_id(r["object"])) for f in r["findings"] for c in f["controls"])
        else:
            failing.add((r["test"], object_id(r["object"])))
    prefix = manifest["namespace_prefix"]
    generated = lambda o: o and (f"/{prefix}" in o or "/bench-viewer" in o)  # noqa: E731
    missing = sorted(expected - failing)
    unexpected = sorted(f for f in failing - expected if generated(f[1]))
    elsewhere = sorted(f for f in failing - expected if not generated(f[1]))
    statuses: dict[str, int] = {}
    for record in results:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    return {"expected": len(expected), "found": len(expected & failing), "missing": len(missing),
            "missing_examples": [" ".join(map(str, m)) for m in missing[:20]], "unexpected_in_generated": len(unexpected),
            "unexpected_examples": [" ".join(map(str, u)) for u in unexpected[:20]], "failing_outside_generated": len(elsewhere),
            "outside_examples": [" ".join(map(str, e)) for e in elsewhere[:20]], "statuses": statuses}


# -- pytest alone -------------------------------------------------------------------------------------
def trivial_once(items: int, out: Path, with_reports: bool) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="trivial-", dir=out))
    (folder / "test_trivial.py").write_text(
        f"import pytest\n\n\n@pytest.mark.parametrize('i', range({items}))\ndef test_x(i):\n    pass\n")
    extra = [f"--html={folder / 'r.html'}", "--self-contained-html", f"--junitxml={folder / 'j.xml'}"] if with_reports else []
    env = {**os.environ, "PYTHONPATH": str(BENCH), "KUBEPROOF_PHASES_FILE": str(folder / "phases.json")}
    result = timed([PYTHON, "-m", "pytest", "test_trivial.py", "-q", "-p", "no:cacheprovider", "-p", "phase_timer", *extra],
                   folder, env)
    s = json.loads((folder / "phases.json").read_text())["stamps"]
    result["phases"] = {k: round(v, 3) for k, v in {
        "startup": s["configure"] - result["began"], "collect": s["collection_end"] - s["collection_start"],
        "run": s["run_end"] - s["run_start"], "report": s["sessionfinish_end"] - s["sessionfinish_start"],
        "close": s["unconfigure_end"] - s["unconfigure_start"], "exit": result["ended"] - s["unconfigure_end"]}.items()}
    if with_reports:
        result["html_bytes"] = (folder / "r.html").stat().st_size
    shutil.rmtree(folder, ignore_errors=True)
    return result


# -- the HTML report in a browser -----------------------------------------------------------------------
def chromium_once(url: str, profile_dir: Path, budget_ms: int = 5000) -> tuple[float, str]:
    shutil.rmtree(profile_dir, ignore_errors=True)
    began = time.monotonic()
    done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", f"--virtual-time-budget={budget_ms}",
                           "--dump-dom", url], capture_output=True, text=True, timeout=600)
    return time.monotonic() - began, done.stdout


def browser(html: str, failed: int, out: Path, runs: int) -> dict:
    """Seconds until Chromium has laid out the summary and every failure's row (--dump-dom returns
    once the page has loaded and its scripts have run), less Chromium's own start (a blank page)."""
    profile = out / "chromium-profile"
    blank = [chromium_once("about:blank", profile)[0] for _ in range(runs)]
    walls, checks = [], []
    for _ in range(runs):
        before = load()
        quiet()
        wall, dom = chromium_once(Path(html).as_uri(), profile)
        shown_failed = len(re.findall(r'class="col-result">Failed<', dom))
        checks.append({"summary_visible": "kubeproof-summary" in dom, "failed_rows": shown_failed,
                       "failed_expected": failed, "dom_bytes": len(dom), "load_before": before})
        walls.append(wall)
    shutil.rmtree(profile, ignore_errors=True)
    return {"wall": median(walls), "walls": [round(w, 2) for w in walls], "blank_page": median(blank),
            "time_to_visible": round(median(walls) - median(blank), 3), "checks": checks,
            "all_visible": all(c["summary_visible"] and c["failed_rows"] == failed for c in checks)}


# -- peers --------------------------------------------------------------------------------------------
def export_objects(cluster: EmbeddedCluster, folder: Path) -> dict:
    """The suite's kinds, listed with our own LIST code, one file per kind, each object a JSON
    document (JSON is YAML) with the kind and apiVersion a list leaves out. Secrets are left out:
    the suite reads only their metadata."""
    began = time.monotonic()
    _, kept = list_all(cluster, keep=True)
    folder.mkdir(parents=True, exist_ok=True)
    files, count = [], 0
    for name, items in kept.items():
        kind = KINDS[name]
        if not items or kind.metadata_only:
            continue
        api_version = f"{kind.group}/{kind.version}" if kind.group else kind.version
        path = folder / f"{name}.yaml"
        with path.open("w") as out:
            for item in items:
                out.write("---\n")
                out.write(json.dumps({"apiVersion": api_version, "kind": kind.kind, **item}))
                out.write("\n")
        files.append(str(path))
        count += len(items)
    return {"seconds": round(time.monotonic() - began, 2), "objects": count, "files": files,
            "megabytes": round(sum(Path(f).stat().st_size for f in files) / 1e6, 1)}


def build_failure(name: str) -> str:
    log_file = PEERS / "build.log"
    text = log_file.read_text() if log_file.exists() else ""
    blocks = [b for b in text.split("== ") if "go install" in b.split("\n", 1)[0] and name in b.split("\n", 1)[0]]
    if not blocks:
        return "not built: run bash bench/peers.sh first"
    lines = [line for line in blocks[-1].splitlines() if line and not line.startswith("go: downloading")]
    return "not built: " + " | ".join(lines[:3])[:600]


def _last_fatal(stderr: str) -> str | None:
    fatal = [line for line in stderr.splitlines() if "FATAL" in line or "Error:" in line]
    return fatal[-1][-400:] if fatal else None


def peers(cluster: EmbeddedCluster, out: Path, runs: int, peer_runs: int) -> dict:
    found: dict[str, dict] = {}
    score = PEERS / "kube-score"
    if score.exists():
        exported = export_objects(cluster, out / "exported")
        def once():
            with open(out / "kube-score.out", "w") as sink:
                return timed([str(score), "score", "--output-format", "ci", "--kubernetes-version", "v1.37",
                              *exported["files"]], out, stdout=sink)
        runs_ = measured("kube-score", runs, once)
        lines = (out / "kube-score.out").read_text().splitlines()
        found["kube-score"] = {"export": {k: v for k, v in exported.items() if k != "files"}, "runs": runs_,
                               "wall": median([r["wall"] for r in runs_]), "rss_mb": median([r["rss_mb"] for r in runs_]),
                               "exit": runs_[-1]["exit"], "output_lines": len(lines),
                               "critical_lines": sum("[CRITICAL]" in line for line in lines)}
    else:
        found["kube-score"] = {"error": build_failure("kube-score")}
    polaris = PEERS / "polaris"
    if polaris.exists():
        def once():
            with open(out / "polaris.out", "w") as sink:
                return timed([str(polaris), "audit", "--kubeconfig", str(cluster.kubeconfig), "--format", "json"],
                             out, stdout=sink)
        runs_ = measured("polaris", peer_runs, once)
        found["polaris"] = {"runs": runs_, "wall": median([r["wall"] for r in runs_]), "rss_mb": median([r["rss_mb"] for r in runs_])}
    else:
        found["polaris"] = {"error": build_failure("polaris")}
    trivy = PEERS / "trivy"
    if trivy.exists():
        # Misconfigurations and RBAC only, offline (this machine reaches no image registry or check
        # bundle: the checks built into the binary are used), without the node-collector Job it
        # would otherwise create in the cluster. Its default timeout (5 min) is kept: what a user gets.
        def once():
            cache = out / "trivy-cache"
            shutil.rmtree(cache, ignore_errors=True)
            with open(out / "trivy.out", "w") as sink:
                return timed([str(trivy), "k8s", "--kubeconfig", str(cluster.kubeconfig), "--scanners", "misconfig,rbac",
                              "--skip-db-update", "--skip-check-update", "--disable-node-collector", "--disable-telemetry",
                              "--skip-images", "--report", "summary", "--format", "json", "-o", str(out / "trivy.json"),
                              "--cache-dir", str(cache)], out, stdout=sink)
        runs_ = measured("trivy k8s", peer_runs, once)
        found["trivy"] = {"runs": runs_, "wall": median([r["wall"] for r in runs_]), "rss_mb": median([r["rss_mb"] for r in runs_]),
                          "exit": runs_[-1]["exit"], "error": _last_fatal(runs_[-1]["stderr_tail"])}
    else:
        found["trivy"] = {"error": build_failure("trivy")}
    kubescape = PEERS / "kubescape"
    if kubescape.exists():
        def once():
            env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
            with open(out / "kubescape.out", "w") as sink:
                return timed([str(kubescape), "scan", "--format", "json", "--output", str(out / "kubescape.json")],
                             out, env=env, stdout=sink)
        runs_ = measured("kubescape", peer_runs, once)
        found["kubescape"] = {"runs": runs_, "wall": median([r["wall"] for r in runs_]), "rss_mb": median([r["rss_mb"] for r in runs_])}
    else:
        found["kubescape"] = {"error": build_failure("kubescape")}
    return found


# -- one size -----------------------------------------------------------------------------------------
def settle(cluster: EmbeddedCluster, seconds: float = 20) -> None:
    """Lets the controller-manager finish what the fill started (quota usage, events) before timing."""
    log(f"settling {seconds:.0f} s")
    time.sleep(seconds)


def bench_size(size: str, runs: int, out: Path, attach: str | None, with_peers: bool, profile: bool,
               audit_args: tuple[str, ...] = (), audit_only: bool = False, peer_runs: int = 1) -> dict:
    result: dict = {"size": size, "runs": runs, "audit_args": list(audit_args)}
    cluster = EmbeddedCluster.attach(attach) if attach else EmbeddedCluster(profile="hardened", node_count=0, scheduler=False).start()
    try:
        manifest_path = Path(cluster.workdir) / generate.MANIFEST
        if attach and manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
        else:
            log(f"filling ({size})")
            manifest = generate.fill(cluster, size, progress=log)
        result["fill"] = manifest["fill"]
        result["violations"] = manifest["violations"]
        settle(cluster)

        if not audit_only:
            floor = measured("I/O floor", runs, lambda: io_floor(cluster))
            result["io_floor"] = {"seconds": median([f["seconds"] for f in floor]), "runs": floor}

        audits = measured("audit" + (f" {' '.join(audit_args)}" if audit_args else ""), runs,
                          lambda: audit_once(Path(cluster.workdir), out, extra=audit_args))
        phase_names = audits[0]["phases"].keys()
        result["audit"] = {
            "wall": median([a["wall"] for a in audits]), "rss_mb": median([a["rss_mb"] for a in audits]),
            "cpu": median([a["cpu"] for a in audits]), "items": audits[0]["items"],
            "phases": {p: median([a["phases"][p] for a in audits]) for p in phase_names},
            "rss_by_phase_mb": {p: median([a["rss_by_phase_mb"][p] or 0 for a in audits]) for p in audits[0]["rss_by_phase_mb"]},
            "list_per_kind": {k: median([a["snapshot"][k]["seconds"] for a in audits]) for k in audits[0]["snapshot"]},
            "counts": audits[0]["counts"], "html_bytes": audits[0]["html_bytes"],
            "artifact_bytes": audits[0]["artifact_bytes"], "runs": audits,
        }
        result["expectations"] = check_expectations(manifest, audits[0]["results"])
        log(f"expectations: {json.dumps({k: v for k, v in result['expectations'].items() if not k.endswith('examples')})}")

        if audit_only:
            result["targets"] = {"audit_wall_s": result["audit"]["wall"], "audit_rss_mb": result["audit"]["rss_mb"]}
            return result
        failed = audits[0]["counts"]["failed"]
        result["browser"] = browser(audits[0]["html"], failed, out, runs)
        log(f"browser: {json.dumps({k: v for k, v in result['browser'].items() if k != 'checks'})}")

        items = audits[0]["items"]
        plain = measured(f"pytest alone ({items} trivial tests)", runs, lambda: trivial_once(items, out, False))
        reports = measured(f"pytest alone with HTML and JUnit ({items})", 1, lambda: trivial_once(items, out, True))
        result["pytest_alone"] = {"items": items, "wall": median([p["wall"] for p in plain]),
                                  "rss_mb": median([p["rss_mb"] for p in plain]), "runs": plain,
                                  "phases": {k: median([p["phases"][k] for p in plain]) for k in plain[0]["phases"]},
                                  "with_reports": {"wall": reports[0]["wall"], "rss_mb": reports[0]["rss_mb"],
                                                   "html_bytes": reports[0]["html_bytes"], "phases": reports[0]["phases"]}}
        if with_peers:
            result["peers"] = peers(cluster, out, runs, peer_runs)
        if profile:
            log("profiling one audit with pyinstrument")
            audit_once(Path(cluster.workdir), out, profile=True)
            result["profile"] = str(out / "profile.txt")
        floor_plus = result["io_floor"]["seconds"] + result["pytest_alone"]["wall"]
        floor_plus_reports = result["io_floor"]["seconds"] + result["pytest_alone"]["with_reports"]["wall"]
        result["targets"] = {
            "audit_wall_s": result["audit"]["wall"], "audit_rss_mb": result["audit"]["rss_mb"],
            "io_floor_plus_pytest_s": round(floor_plus, 2),
            "audit_over_floor_plus_pytest": round(result["audit"]["wall"] / floor_plus, 2),
            "io_floor_plus_pytest_with_reports_s": round(floor_plus_reports, 2),
            "audit_over_floor_plus_pytest_with_reports": round(result["audit"]["wall"] / floor_plus_reports, 2),
            "html_mb": round(result["audit"]["html_bytes"] / 1e6, 1),
            "html_time_to_visible_s": result["browser"]["time_to_visible"],
        }
        return result
    finally:
        if not attach:
            cluster.stop()


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    memory = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    return {"nproc": os.cpu_count(), "cpu": model.group(1) if model else "unknown",
            "memory_gb": round(int(memory.group(1)) / 1024 / 1024, 1) if memory else None,
            "python": sys.version.split()[0], "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,large", help="comma-separated sizes (default small,large)")
    parser.add_argument("--size", help="one size (with --attach)")
    parser.add_argument("--attach", metavar="WORKDIR", help="an embedded cluster bench/generate.py filled")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peer-runs", type=int, default=1, help="runs of each peer but kube-score (default 1: Trivy takes minutes)")
    parser.add_argument("--profile", action="store_true", help="also profile one audit with pyinstrument (~/.cache/kubeproof/bench-tools)")
    parser.add_argument("--audit-args", default="", help="extra pytest arguments for the audit, e.g. --tb=line")
    parser.add_argument("--audit-only", action="store_true", help="measure only the audit (e.g. a variant of its arguments)")
    args = parser.parse_args(argv)
    sizes = [args.size] if args.size else args.sizes.split(",")
    if args.attach and len(sizes) != 1:
        parser.error("--attach needs exactly one --size")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results_dir = BENCH / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join([".venv/bin/python", "bench/benchmark.py", *(argv if argv is not None else sys.argv[1:])])
    summary = {"machine": machine(), "sizes": {}, "files": {}, "command": command,
               "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for size in sizes:
        out = Path(tempfile.mkdtemp(prefix=f"kubeproof-bench-{size}-"))
        log(f"size {size}: scratch {out}")
        result = bench_size(size, args.runs, out, args.attach, not args.no_peers, args.profile,
                            tuple(args.audit_args.split()), args.audit_only, args.peer_runs)
        result["machine"] = summary["machine"]
        variant = "-audit" + "".join(a.strip("-").replace("=", "-") for a in args.audit_args.split()) if args.audit_only else ""
        path = results_dir / f"benchmark-{size}{variant}-{stamp}.json"
        path.write_text(json.dumps(result, indent=1, default=str))
        if args.profile and (out / "profile.txt").exists():
            shutil.copy(out / "profile.txt", results_dir / f"profile-{size}-{stamp}.txt")
        log(f"size {size}: {json.dumps(result['targets'])} -> {path}")
        summary["sizes"][size] = result["targets"]
        summary["files"][size] = str(path)
    if {"small", "large"} <= set(summary["sizes"]):
        small, large = summary["sizes"]["small"], summary["sizes"]["large"]
        summary["large_over_small"] = round(large["audit_wall_s"] / small["audit_wall_s"], 2)
    summary_path = results_dir / f"benchmark-summary-{stamp}.json"
    summary_path.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    if not args.audit_only and {"small", "large"} <= set(summary["sizes"]):
        performance_md.write(summary_path, command)
        log(f"wrote {performance_md.DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
