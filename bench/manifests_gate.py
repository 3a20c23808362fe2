"""The manifest gate (issue 11 part 4): `pytest --manifests=DIR` against Checkov on the same folders, on
the same machine, in the same run, and where kubeproof's time goes.

    .venv/bin/python bench/manifests_gate.py                 # every set, 3 runs each, writes docs/PERFORMANCE.md
    .venv/bin/python bench/manifests_gate.py --sets small --runs 5 --no-write

Sets: `small`, ten files this script writes (a typical application repository: namespaces, workloads,
services, RBAC, policies); `config-repo`, examples/config-repo; and every set of the real-world corpus
(tests_e2e/corpus.py), fetched at its pin. Checkov is installed from PyPI at CHECKOV_VERSION into its own
venv under ~/.cache/kubeproof/bench/ and runs with the framework that matches the set (kubernetes,
kustomize, helm), offline.

kubeproof runs as a user runs it: `python -m pytest tests_cluster --manifests=DIR`, from a venv with its
runtime dependencies only (user_python), with its bytecode cached, and with this file
loaded as a pytest plugin (`-p manifests_gate`) that only times: it stamps pytest's phases and wraps
the embedded cluster's start steps, manifests.apply and the cluster's stop, without changing them.
`--checkout DIR` runs another checkout's kubeproof (an older commit, for before/after figures)."""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKOV_VERSION = "3.3.30"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kubeproof" / "bench"
BEGIN, END = "<!-- manifests-gate:begin -->", "<!-- manifests-gate:end -->"

# -- the timing plugin (loaded into the kubeproof run with -p manifests_gate) ----------------------
_stamps: dict[str, float] = {"plugin_imported": time.time()}
_durations: list[tuple[str, float, float]] = []  # (step, start, seconds)
# The embedded cluster's start, step by step; a name a checkout does not have is skipped.
CLUSTER_STEPS = (
    "_etcd_template", "_make_pki", "_start_etcd", "_wait_for_etcd", "_start_apiserver", "_wait_for_apiserver",
    "_wait_for_system_namespaces", "_start_controller_manager", "_start_scheduler", "_grant_node_rbac",
    "_start_nodes", "_harden_builtin_namespaces", "_write_canary_secret", "_wait_for_default_service_account",
    "_close_default_service_accounts", "_wait_for_nodes", "save_state", "start", "stop",
)


def _timed(name: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        began = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            _durations.append((name, began, time.time() - began))
    return wrapper


def pytest_configure(config):
    _stamps["configure"] = time.time()
    if not os.environ.get("KUBEPROOF_GATE_TIMES"):
        return
    from kubeproof import manifests
    from kubeproof.controlplane import embedded

    for name in CLUSTER_STEPS:
        if hasattr(embedded.EmbeddedCluster, name):
            setattr(embedded.EmbeddedCluster, name, _timed(name, getattr(embedded.EmbeddedCluster, name)))
    embedded.ensure_built = _timed("ensure_built", embedded.ensure_built)
    try:
        from kubeproof.controlplane import spares
    except ImportError:  # a checkout from before warm spares
        pass
    else:
        spares.claim = _timed("claim", spares.claim)
    manifests.apply = _timed("apply", manifests.apply)
    manifests.load = _timed("load", manifests.load)


def pytest_collection(session):
    _stamps.setdefault("collection_start", time.time())


def pytest_collectstart(collector):
    _stamps.setdefault("first_collector", time.time())


def pytest_collection_finish(session):
    _stamps["collection_end"] = time.time()


def pytest_runtest_logstart(nodeid, location):
    _stamps.setdefault("run_start", time.time())


def pytest_runtest_logfinish(nodeid, location):
    _stamps["run_end"] = time.time()


def pytest_sessionfinish(session, exitstatus):
    _stamps.setdefault("sessionfinish", time.time())


def pytest_unconfigure(config):
    path = os.environ.get("KUBEPROOF_GATE_TIMES")
    _stamps["unconfigure"] = time.time()
    if path:
        # Written at exit, so the backend's close (the cluster's stop), which runs in kubeproof's own
        # unconfigure, is in the figures whichever plugin goes first.
        import atexit

        def write() -> None:
            _stamps["exit"] = time.time()
            Path(path).write_text(json.dumps({"stamps": _stamps, "durations": _durations}))
        atexit.register(write)


# -- the sets ----------------------------------------------------------------------------------------
SMALL_REPO = {
    "namespaces.yaml": """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop-jobs
""",
    "frontend-deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
  namespace: shop
spec:
  replicas: 2
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec:
      serviceAccountName: frontend
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: web
        image: registry.example.com/shop/frontend@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945
        imagePullPolicy: Always
        ports: [{containerPort: 8080}]
        resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 500m, memory: 256Mi}}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
