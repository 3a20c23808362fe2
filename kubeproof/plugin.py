"""The pytest plugin: options, fixtures, parametrisation over cluster objects, outcomes, evidence.

Data flows one way: the session's backend feeds the snapshot, tests call pure checks on what the
snapshot holds and hand the findings to `verdict`, and the records become the run folder's artifacts."""

from __future__ import annotations

import datetime
import functools
import gc
import html
import os
import platform
import subprocess
from pathlib import Path

import pytest

import kubeproof
from kubeproof import ratchet
from kubeproof.artifacts import RunFolder, sarif_log, write_junit
from kubeproof.backends import Unreachable
from kubeproof.controlplane.build import REPO_ROOT as CHECKOUT
from kubeproof.evidence import Record, counts_by_control, counts_by_practice, is_grouped, outcome_counts, row_html, summary_html
from kubeproof.governance import Governance
from kubeproof.practices import FRAMEWORKS, PRACTICES
from kubeproof.probes import Probes
from kubeproof.results import Finding, NotVerified, ObjectRef
from kubeproof.session import EXIT_CONFIG, EXIT_UNREACHABLE, Audit, ConfigError, Options, resolve_cluster
from kubeproof.snapshot import KINDS, WORKLOAD_KINDS, owned_by_a_workload

AUDIT = pytest.StashKey["Audit | None"]()
RECORDS = pytest.StashKey[list]()
STARTED = pytest.StashKey[datetime.datetime]()
RUN = pytest.StashKey["RunFolder | None"]()
GOVERNANCE = pytest.StashKey[Governance]()
VERDICT = pytest.StashKey["Verdict"]()
COMPLETED = pytest.StashKey[bool]()
PROBES = pytest.StashKey["Probes"]()
UPDATED = pytest.StashKey[tuple]()  # (accepted file, entries) after --update-baseline

# Test parameters that stand for cluster objects, and the kinds that fill them.
OBJECT_PARAMETERS = {
    "namespace": ("namespaces",),
    "role": ("clusterroles", "roles"),
    "binding": ("clusterrolebindings", "rolebindings"),
    "service_account": ("serviceaccounts",),
    "secret": ("secrets",),  # metadata only
    "node": ("nodes",),
    "network_policy": ("networkpolicies",),
    "peer_authentication": ("peerauthentications",),  # Istio; only asked for where the mesh is installed
    # Controllers and bare pods; what a controller owns is judged once, through its owner's template.
    "workload": WORKLOAD_KINDS,
}
SUITE_FOLDER = "tests_cluster"
WAIVER_TESTS = "test_baseline_waivers.py"
MANIFEST_TESTS = "test_manifests.py"
GROUP_PASSED_ABOVE = 2000
KUBELET_TIMEOUT = 5.0  # seconds for one kubelet request; a dead node costs one of these
GROUP_PASSED = pytest.StashKey[bool]()
FAILURES_SHORT = pytest.StashKey[bool]()
KEYWORDS = pytest.StashKey[dict]()


class Unreadable:
    """Stands in for the objects of a kind that could not be listed; a test given one is not verified."""

    def __init__(self, kind: str, reason: str):
        self.kind, self.reason = kind, reason


