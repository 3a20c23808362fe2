"""The fault matrix: what the suite asks the API server (targets), the faults the proxy can inject
into those answers, a seeded cluster where every target is asked and every kind pages, one suite run
per (fault, target) pair through the proxy, and the judgement of that run.

A pair is judged on three things:
  (a) no result that depended on the faulted answer passed: its `reads` (kubeproof's own record),
      what fault_observer.py saw it depend on through cached fixtures and direct requests, and what the
      same test depended on in the run without faults;
  (b) the run says so: exit 2/3 with a kubeproof message naming the endpoint (a start-up request),
      or exit 0/1 with the dependent results not verified (or, fail closed, failed or errored), and no
      Python traceback anywhere;
  (c) no artifact half-written: no `.partial` folder left, and a run folder only for a finished run,
      with every file matching SHA256SUMS.
Used by tests_e2e/test_fault_injection.py (a subset) and bench/fault_matrix.py (every pair)."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from faultproxy import FAULTS, STATUS_FAULTS, FaultProxy, Rule

from kubeproof.parameters import OBJECT_PARAMETERS
from kubeproof.probes import INVALID_LEVEL
from kubeproof.snapshot import KINDS

ROOT = Path(__file__).resolve().parents[1]
E2E = Path(__file__).resolve().parent
CONTEXT = "faulty"
REQUEST_TIMEOUT = 2.0  # the suite's --request-timeout in these runs
HANG_SECONDS = 3.5     # a hung answer outlasts it, then the connection closes unanswered
PAGE_LIMIT = 1         # every kind with two objects or more pages
NAMESPACE = "fault-injection"
CONTINUE_FAULTS = ("500@continue", "truncate-unframed@continue", "corrupt@continue")


@dataclass(frozen=True)
class Target:
    """One thing the suite asks: the requests it matches and the read names results record for it."""

    name: str
    method: str
    path: str  # a regex the whole path must match
    reads: tuple[str, ...]  # read names; one ending in ":" matches as a prefix
    auth: str = "authenticated"
    query_contains: str | None = None
    body_contains: str | None = None
    body_lacks: str | None = None
    paged: bool = False    # a LIST: 410 Gone and the continue-page faults apply
    startup: bool = False  # asked before any test runs

    def rule(self, fault: str) -> Rule:
        base, _, where = fault.partition("@")
        return Rule(base, self.method, self.path, auth=self.auth, continue_only=bool(where) or base == "gone",
                    query_contains=self.query_contains, body_contains=self.body_contains, body_lacks=self.body_lacks)

    def faults(self, full: bool = True) -> tuple[str, ...]:
        plain = tuple(f for f in FAULTS if f != "gone")
        if not self.paged:
            return plain
        return (*plain, "gone", *(CONTINUE_FAULTS if full else ()))

    def concerns(self, name: str) -> bool:
        """Whether a read name (from a result, or fault_observer's "request:METHOD PATH") is this target."""
        if name.startswith("request:"):
            method, _, path = name.removeprefix("request:").partition(" ")
            return (self.auth != "anonymous" and method == self.method and re.fullmatch(self.path, path) is not None
                    and self.query_contains is None and self.body_contains is None and self.body_lacks is None)
        return any(name == r or (r.endswith(":") and name.startswith(r)) for r in self.reads)


def targets() -> list[Target]:
    found = [Target(f"list {k.name}", "GET", re.escape(k.path), (k.name,), paged=True) for k in KINDS.values()]
    namespace = r"/api/v1/namespaces/[^/]+"
    return found + [
        Target("GET /version", "GET", "/version", (), startup=True),
        Target("discovery", "GET", r"/apis/[^/]+/[^/]+", ("discovery:",)),
        Target("selfsubjectreview", "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", (), startup=True),
        Target("GET kube-system", "GET", "/api/v1/namespaces/kube-system", (), startup=True),
        Target("access review", "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", ("probe:access-review",)),
        Target("dry-run pod", "POST", namespace + "/pods", ("probe:privileged-pod",), query_contains="dryRun=All"),
        Target("dry-run label", "PATCH", namespace, ("probe:label",), query_contains="dryRun=All",
               body_lacks=INVALID_LEVEL),
        Target("dry-run invalid label", "PATCH", namespace, ("probe:live",), query_contains="dryRun=All",
               body_contains=INVALID_LEVEL),
        Target("anonymous GET", "GET", "/api|/apis|/version|/healthz", ("probe:anonymous",), auth="anonymous"),
    ]


TARGETS = {t.name: t for t in targets()}

# Pairs where the answer after the fault means exactly what a compliant server says, so no client
# could tell: passing (or being exempt) there is right, not false. They are run and shown, and not
# counted as false passes.
_TEXT_404 = ("the API server answers a group it does not serve with 404 and a plain-text body; damaging "
             "the text leaves the 404, which is the true answer on this cluster")
INDISTINGUISHABLE = {
    ("401", "anonymous GET"): "401 to an unauthenticated GET is the compliant answer the probe asks for",
    ("404", "discovery"): "404 on a group version's discovery is how a cluster says it does not serve it, "
                          "and this cluster does not serve the groups asked about",
    ("404", "list peerauthentications"): "this cluster does not serve Istio's API: 404 is the true answer",
    ("corrupt", "discovery"): _TEXT_404,
    ("truncate-unframed", "discovery"): _TEXT_404,
    ("corrupt", "list peerauthentications"): _TEXT_404,
    ("truncate-unframed", "list peerauthentications"): _TEXT_404,
}


# -- the cluster ----------------------------------------------------------------------------------
def _pod_spec(service_account: str) -> dict:
    """A pod template that meets Pod Security 'restricted' and the other workload checks."""
    return {
        "serviceAccountName": service_account, "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "nodeSelector": {"fault-injection/never": "true"},  # nothing runs: the objects are what is judged
        "containers": [{
            "name": "app", "image": "registry.k8s.io/pause:3.10", "imagePullPolicy": "Always",
            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}, "requests": {"cpu": "10m", "memory": "16Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
        }],
    }


def seed(cluster) -> None:
    """Two objects of every kind the suite lists (so each pages at PAGE_LIMIT 1), compliant where the
    suite judges them, and one binding that grants secret reads (so access reviews are asked)."""
    ns = f"/api/v1/namespaces/{NAMESPACE}"
    apps, batch, rbac = (f"/apis/{g}/namespaces/{NAMESPACE}" for g in ("apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1"))
    labels = {"app": "fault-injection"}
    template = {"metadata": {"labels": labels}, "spec": _pod_spec("fault-app")}
    _, version = cluster.api_request("GET", "/version")
    creates = [
        ("/api/v1/namespaces", {"metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
        (f"{ns}/serviceaccounts", {"metadata": {"name": "fault-app"}, "automountServiceAccountToken": False}),
        (f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies", {"metadata": {"name": "default-deny"},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        (f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies", {"metadata": {"name": "deny-ingress"},
         "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"]}}),
        (f"{rbac}/roles", {"metadata": {"name": "secret-reader"},
                           "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        (f"{rbac}/rolebindings", {"metadata": {"name": "secret-readers"},
                                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
                                  "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "fault-reader"}]}),
    ]
    for n in (1, 2):
        name = f"fault-{n}"
        creates += [
            (f"{ns}/resourcequotas", {"metadata": {"name": name}, "spec": {"hard": {"pods": "10", "limits.memory": "1Gi"}}}),
            (f"{ns}/limitranges", {"metadata": {"name": name}, "spec": {"limits": [
                {"type": "Container", "max": {"memory": "1Gi"}, "default": {"cpu": "100m", "memory": "64Mi"}}]}}),
            (f"{ns}/secrets", {"metadata": {"name": name}, "stringData": {"setting": "not-a-credential"}}),
            (f"{ns}/pods", {"metadata": {"name": name, "labels": labels}, "spec": _pod_spec("fault-app")}),
            (f"{ns}/replicationcontrollers", {"metadata": {"name": name}, "spec": {
                "replicas": 0, "selector": {**labels, "rc": name}, "template": {
                    "metadata": {"labels": {**labels, "rc": name}}, "spec": _pod_spec("fault-app")}}}),
            (f"{apps}/deployments", {"metadata": {"name": name}, "spec": {
                "replicas": 0, "selector": {"matchLabels": labels}, "template": template}}),
            (f"{apps}/statefulsets", {"metadata": {"name": name}, "spec": {
                "replicas": 0, "serviceName": name, "selector": {"matchLabels": labels}, "template": template}}),
            (f"{apps}/daemonsets", {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": labels}, "template": template}}),
            (f"{apps}/replicasets", {"metadata": {"name": name}, "spec": {
                "replicas": 0, "selector": {"matchLabels": {**labels, "rs": name}},
                "template": {"metadata": {"labels": {**labels, "rs": name}}, "spec": _pod_spec("fault-app")}}}),
            (f"{batch}/jobs", {"metadata": {"name": name}, "spec": {"suspend": True, "template": {
                "metadata": {"labels": labels}, "spec": {**_pod_spec("fault-app"), "restartPolicy": "Never"}}}}),
            (f"{batch}/cronjobs", {"metadata": {"name": name}, "spec": {"schedule": "0 0 1 1 *", "suspend": True,
                "jobTemplate": {"spec": {"template": {"metadata": {"labels": labels},
                                                      "spec": {**_pod_spec("fault-app"), "restartPolicy": "Never"}}}}}}),
            ("/api/v1/nodes", {"metadata": {"name": name, "labels": {"fault-injection": "true"}},
                               "spec": {"unschedulable": True}}),
        ]
    for path, body in creates:
        status, answer = cluster.api_request("POST", path, body)
        if status not in (201, 409):
            raise RuntimeError(f"seeding {path} {body['metadata']['name']}: HTTP {status} {answer.get('message')}")
    for n in (1, 2):
        status, answer = cluster.api_request("PATCH", f"/api/v1/nodes/fault-{n}/status", {"status": {"nodeInfo": {
            "kubeletVersion": version.get("gitVersion", "v0.0.0"), "kubeProxyVersion": "", "osImage": "none",
            "containerRuntimeVersion": "none", "kernelVersion": "none", "operatingSystem": "linux",
            "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": ""}}})
        if status != 200:
            raise RuntimeError(f"seeding node fault-{n} status: HTTP {status} {answer.get('message')}")


def start_proxy(cluster, page_limit: int = PAGE_LIMIT) -> FaultProxy:
    return FaultProxy(cluster.server, cluster.ca.cert, cluster.admin.cert, cluster.admin.key,
                      page_limit=page_limit, hang_seconds=HANG_SECONDS).start()


# -- one run --------------------------------------------------------------------------------------
@dataclass
class Run:
    returncode: int
    output: str
    results: dict | None
    dependencies: dict[str, list[str]]  # nodeid -> fault_observer's names
    report_dir: Path
    seconds: float
    hits: int = 0

    def records(self) -> list[dict]:
        return (self.results or {}).get("results", [])


def run_suite(proxy: FaultProxy, report_dir: Path, paths=("tests_cluster",), *args: str, timeout: float = 900) -> Run:
    scratch = Path(tempfile.mkdtemp(prefix="kubeproof-fault-run-"))
    kubeconfig = proxy.write_kubeconfig(scratch / "kubeconfig", CONTEXT)
    dependencies = scratch / "dependencies.json"
    env = dict(os.environ, KUBEPROOF_FAULT_DEPENDENCIES=str(dependencies),
               PYTHONPATH=os.pathsep.join(p for p in (str(E2E), os.environ.get("PYTHONPATH")) if p))
    command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "-p", "fault_observer",
               f"--report-dir={report_dir}", f"--cluster={CONTEXT}", f"--kubeconfig={kubeconfig}",
               f"--request-timeout={REQUEST_TIMEOUT}", *args]
    began = time.monotonic()
    try:
        process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
        seconds = time.monotonic() - began
        observed = json.loads(dependencies.read_text()) if dependencies.exists() else {}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    folders = sorted(p.parent for p in report_dir.glob("*/results.json")) if report_dir.exists() else []
    results = json.loads((folders[-1] / "results.json").read_text()) if folders else None
    return Run(process.returncode, process.stdout + process.stderr, results, observed, report_dir, seconds)


def _siblings(record: dict) -> set[str]:
    """The kinds kubeproof adds to `reads` for an object parameter besides the object's own: a test
    of a Deployment is filled from every workload kind, but judges only that Deployment."""
    kind = (record.get("object") or {}).get("kind")
    own = {k.name for k in KINDS.values() if k.kind == kind}
    for group in OBJECT_PARAMETERS.values():
        if own & set(group):
            return set(group) - own
    return set()


def dependencies(run: Run, clean: Run | None = None) -> dict[str, set[str]]:
    """Everything each result depended on: its reads (less the sibling kinds of its object), what
    fault_observer.py saw, and the same in the run without faults (a test that stopped early under a
    fault may have recorded less)."""
    found: dict[str, set[str]] = {}
    for source in ([clean] if clean else []) + [run]:
        for record in source.records():
            found.setdefault(record["nodeid"], set()).update(set(record.get("reads") or ()) - _siblings(record))
        for nodeid, names in source.dependencies.items():
            found.setdefault(nodeid, set()).update(names)
    return found


def _function(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def paths_for(target: Target, clean: Run, per_file: int | None = None) -> list[str]:
    """The suite's test functions that depend on the target, by the run without faults (a fault can
    only change what a test that asks for the answer sees); with `per_file`, at most that many per
    file, those with the most passes first. For a target nothing depends on (asked at start-up
    only), the function with the fewest results."""
    needs = dependencies(clean)
    passes: dict[str, int] = {}
    for record in clean.records():
        function = _function(record["nodeid"])
        if any(target.concerns(x) for x in needs.get(record["nodeid"], ())):
            passes[function] = passes.get(function, 0) + (record["status"] == "passed")
    if not passes:
        sizes: dict[str, int] = {}
        for record in clean.records():
            sizes[_function(record["nodeid"])] = sizes.get(_function(record["nodeid"]), 0) + 1
        return [min(sorted(sizes), key=sizes.get)]
    if not per_file:
        return sorted(passes)
    by_file: dict[str, list[str]] = {}
    for function in sorted(passes, key=lambda f: (-passes[f], f)):
        by_file.setdefault(function.split("::")[0], []).append(function)
    return sorted(f for functions in by_file.values() for f in functions[:per_file])


# -- judgement ------------------------------------------------------------------------------------
@dataclass
class Verdict:
    fault: str
    target: str
    hits: int
    returncode: int
    outcome: str
    seconds: float
    false_passes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    indistinguishable: str | None = None
    # Passes whose `reads` name the faulted kind only because their object parameter is filled from
    # several kinds (see _siblings): shown, and not false passes.
    sibling_passes: int = 0

    @property
    def tried(self) -> bool:
        return self.hits > 0

    def to_dict(self) -> dict:
        found = {"fault": self.fault, "target": self.target, "hits": self.hits, "returncode": self.returncode,
                 "outcome": self.outcome, "seconds": round(self.seconds, 1), "false_passes": self.false_passes,
                 "problems": self.problems, "sibling_passes": self.sibling_passes}
        if self.indistinguishable:
            found["indistinguishable"] = self.indistinguishable
        return found


def artifact_problems(report_dir: Path, finished: bool) -> list[str]:
    problems = []
    entries = list(report_dir.iterdir()) if report_dir.exists() else []
    partial = [e.name for e in entries if e.name.startswith(".")]
    if partial:
        problems.append(f"half-written artifacts left behind: {partial}")
    folders = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
    if not finished:
        if folders:
            problems.append(f"a run that did not finish left a run folder: {[f.name for f in folders]}")
        return problems
    if len(folders) != 1:
        return problems + [f"expected one run folder, found {[f.name for f in folders]}"]
    sums = folders[0] / "SHA256SUMS"
    if not sums.exists():
        return problems + ["the run folder has no SHA256SUMS"]
    listed = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    for path in folders[0].iterdir():
        if path.name == "SHA256SUMS":
            continue
        if listed.get(path.name) != hashlib.sha256(path.read_bytes()).hexdigest():
            problems.append(f"{path.name} does not match SHA256SUMS")
    return problems


STARTUP_EVIDENCE = {"selfsubjectreview": "identity", "GET kube-system": "cluster fingerprint", "GET /version": "server version"}


def judge(fault: str, target: Target, run: Run, clean: Run, proxy_url: str) -> Verdict:
    verdict = Verdict(fault, target.name, run.hits, run.returncode, "", run.seconds,
                      indistinguishable=INDISTINGUISHABLE.get((fault, target.name)))
    if "Traceback (most recent call last)" in run.output or "INTERNALERROR" in run.output:
        verdict.problems.append("a Python traceback in the output")
    finished = run.returncode in (0, 1)
    verdict.problems += artifact_problems(run.report_dir, finished)
    if run.hits == 0:
        verdict.outcome = "not asked"
        return verdict
    if run.returncode in (2, 3):
        verdict.outcome = f"run stopped (exit {run.returncode})"
        message = [line for line in run.output.splitlines() if "kubeproof:" in line]
        if not message or proxy_url not in " ".join(message):
            verdict.problems.append(f"exit {run.returncode} without a kubeproof message naming {proxy_url}")
        if not target.startup:
            verdict.problems.append("a fault in a test's own request stopped the whole run")
        return verdict
    if not finished or run.results is None:
        verdict.outcome = f"exit {run.returncode}"
        verdict.problems.append(f"unexpected exit status {run.returncode}: {run.output[-500:]}")
        return verdict
    needs = dependencies(run, clean)
    affected = [r for r in run.records() if any(target.concerns(n) for n in needs.get(r["nodeid"], ()))]
    statuses = sorted({r["status"] for r in affected})
    for record in affected:
        if record["status"] == "passed" and not verdict.indistinguishable:
            verdict.false_passes.append(record["nodeid"])
    verdict.sibling_passes = sum(
        1 for r in run.records()
        if r["status"] == "passed" and r not in affected and any(target.concerns(n) for n in r.get("reads") or ()))
    if affected:
        shown = [s.replace("_", " ") for s in statuses]
        verdict.outcome = " + ".join(shown) if shown != ["not verified"] else "not verified"
        if not set(statuses) & {"not_verified", "error", "failed"} and not verdict.indistinguishable:
            verdict.problems.append(f"no dependent result says anything went wrong ({', '.join(statuses)})")
        # Fail closed is not enough: an answer the suite cannot use is "not verified", never a crash.
        verdict.problems += [f"{r['nodeid']} errored: {r['reason'][:200]}" for r in affected if r["status"] == "error"]
    elif target.startup:
        shown = (run.results.get("environment") or {}).get(STARTUP_EVIDENCE[target.name], "")
        verdict.outcome = f"{STARTUP_EVIDENCE[target.name]} unknown" if str(shown).startswith("unknown") else "no effect"
        if not str(shown).startswith("unknown"):
            verdict.problems.append(f"the evidence states {STARTUP_EVIDENCE[target.name]} {shown!r} from a faulty answer")
    else:
        verdict.outcome = "no dependent result"
        verdict.problems.append("the fault fired but no result depends on the faulted answer")
    return verdict


def asked(target: Target, fault: str, seen) -> bool:
    """Whether the run without faults sent a request this pair's fault would have hit."""
    rule = target.rule(fault)
    return any(rule.matches(s.method, s.path, s.query, s.authenticated, s.body) for s in seen)


def not_asked(fault: str, target: Target) -> Verdict:
    return Verdict(fault, target.name, 0, 0, "not asked", 0.0)


def run_pair(proxy: FaultProxy, fault: str, target: Target, clean: Run, work: Path, whole_suite: bool = False,
             per_file: int | None = None, *args: str) -> Verdict:
    rule = target.rule(fault)
    proxy.inject(rule)
    try:
        paths = ["tests_cluster"] if whole_suite else paths_for(target, clean, per_file)
        report_dir = work / f"{target.name.replace(' ', '_').replace('/', '_')}-{fault}"
        run = run_suite(proxy, report_dir, paths, *args)
        run.hits = rule.hits
    finally:
        proxy.clear()
    return judge(fault, target, run, clean, proxy.url)


def run_pairs(proxies: list[FaultProxy], pairs: list[tuple[str, Target]], clean: Run, seen, work: Path,
              whole_suite: bool = False, per_file: int | None = None, on_verdict=None) -> list[Verdict]:
    """Every pair, as many at a time as there are proxies (each run has a proxy of its own, so each
    sees only its own fault); a pair whose request the suite never sent is not run. Verdicts come
    back in the order of `pairs`."""
    todo: queue.Queue = queue.Queue()
    for index, pair in enumerate(pairs):
        todo.put((index, pair))
    verdicts: dict[int, Verdict] = {}
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work_through(proxy: FaultProxy) -> None:
        while not failures:
            try:
                index, (fault, target) = todo.get_nowait()
            except queue.Empty:
                return
            try:
                if asked(target, fault, seen):
                    verdict = run_pair(proxy, fault, target, clean, work, whole_suite, per_file)
                else:
                    verdict = not_asked(fault, target)
            except BaseException as error:  # surfaced in the caller's thread
                failures.append(error)
                return
            with lock:
                verdicts[index] = verdict
                if on_verdict:
                    on_verdict(len(verdicts), len(pairs), verdict)

    threads = [threading.Thread(target=work_through, args=(proxy,)) for proxy in proxies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return [verdicts[i] for i in sorted(verdicts)]


def summary(verdicts: list[Verdict]) -> dict:
    tried = [v for v in verdicts if v.tried]
    return {
        "pairs": len(verdicts),
        "pairs_tried": len(tried),
        "not_asked": [f"{v.fault} x {v.target}" for v in verdicts if not v.tried],
        "false_passes": sum(len(v.false_passes) for v in tried),
        "pairs_with_false_passes": [f"{v.fault} x {v.target}" for v in tried if v.false_passes],
        "pairs_with_problems": {f"{v.fault} x {v.target}": v.problems for v in verdicts if v.problems},
        "indistinguishable": {f"{v.fault} x {v.target}": v.indistinguishable for v in tried if v.indistinguishable},
    }


__all__ = ["FAULTS", "STATUS_FAULTS", "TARGETS", "Target", "Verdict", "judge", "run_pair", "run_suite", "seed",
           "start_proxy", "summary"]