""",
    "frontend-service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: frontend
  namespace: shop
spec:
  selector: {app: frontend}
  ports: [{port: 80, targetPort: 8080}]
""",
    "api-deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: registry.example.com/shop/api:latest
        env:
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: api-db, key: password}}
        ports: [{containerPort: 9000}]
""",
    "api-service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: shop
spec:
  selector: {app: api}
  ports: [{port: 9000}]
""",
    "config.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-settings
  namespace: shop
data:
  currency: EUR
  feature-flags: "checkout-v2,search"
---
apiVersion: v1
kind: Secret
metadata:
  name: api-db
  namespace: shop
type: Opaque
stringData:
  password: not-a-real-password
""",
    "rbac.yaml": """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: frontend
  namespace: shop
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: config-reader
  namespace: shop
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: frontend-config-reader
  namespace: shop
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: config-reader}
subjects:
- {kind: ServiceAccount, name: frontend, namespace: shop}
""",
    "network-policies.yaml": """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
  namespace: shop
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: frontend-to-api
  namespace: shop
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
""",
    "cleanup-cronjob.yaml": """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: cleanup
  namespace: shop-jobs
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: cleanup
            image: busybox:1.36
            command: [sh, -c, "echo cleaning"]
            securityContext: {privileged: true}
""",
    "quota.yaml": """\
apiVersion: v1
kind: ResourceQuota
metadata:
  name: compute
  namespace: shop
spec:
  hard: {pods: "20", requests.cpu: "4", requests.memory: 8Gi}
---
apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
  namespace: shop
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 100m, memory: 64Mi}
""",
}


def write_small_repo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in SMALL_REPO.items():
        (folder / name).write_text(text)
    return folder


def gather_sets(names: list[str] | None, scratch: Path) -> list[dict]:
    """[{name, kind, folder, values}] for the sets asked for (all by default); a corpus set that cannot
    be fetched is reported, not fatal."""
    found = [{"name": "small", "kind": "plain", "folder": write_small_repo(scratch / "small"), "values": None},
             {"name": "config-repo", "kind": "kustomize+plain", "folder": ROOT / "examples" / "config-repo", "values": None}]
    sys.path.insert(0, str(ROOT / "tests_e2e"))
    try:
        import corpus
    except ImportError:
        corpus = None
    if corpus is not None:
        for config_set in corpus.SETS:
            if names and config_set.name not in names:
                continue
            try:
                folder = corpus.fetch(config_set, scratch / "corpus")
            except corpus.CorpusError as error:
                print(f"manifests_gate: {config_set.name} not fetched: {error}", file=sys.stderr)
                continue
            if config_set.kind == "helm" and "helm_values" not in (ROOT / "kubeproof" / "plugin.py").read_text():
                print(f"manifests_gate: {config_set.name} left out: kubeproof does not render Helm charts yet", file=sys.stderr)
                continue
            found.append({"name": config_set.name, "kind": config_set.kind, "folder": folder,
                          "values": config_set.values_file})
    return [s for s in found if not names or s["name"] in names]


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json", ".tpl"))


# -- the runs --------------------------------------------------------------------------------------------
def user_python(checkout: Path) -> str:
    """A venv holding kubeproof and its runtime dependencies only, as `pip install kubeproof` leaves a
    user's (the checkout's own venv also holds the test extra, whose hypothesis plugin pytest loads at
    every start). Made once per pyproject.toml under the bench cache, beside Checkov's."""
    digest = hashlib.sha256((checkout / "pyproject.toml").read_bytes()).hexdigest()[:12]
    venv = CACHE / f"kubeproof-venv-{digest}"
    python = venv / "bin" / "python"
    if not (venv / "installed").exists():
        shutil.rmtree(venv, ignore_errors=True)
        base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(checkout)], check=True)
        (venv / "installed").touch()
    return str(python)