def pytest_addoption(parser):
    group = parser.getgroup("kubeproof", "kubeproof cluster audit")
    group.addoption("--cluster", help="kubeconfig context to audit, 'local' for the embedded cluster, or "
                    "'in-cluster' inside a pod (default: the kubeconfig's current context)")
    group.addoption("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    group.addoption("--baseline", help="baseline YAML (default: baselines/<cluster>.yaml, else baselines/default.yaml)")
    group.addoption("--local-profile", default="hardened", choices=("hardened", "insecure"),
                    help="profile of the embedded cluster for --cluster=local (default: hardened)")
    group.addoption("--local-nodes", type=int, default=2, metavar="N",
                    help="how many kubelets the embedded cluster runs (default 2; each is a node of its own)")
    group.addoption("--local-attach", metavar="DIR",
                    help="audit an embedded cluster another process started (its work folder) instead of starting one")
    group.addoption("--etcd-endpoint", help="etcd client URL, to read how secrets are stored (live clusters)")
    group.addoption("--etcd-ca", help="CA bundle for --etcd-endpoint")
    group.addoption("--etcd-cert", help="client certificate for --etcd-endpoint")
    group.addoption("--etcd-key", help="client key for --etcd-endpoint")
    group.addoption("--manifests", metavar="DIR",
                    help="apply a folder of manifests (YAML, multi-document, Kustomize) into a fresh embedded "
                    "cluster with server-side apply, and audit that")
    group.addoption("--request-timeout", type=float, default=30.0, metavar="SECONDS",
                    help="how long one API request may take before its data counts as unreadable (default 30)")
    group.addoption("--no-dry-run", action="store_true",
                    help="send no server-side dry-runs (for a read-only identity, e.g. the in-cluster CronJob); "
                    "the proofs that need them are reported not verified")
    group.addoption("--fail-on", choices=("any", "new"), default="any",
                    help="'new': fail only on findings not recorded as accepted beside the baseline (the ratchet)")
    group.addoption("--update-baseline", action="store_true",
                    help="record this run's findings as accepted (<baseline>.accepted.yaml) for --fail-on=new")
    group.addoption("--html-passed", choices=("auto", "rows", "grouped"), default="auto",
                    help="passed and exempt results in the HTML table: one row each, or grouped per test in the "
                    f"summary (auto: grouped above {GROUP_PASSED_ABOVE} results, so a large report opens in seconds)")
    group.addoption("--report-dir", default="reports", help="where run folders are written (default: reports/)")
    # --strict is pytest's own flag (strict markers, config and ids); kubeproof also reads it to count
    # "not verified" results as failures.


def _options(config) -> Options:
    get = config.getoption
    return Options(get("cluster"), get("kubeconfig"), get("baseline"), get("local_profile"), get("local_attach"),
                   get("etcd_endpoint"), get("etcd_ca"), get("etcd_cert"), get("etcd_key"), get("manifests"),
                   get("request_timeout"), get("local_nodes"))


def _home(config) -> Path:
    """The folder that holds the suite and its baselines: pytest's rootdir when it has tests_cluster/,
    else the checkout kubeproof runs from (pytest run from another directory)."""
    return config.rootpath if (config.rootpath / SUITE_FOLDER).is_dir() else CHECKOUT


def _is_audit(config) -> bool:
    """The run audits a cluster when it runs the suite in tests_cluster/."""
    suite = Path(_home(config), SUITE_FOLDER).resolve()
    if config.args_source == pytest.Config.ArgsSource.INVOCATION_DIR and _home(config) != config.rootpath and any(
            config.getoption(name) for name in ("cluster", "manifests", "local_attach")):
        # `pytest --cluster=prod` from another directory: the suite is the one beside this plugin.
        config.args[:] = [str(suite)]
    for arg in config.args:
        path = Path(config.invocation_params.dir, str(arg).split("::")[0]).resolve()
        if path == suite or suite in path.parents or path in suite.parents:
            return True
    return False


# -- session ---------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for name, text in PRACTICES.items():
        config.addinivalue_line("markers", f"{name}: practice: {text}")
    for name, text in FRAMEWORKS.items():
        config.addinivalue_line("markers", f"{name}(*ids): {text}")
    config.stash[AUDIT] = None
    config.stash[RUN] = None
    config.stash[RECORDS] = []
    config.stash[STARTED] = datetime.datetime.now(datetime.timezone.utc)
    if not _is_audit(config):
        return
    try:
        cluster = resolve_cluster(_options(config))
    except ConfigError as error:
        pytest.exit(f"kubeproof: {error}", returncode=EXIT_CONFIG)
    # Set before pytest-html configures, which this hook runs ahead of. JUnit XML is written from the
    # records at the end (artifacts.write_junit), so it counts exactly as results.json does.
    stamp = config.stash[STARTED].strftime("%Y%m%dT%H%M%SZ")
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)
    run = RunFolder(Path(config.rootpath, config.getoption("report_dir")), f"{safe_name}-{stamp}")
    config.stash[RUN] = run
    config.option.htmlpath = str(run.html)
    config.option.self_contained_html = True


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session):
    config = session.config
    if config.stash[RUN] is None:
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        if reporter:
            reporter.write_line(f"kubeproof: {message}")
            # Shown as it happens, also where output is a pipe (CI logs, and the interrupt e2e, which
            # waits for this line: a smaller run could end before the buffer filled).
            reporter.flush()

    try:
        audit = Audit.open(_options(config), _home(config), progress=progress)
        accepted = None
        if config.getoption("fail_on") == "new":
            accepted = ratchet.load(ratchet.accepted_path(audit.baseline.path))
    except ConfigError as error:
        pytest.exit(f"kubeproof: {error}", returncode=EXIT_CONFIG)
    except ratchet.AcceptedFileError as error:
        audit.close()
        pytest.exit(f"kubeproof: {error}", returncode=EXIT_CONFIG)
    except Unreachable as error:
        pytest.exit(f"kubeproof: cannot reach the API server {error.endpoint}: {error.reason}", returncode=EXIT_UNREACHABLE)
    config.stash[AUDIT] = audit
    config.stash[PROBES] = Probes(audit.backend, dry_runs=not config.getoption("no_dry_run"))
    config.stash[GOVERNANCE] = Governance(audit.baseline.waivers, datetime.date.today(), accepted)
    _add_environment_metadata(config, audit)
    progress(f"auditing {audit.cluster} at {audit.backend.server} (Kubernetes {audit.server_version.get('gitVersion', '?')}) "
             f"as {audit.identity}, against {audit.baseline.path}")
    return None


def _environment(config, audit: Audit) -> dict:
    return {
        "cluster": audit.cluster,
        "cluster fingerprint": audit.fingerprint,
        "backend": audit.backend.kind,
        "API server": audit.backend.server,
        "server version": audit.server_version.get("gitVersion", "unknown"),
        "identity": audit.identity,
        "baseline": audit.baseline.path,
        "baseline sha256": audit.baseline.sha256,
        "kubeproof version": kubeproof.__version__,
        "kubeproof commit": _git_commit(_home(config)),
        "started (UTC)": config.stash[STARTED].isoformat(timespec="seconds"),
        "strict": bool(config.getoption("strict")),
        "fail on": config.getoption("fail_on"),
    }


def _add_environment_metadata(config, audit: Audit) -> None:
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:  # pytest-html without pytest-metadata: the summary still carries it
        return
    # pytest-html renders environment values as HTML; names of clusters and users are text.
    config.stash[metadata_key].update({k: html.escape(str(v)) for k, v in _environment(config, audit).items()})


def _git_commit(root) -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (done.stdout.strip() or "no commit") + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pytest_collection_modifyitems(session, config, items):
    audit = config.stash.get(AUDIT, None)
    if audit is not None and audit.backend.kind != "manifests":
        # The manifest tests only mean something when a folder of manifests was applied.
        unused = [item for item in items if item.path.name == MANIFEST_TESTS]
        if unused:
            config.hook.pytest_deselected(items=unused)
            items[:] = [item for item in items if item.path.name != MANIFEST_TESTS]
    # Waiver tests judge what every other test matched, so they run last.
    items.sort(key=lambda item: item.path.name == WAIVER_TESTS)
    choice = config.getoption("html_passed")
    config.stash[GROUP_PASSED] = choice == "grouped" or (choice == "auto" and len(items) > GROUP_PASSED_ABOVE)
    if audit is not None:
        # The snapshot and the items live until the end: keep the garbage collector from walking them
        # again and again (and in pytest's final collection) while the tests run.
        gc.freeze()
    if audit is not None and len(items) > GROUP_PASSED_ABOVE and config.option.tbstyle == "auto":
        # pytest's failure section looks through every report once per failure: measured at 34,000
        # results and 1,265 failures, 60 of the audit's 110 s. The short summary still names each
        # failure with its first finding; the report and results.json hold them all.
        config.option.tbstyle = "no"
        config.stash[FAILURES_SHORT] = True