def run_kubeproof(checkout: Path, config_set: dict, scratch: Path, spares: Path | None = None) -> dict:
    """One run; with `spares`, the folder of a running spares supervisor whose spare it claims."""
    times = scratch / f"times-{time.monotonic_ns()}.json"
    reports = scratch / f"reports-{time.monotonic_ns()}"
    env = dict(os.environ, KUBEPROOF_GATE_TIMES=str(times), KUBEPROOF_SPARES=str(spares or "off"),
               PYTHONPATH=os.pathsep.join([str(checkout), str(ROOT / "bench")]))
    # pip installs Checkov with every module compiled; kubeproof's (and pytest's rewritten test modules)
    # are compiled by its first run, as on any machine that does not forbid writing bytecode.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [user_python(checkout), "-m", "pytest", "tests_cluster", "-q", "-p", "no:cacheprovider", "-p", "manifests_gate",
               f"--report-dir={reports}", f"--manifests={config_set['folder']}"]
    if config_set["values"]:
        command.append(f"--helm-values={config_set['values']}")
    began = time.time()
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.time() - began
    result = {"wall": wall, "exit": done.returncode, "began": began, "tail": (done.stdout + done.stderr)[-600:]}
    if times.exists():
        result.update(json.loads(times.read_text()))
    if spares:
        # A run that found no spare started a cluster of its own: its figure is not a warm one.
        result["warm"] = any(name == "claim" for name, _, _ in result.get("durations", [])) and \
            not any(name == "start" for name, _, _ in result.get("durations", []))
    folders = sorted(reports.glob("*/results.json"))
    if folders:
        records = json.loads(folders[-1].read_text()).get("results", [])
        result["documents"] = sum(1 for r in records if r["test"] == "test_manifest_is_accepted_by_the_api_server")
        result["results"] = len(records)
    shutil.rmtree(reports, ignore_errors=True)
    return result


def checkov_binary() -> Path:
    venv = CACHE / "checkov-venv"
    binary = venv / "bin" / "checkov"
    version = venv / f"checkov-{CHECKOV_VERSION}"
    if binary.exists() and version.exists():
        return binary
    shutil.rmtree(venv, ignore_errors=True)
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"checkov=={CHECKOV_VERSION}"], check=True)
    version.touch()
    return binary


def tool_path() -> str:
    """PATH with the renderers kubeproof builds (kubectl for Kustomize, helm), for Checkov's frameworks."""
    sys.path.insert(0, str(ROOT))
    from kubeproof.controlplane.build import cache_root

    extra = [str(p.parent) for p in sorted((cache_root() / "controlplane").glob("*/kubectl"))[-1:]]
    helms = sorted((cache_root() / "helm").glob("helm-*")) if (cache_root() / "helm").is_dir() else []
    if helms:
        shim = CACHE / "bin"
        shim.mkdir(parents=True, exist_ok=True)
        link = shim / "helm"
        link.unlink(missing_ok=True)
        link.symlink_to(helms[-1])
        extra.append(str(shim))
    return os.pathsep.join(extra + [os.environ.get("PATH", "")])


def run_checkov(config_set: dict) -> dict:
    framework = {"plain": "kubernetes", "kustomize": "kustomize", "helm": "helm",
                 "kustomize+plain": "kubernetes,kustomize"}[config_set["kind"]]
    command = [str(checkov_binary()), "-d", str(config_set["folder"]), "--framework", framework,
               "--quiet", "--compact", "--skip-download", "-o", "json"]
    if config_set["values"]:
        command += ["--var-file", str(config_set["values"])]
    env = dict(os.environ, PATH=tool_path(), BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false",
               LOG_LEVEL="WARNING")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    began = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    wall = time.time() - began
    checks = None
    try:
        answer = json.loads(done.stdout)
        reports = answer if isinstance(answer, list) else [answer]
        checks = sum(len(r.get("results", {}).get("passed_checks", [])) + len(r.get("results", {}).get("failed_checks", []))
                     for r in reports if isinstance(r, dict))
    except ValueError:
        pass
    return {"wall": wall, "exit": done.returncode, "checks": checks, "tail": done.stderr[-400:]}