def pytest_generate_tests(metafunc):
    audit = metafunc.config.stash.get(AUDIT, None)
    wanted = [p for p in (*OBJECT_PARAMETERS, "waiver", "manifest", "expected_agent") if p in metafunc.fixturenames]
    if wanted and audit is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid} needs cluster objects; run it as part of {SUITE_FOLDER}/")
    if "waiver" in wanted:
        metafunc.parametrize("waiver", [
            pytest.param(w, marks=pytest.mark.cis(w.control), id=f"line{w.line}-{w.control}-{w.kind}/{w.namespace}/{w.name}")
            for w in audit.baseline.waivers
        ] or [pytest.param(None, marks=pytest.mark.skip(reason="the baseline has no waivers"), id="none")])
    if "expected_agent" in wanted:
        # One case per monitoring agent the baseline expects ("NAMESPACE/NAME" patterns).
        metafunc.parametrize("expected_agent", list(audit.baseline.monitoring_daemonsets) or [pytest.param(
            None, marks=pytest.mark.skip(reason="the baseline expects no monitoring agents (monitoring.daemonsets)"), id="none")])
    if "manifest" in wanted:
        documents = getattr(audit.backend, "documents", [])
        metafunc.parametrize("manifest", documents, ids=[f"{d.where} {d.key()[0]}/{d.key()[2]}" for d in documents])
    for parameter in wanted:
        if parameter in ("waiver", "manifest", "expected_agent"):
            continue
        values, ids = [], []
        for name in OBJECT_PARAMETERS[parameter]:
            read = audit.snapshot.read(name)
            if read.readable:
                for item in read.items:
                    if parameter == "workload" and owned_by_a_workload(item):
                        continue
                    values.append(item)
                    ids.append(str(ObjectRef.of(item, read.kind.kind)))
            else:
                values.append(Unreadable(read.kind.kind, read.error))
                ids.append(f"{read.kind.kind}:unreadable")
        if not values:
            # Nothing of this kind exists: say so, rather than pytest's "got empty parameter set".
            kinds = ", ".join(KINDS[name].kind for name in OBJECT_PARAMETERS[parameter])
            values, ids = [pytest.param(None, marks=pytest.mark.skip(reason=f"no {kinds} objects in this cluster"), id="none")], None
        metafunc.parametrize(parameter, values, ids=ids)


# -- fixtures --------------------------------------------------------------------------------------
def _audit(request) -> Audit:
    audit = request.config.stash.get(AUDIT, None)
    if audit is None:
        pytest.fail(f"this test audits a cluster; run it from {SUITE_FOLDER}/", pytrace=False)
    return audit


@pytest.fixture(scope="session")
def cluster(request):
    """The backend of the audited cluster: API requests, anonymous probes, dry-runs."""
    return _audit(request).backend


@pytest.fixture(scope="session")
def snapshot(request):
    return _audit(request).snapshot


@pytest.fixture(scope="session")
def baseline(request):
    return _audit(request).baseline


@pytest.fixture(scope="session")
def governance(request) -> Governance:
    _audit(request)
    return request.config.stash[GOVERNANCE]


@pytest.fixture(scope="session")
def probes(request):
    """Read-only live questions (anonymous GETs, server-side dry-runs, access reviews), each asked once."""
    return request.config.stash[PROBES]


@pytest.fixture(scope="session")
def kubelets(request):
    """Every node's kubelet, asked once and all at once: configuration, command line, probes."""
    from kubeproof.kubelets import Kubelets

    audit = _audit(request)
    asked = Kubelets(audit.backend, timeout=min(KUBELET_TIMEOUT, request.config.getoption("request_timeout")))
    asked.ask_all(audit.snapshot.items("nodes"))
    return asked


@pytest.fixture(scope="session")
def server_version(request) -> dict:
    """The API server's /version answer, read once when the audit opened."""
    version = _audit(request).server_version
    if not version.get("gitVersion"):
        raise NotVerified("the API server did not answer GET /version with its version")
    return version


@pytest.fixture(scope="session")
def server_minor(request) -> str:
    version = _audit(request).server_version
    major, minor = str(version.get("major", "")), str(version.get("minor", "")).rstrip("+")
    if not (major.isdigit() and minor.isdigit()):
        raise NotVerified(f"the API server did not report its version ({version!r})")
    return f"v{major}.{minor}"


@pytest.fixture(scope="session")
def embedded_cluster():
    """A hardened embedded control plane of the session's own, stopped when the session ends. The
    tests own it: they may write to it (seed objects) and audit it with --local-attach."""
    from kubeproof.controlplane import EmbeddedCluster

    with EmbeddedCluster(profile="hardened") as started:
        yield started


class Verdict:
    """Takes a check's findings and facts for the evidence, and fails the test on any finding."""

    def __init__(self):
        self.findings: list[Finding] = []
        self.facts: dict = {}

    def observe(self, **facts) -> None:
        self.facts.update(facts)

    def exempt(self, reason: str) -> None:
        pytest.skip(f"exempt: {reason}")

    def __call__(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)
        if findings:
            pytest.fail("\n".join(f.describe() for f in findings), pytrace=False)


@pytest.fixture
def verdict(request) -> Verdict:
    found = Verdict()
    request.node.stash[VERDICT] = found
    return found


# -- outcomes --------------------------------------------------------------------------------------
def _in_suite(item) -> bool:
    return _under_suite_folder(str(_home(item.config)), str(item.path))


@functools.lru_cache(maxsize=256)
def _under_suite_folder(root: str, path: str) -> bool:
    # Asked for every item in several hooks; resolving paths each time cost seconds at 30,000 items.
    return Path(root, SUITE_FOLDER).resolve() in Path(path).resolve().parents


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.config.stash.get(AUDIT, None) is None or not _in_suite(item):
        return
    # What this test reads is recorded, so evidence (and fault injection) can say what it rests on.
    item.config.stash[AUDIT].snapshot.touched.clear()
    item.config.stash[PROBES].touched.clear()
    record = _record(item)
    # One property per framework: JUnit readers keep one value per property name, and each report
    # carries its own copy (at 30,000 results, one per control id cost tens of MB).
    item.user_properties.extend((framework, ", ".join(ids)) for framework, ids in record.controls.items() if ids)
    callspec = getattr(item, "callspec", None)
    for name, value in (callspec.params.items() if callspec else ()):
        # The test rests on the kind its object came from, not on every kind the parameter draws from.
        kind = value.kind if isinstance(value, Unreadable) else value.get("kind") if isinstance(value, dict) else None
        record.reads.update(n for n in OBJECT_PARAMETERS.get(name, ()) if KINDS[n].kind == kind)
        if isinstance(value, Unreadable):
            raise NotVerified(f"{value.kind} objects could not be listed: {value.reason}")


def _controls_and_practice(item) -> tuple[dict[str, list[str]], str | None]:
    marks = list(item.iter_markers())  # walked once: per item, and 30,000 items at scale
    controls = {name: [str(a) for m in marks if m.name == name for a in m.args] for name in FRAMEWORKS}
    present = {m.name for m in marks}
    # Every result of a test carries the same ids: share one copy (nothing changes them after this).
    controls = _SHARED_CONTROLS.setdefault(repr(controls), controls)
    return controls, next((name for name in PRACTICES if name in present), None)