# -- the figures -----------------------------------------------------------------------------------------
def breakdown(run: dict) -> list[tuple[str, float]]:
    """One kubeproof run as (step, seconds), in order."""
    s = run.get("stamps") or {}
    if not s:
        return []
    rows = [("python, pytest and plugins imported, configured", s["configure"] - run["began"])]
    durations = run.get("durations") or []
    total = {name: 0.0 for name, _, _ in durations}
    for name, _, seconds in durations:
        total[name] += seconds
    inner = [n for n in CLUSTER_STEPS if n not in ("start", "stop")]
    rows.append(("load the manifests", total.get("load", 0.0)))
    rows.append(("build check (ensure_built)", total.get("ensure_built", 0.0)))
    rows.append(("claim a warm spare (spares.claim)", total.get("claim", 0.0)))
    for name in inner:
        if name in total:
            rows.append((f"cluster: {name.strip('_').replace('_', ' ')}", total[name]))
    start = total.get("start", 0.0) - total.get("ensure_built", 0.0)
    rows.append(("cluster: rest of start", start - sum(total.get(n, 0.0) for n in inner)))
    rows.append(("apply (with its waits)", total.get("apply", 0.0)))
    connect = s["first_collector"] - s["collection_start"]
    rows.append(("connect: /version, identity", connect - total.get("start", 0.0) - total.get("apply", 0.0)
                 - total.get("load", 0.0) - total.get("claim", 0.0)))
    rows.append(("collect (snapshot, parametrise)", s["collection_end"] - s["first_collector"]))
    rows.append(("run the checks", s.get("run_end", s["collection_end"]) - s.get("run_start", s["collection_end"])))
    rows.append(("reports (sessionfinish)", s["unconfigure"] - s.get("run_end", s["collection_end"])))
    rows.append(("cluster stop", total.get("stop", 0.0)))
    rows.append(("rest of close, interpreter exit", run["wall"] - (s["unconfigure"] - run["began"]) - total.get("stop", 0.0)))
    return rows


def median_breakdown(runs: list[dict]) -> dict[str, float]:
    tables = [dict(breakdown(r)) for r in runs if r.get("stamps")]
    if not tables:
        return {}
    return {name: statistics.median(t.get(name, 0.0) for t in tables) for name in tables[0]}


def start_spares(checkout: Path, folder: Path) -> None:
    env = dict(os.environ, KUBEPROOF_SPARES=str(folder), PYTHONPATH=str(checkout))
    subprocess.run([sys.executable, "-m", "kubeproof.controlplane", "spares", "start"], cwd=checkout, env=env,
                   check=True, capture_output=True)


def stop_spares(checkout: Path, folder: Path) -> None:
    env = dict(os.environ, KUBEPROOF_SPARES=str(folder), PYTHONPATH=str(checkout))
    subprocess.run([sys.executable, "-m", "kubeproof.controlplane", "spares", "stop"], cwd=checkout, env=env,
                   capture_output=True)


def wait_for_spare(folder: Path, limit: float = 90.0) -> None:
    """Waits until the supervisor has a spare ready: the warm figure is for a gate that starts after its
    spare (as in a CI job that starts the supervisor first), not for one that waits for a start."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if any(folder.glob("*/ready")):
            return
        time.sleep(0.2)
    raise SystemExit(f"manifests_gate: no warm spare ready in {folder} after {limit:.0f} s; see {folder}/supervisor.log")


def wait_for_quiet(limit: float = 60.0) -> float:
    """Waits (up to `limit` s) for the 1-minute load average to drop under one per core; returns it."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] > os.cpu_count() and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def _wall(run: dict) -> str:
    return f"{run['wall']:.1f} s" if run.get("wall") else "-"


def _ratio(run: dict, checkov: dict) -> str:
    return f"{run['wall'] / checkov['wall']:.2f}x" if run.get("wall") and checkov.get("wall") else "-"