_SHARED_CONTROLS: dict[str, dict[str, list[str]]] = {}
_SHARED_READS: dict[frozenset, frozenset] = {}


def _subject(item) -> dict | None:
    callspec = getattr(item, "callspec", None)
    for name, value in (callspec.params.items() if callspec else ()):
        if isinstance(value, dict):
            subject = ObjectRef.of(value, value.get("kind") or name).__dict__
            source = _sources(item).get((subject["kind"], subject["namespace"], subject["name"]))
            if source:
                subject["source"] = f"{source[0]}:{source[1]}"
            return subject
        if name == "manifest":
            kind, namespace, object_name = value.key()
            return {"kind": str(kind), "namespace": namespace, "name": str(object_name), "source": value.where}
        if isinstance(value, Unreadable):
            return {"kind": value.kind, "name": "(could not be listed)"}
        if isinstance(value, str) and name == "path":
            return {"kind": "Endpoint", "name": value}
        if isinstance(value, str) and name == "expected_agent":
            return {"kind": "DaemonSet", "name": value}
    return None


def _sources(item) -> dict:
    audit = item.config.stash.get(AUDIT, None)
    return getattr(audit.backend, "sources", {}) if audit is not None else {}


def _record(item) -> Record:
    record = getattr(item, "_kubeproof_record", None)
    if record is None:
        controls, practice = _controls_and_practice(item)
        record = Record(item.nodeid, item.originalname, practice, controls, _subject(item))
        item._kubeproof_record = record
        item.config.stash[RECORDS].append(record)
    return record


def audit_reads(config) -> set[str]:
    return set(config.stash[AUDIT].snapshot.touched) | {f"probe:{p}" for p in config.stash[PROBES].touched}


def _status(report, call, verdict) -> tuple[str | None, str]:
    """kubeproof's reading of one phase: None when the phase says nothing new (a passed setup)."""
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, NotVerified):
        return "not_verified", excinfo.value.reason
    if excinfo is not None and isinstance(excinfo.value, Unreachable):
        return "not_verified", f"the API server stopped answering: {excinfo.value}"
    if report.outcome == "failed":
        if verdict is not None and verdict.findings and call.when == "call":
            return "failed", ""
        return "error", _error_summary(call)
    if report.outcome == "skipped":
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else _last_line(str(longrepr))
        return "skipped", reason.removeprefix("Skipped: ")
    return ("passed", "") if call.when == "call" else (None, "")


def _error_summary(call) -> str:
    """An unexpected error, named by type and place only: its message and pytest's traceback (which
    prints the test's arguments) can quote cluster data, so they stay out of the evidence unless
    KUBEPROOF_DEBUG=1 asks for them."""
    excinfo = call.excinfo
    if excinfo is None:
        return "error"
    entry = excinfo.traceback[-1] if excinfo.traceback else None
    where = f" at {Path(str(entry.path)).name}:{entry.lineno + 1}" if entry is not None else ""
    return (f"kubeproof error: {excinfo.typename}{where} during {call.when}; details withheld from the evidence "
            "because they may quote cluster data (rerun with KUBEPROOF_DEBUG=1 to see them)")


def _last_line(text: str) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1][:500] if lines else ""


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_not_verified(item, call):
    """The report of a phase that raised NotVerified, made without the traceback pytest would format
    for it: it is a known outcome with its reason, not a crash (at thousands of unreachable nodes,
    formatting those tracebacks was a third of the run)."""
    excinfo = call.excinfo
    if excinfo is None or not isinstance(excinfo.value, NotVerified) or item.config.stash.get(AUDIT, None) is None:
        return None
    return pytest.TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1), "failed",
                             excinfo.value.reason, call.when,
                             [(f"Captured {key} {rwhen}", content) for rwhen, key, content in item._report_sections],
                             call.duration, call.start, call.stop, user_properties=item.user_properties)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if item.config.stash.get(AUDIT, None) is None or not _in_suite(item):
        return report
    # pytest gives each phase's report its own copy of the item's keywords; one serves all three.
    report.keywords = item.stash.setdefault(KEYWORDS, report.keywords)
    verdict = item.stash.get(VERDICT, None)
    record = _record(item)
    record.seconds += report.duration
    record.reads |= audit_reads(item.config)
    if call.when == "teardown":  # the last phase: from here on the set is only read, and most are alike
        reads = frozenset(record.reads)
        record.reads = _SHARED_READS.setdefault(reads, reads)
    if verdict is not None:
        record.findings = [f.to_dict() for f in verdict.findings]
        record.facts = dict(verdict.facts)
    # pytest-html builds a test's rows once its teardown is reported, when the record's status is final:
    # a passed test's setup and teardown rows are grouped away with its call row.
    report.kubeproof_record = record
    report.kubeproof_group_passed = item.config.stash.get(GROUP_PASSED, False)
    status, reason = _status(report, call, verdict)
    if status is None or (record.status in ("failed", "error", "not_verified", "waived", "accepted") and status in ("passed", "skipped")):
        return report
    judgement = item.config.stash[GOVERNANCE].judge(status, record.test, record.controls.get("cis", []), record.object, record.findings)
    record.status = judgement.status
    record.reason = "; ".join(p for p in (reason, judgement.note) if p)
    _apply(report, item, record)
    return report


def _apply(report, item, record: Record) -> None:
    """Map kubeproof's status onto pytest's outcomes, so every artifact counts the same way:
    not verified -> skipped (failed with --strict), waived or accepted -> xfailed."""
    if record.status == "not_verified":
        if item.config.getoption("strict"):
            report.outcome = "failed"
            report.longrepr = f"NOT VERIFIED (--strict): {record.reason}"
        else:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] + 1, f"NOT VERIFIED: {record.reason}")
        report.kubeproof_not_verified = True
    elif record.status in ("waived", "accepted"):
        report.outcome = "skipped"
        report.wasxfail = f"{record.status.upper()}: {record.reason}"
    elif record.status == "failed" and record.reason:
        report.longrepr = f"{report.longreprtext}\n{record.reason}"
    elif record.status == "error" and os.environ.get("KUBEPROOF_DEBUG") != "1":
        report.longrepr = record.reason


def pytest_report_teststatus(report, config):
    if getattr(report, "kubeproof_not_verified", False) and report.outcome == "skipped":
        return "not verified", "N", ("NOT VERIFIED", {"yellow": True})
    return None


# -- evidence --------------------------------------------------------------------------------------
def pytest_html_results_summary(prefix, summary, postfix, session):
    audit = session.config.stash.get(AUDIT, None)
    if audit is not None:
        environment = _environment(session.config, audit)
        environment["finished (UTC)"] = _now()
        prefix.append(summary_html(session.config.stash[RECORDS], environment,
                                   group_passed=session.config.stash.get(GROUP_PASSED, False)))


def pytest_html_results_table_row(report, cells):
    record = getattr(report, "kubeproof_record", None)
    if record is not None and is_grouped(record) and getattr(report, "kubeproof_group_passed", False):
        cells.clear()  # grouped in the summary instead: the browser renders every row it is given
        return
    # pytest-html puts the test id into the page as HTML, and ours carry object names, which RBAC
    # (and the people who name things) allow to contain markup: it must be text.
    test_id = report.nodeid + (f"::{report.when}" if report.when != "call" else "")
    for index, cell in enumerate(cells):
        if cell.startswith('<td class="col-testId">'):
            cells[index] = f'<td class="col-testId">{html.escape(test_id)}</td>'


def pytest_html_results_table_html(report, data):
    record = getattr(report, "kubeproof_record", None)
    if record is not None and (report.when == "call" or report.outcome != "passed"):
        data.append(row_html(record))