def markdown(command: str, sets: list[dict], breakdowns: dict[str, dict[str, float]], machine: str) -> str:
    lines = [BEGIN, "", f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `{command}`.", "",
             machine, "",
             "| set | kind | files | documents | kubeproof, cold | kubeproof, warm spare | checkov | cold / checkov "
             "| warm / checkov | exit: cold, warm, checkov |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in sets:
        k, w, c = s["kubeproof"], s["warm"], s["checkov"]
        lines.append(f"| {s['name']} | {s['kind']} | {s['files']} | {k.get('documents', '-')} | {_wall(k)} | {_wall(w)} | "
                     f"{_wall(c)} | {_ratio(k, c)} | {_ratio(w, c)} | {k['exit']}, {w['exit']}, {c['exit']} |")
    if breakdowns:
        names = list(dict.fromkeys(n for table in breakdowns.values() for n in table))
        columns = list(breakdowns)
        lines += ["", "Where kubeproof's time goes on `small` (median of the runs, seconds):", "",
                  "| step | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
        for name in names:
            figures = [breakdowns[c].get(name, 0.0) for c in columns]
            if max(figures) >= 0.005:
                lines.append(f"| {name} | " + " | ".join(f"{f:.2f}" for f in figures) + " |")
    lines += ["", END]
    return "\n".join(lines)


def write_section(text: str, path: Path = ROOT / "docs" / "PERFORMANCE.md") -> None:
    page = path.read_text()
    if BEGIN in page and END in page:
        page = page[:page.index(BEGIN)] + text + page[page.index(END) + len(END):]
    else:
        page = page.rstrip("\n") + "\n\n## The manifest gate against Checkov (bench/manifests_gate.py)\n\n" + text + "\n"
    path.write_text(page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="comma-separated set names (default: all)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each tool per set; medians are reported")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the kubeproof checkout to run (default: this one)")
    parser.add_argument("--no-checkov", action="store_true", help="time kubeproof alone")
    parser.add_argument("--no-write", action="store_true", help="print the table instead of writing docs/PERFORMANCE.md")
    parser.add_argument("--json", type=Path, help="also write every run's raw figures here")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="seconds to wait, before each run, for the load average to drop under the core count")
    parser.add_argument("--no-spares", action="store_true", help="time cold starts only (no warm-spare runs)")
    args = parser.parse_args(argv)
    names = args.sets.split(",") if args.sets else None
    scratch = Path(tempfile.mkdtemp(prefix="kubeproof-gate-"))
    spares = None if args.no_spares or not (args.checkout / "kubeproof" / "controlplane" / "spares.py").exists() \
        else scratch / "spares"
    none = {"wall": 0.0, "exit": "-"}
    try:
        sets = gather_sets(names, scratch)
        # One untimed run first: fills the control plane's caches (binaries, etcd template) like any
        # earlier run on this machine would have.
        run_kubeproof(args.checkout, sets[0], scratch)
        if spares:
            start_spares(args.checkout, spares)
        loads = []
        for config_set in sets:
            config_set["files"] = count_files(Path(config_set["folder"]))
            k_runs, w_runs, c_runs = [], [], []
            for _ in range(args.runs):
                loads.append(wait_for_quiet(args.quiet_wait))
                k_runs.append(run_kubeproof(args.checkout, config_set, scratch))
                if not args.no_checkov:
                    loads.append(wait_for_quiet(args.quiet_wait))
                    c_runs.append(run_checkov(config_set))
                if spares:
                    wait_for_spare(spares)
                    loads.append(wait_for_quiet(args.quiet_wait))
                    w_runs.append(run_kubeproof(args.checkout, config_set, scratch, spares))
                    if not w_runs[-1].get("warm"):
                        print(f"manifests_gate: {config_set['name']}: a warm run found no spare", file=sys.stderr)
            pick = lambda runs: sorted(runs, key=lambda r: r["wall"])[len(runs) // 2] if runs else none  # noqa: E731
            config_set["kubeproof"], config_set["warm"], config_set["checkov"] = pick(k_runs), pick(w_runs), pick(c_runs)
            config_set["runs"] = {"kubeproof": k_runs, "warm": w_runs, "checkov": c_runs}
            k, w, c = config_set["kubeproof"], config_set["warm"], config_set["checkov"]
            print(f"{config_set['name']}: kubeproof cold {k['wall']:.1f} s (exit {k['exit']}), warm {w['wall']:.1f} s "
                  f"(exit {w['exit']}), checkov {c['wall']:.1f} s (exit {c['exit']})", flush=True)
            for run in (k, w):
                if run["exit"] not in (0, 1, "-"):
                    print(run["tail"], file=sys.stderr)
        small = next((s for s in sets if s["name"] == "small"), None)
        breakdowns = {}
        if small:
            breakdowns["cold"] = median_breakdown(small["runs"]["kubeproof"])
            if small["runs"]["warm"]:
                breakdowns["warm spare"] = median_breakdown(small["runs"]["warm"])
        machine = (f"Machine: {os.cpu_count()} cores; 1-minute load average before the runs: "
                   f"{min(loads):.1f} to {max(loads):.1f}; Checkov {CHECKOV_VERSION}."
                   + (" A spares supervisor ran throughout, its idle spare beside every run." if spares else ""))
        command = "python bench/manifests_gate.py " + " ".join(argv if argv is not None else sys.argv[1:])
        text = markdown(command.strip(), sets, breakdowns, machine)
        if args.json:
            args.json.write_text(json.dumps([{k: (str(v) if isinstance(v, Path) else v) for k, v in s.items()} for s in sets],
                                            indent=1, default=str))
        if args.no_write:
            print(text)
        else:
            write_section(text)
            print(text)
    finally:
        if spares:
            stop_spares(args.checkout, spares)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