def pytest_html_report_title(report):
    report.title = "kubeproof compliance evidence"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    audit, run = config.stash.get(AUDIT, None), config.stash.get(RUN, None)
    # Only a run that got to the end leaves a run folder (0 proven, 1 findings).
    config.stash[COMPLETED] = audit is not None and run is not None and int(exitstatus) in (0, 1)
    if not config.stash[COMPLETED]:
        return
    records: list[Record] = config.stash[RECORDS]
    governance: Governance = config.stash[GOVERNANCE]
    audit.snapshot.release()
    config.stash[PROBES].release()
    environment = _environment(config, audit)
    environment["finished (UTC)"] = _now()
    tests_run = {r.test for r in records}
    run.write_json_rows("results.json", {
        "environment": environment,
        "snapshot": audit.snapshot.summary(),
        "counts": outcome_counts(records, strict=bool(config.getoption("strict"))),
        "summary_by_practice": {p: dict(c) for p, c in counts_by_practice(records).items()},
        "summary_by_control": {c: dict(n) for c, n in counts_by_control(records).items()},
        "waivers": {
            "stale": [w.label for w in governance.stale()],
            "expired": [w.label for w in audit.baseline.waivers if w.expired(governance.today)],
        },
        "ratchet": {"fail_on": config.getoption("fail_on"),
                    "fixed": governance.fixed(tests_run) if governance.accepted is not None else []},
    }, "results", (r.to_dict() for r in records))
    write_junit(run.junit, records, strict=bool(config.getoption("strict")), started=environment["started (UTC)"],
                seconds=(datetime.datetime.now(datetime.timezone.utc) - config.stash[STARTED]).total_seconds(),
                hostname=platform.node())
    run.write_json("results.sarif", sarif_log(records, kubeproof.__version__, getattr(audit.backend, "sources", {})))
    if config.getoption("update_baseline"):
        path = ratchet.accepted_path(audit.baseline.path)
        previous = ratchet.load(path) if path.exists() else {}
        config.stash[UPDATED] = (path, ratchet.save(path, [r for r in records if r.findings], previous))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    audit = config.stash.get(AUDIT, None)
    if audit is None:
        return
    terminalreporter.section("kubeproof")
    for practice, counts in counts_by_practice(config.stash[RECORDS]).items():
        shown = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        terminalreporter.write_line(f"{PRACTICES.get(practice, practice)}: {shown}")
    governance: Governance = config.stash[GOVERNANCE]
    for waiver in governance.stale():
        terminalreporter.write_line(f"stale waiver (matched nothing): {waiver.label}", yellow=True)
    if governance.accepted is not None:
        for entry in governance.fixed({r.test for r in config.stash[RECORDS]}):
            terminalreporter.write_line(f"fixed since accepted: {entry.get('test')} {entry.get('object')} {entry.get('path')}", green=True)
    updated = config.stash.get(UPDATED, None)
    if updated:
        terminalreporter.write_line(f"recorded {updated[1]} accepted finding(s) in {updated[0]}")
    if config.stash.get(FAILURES_SHORT, False):
        terminalreporter.write_line(f"more than {GROUP_PASSED_ABOVE} results: failures are listed one line each "
                                    "(--tb=short prints every finding here; the report holds them all)")
    run = config.stash.get(RUN, None)
    if run is not None and config.stash.get(COMPLETED, False):
        terminalreporter.write_line(f"evidence: {run.final}/ ({run.stem}.html, results.json, junit.xml, results.sarif, SHA256SUMS)")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    audit = config.stash.get(AUDIT, None)
    if audit is not None:
        config.stash[AUDIT] = None
        audit.close()
    run = config.stash.get(RUN, None)
    if run is not None:
        config.stash[RUN] = None
        if config.stash.get(COMPLETED, False) and run.html.exists():
            run.finish()
        else:
            run.abandon()
