"""The pytest plugin: options, fixtures, parametrisation over cluster objects, outcomes, evidence.

Data flows one way: the session's backend feeds the snapshot, tests call pure checks on what the
snapshot holds and hand the findings to `verdict`, and the records become the report."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest

import kubeproof
from kubeproof.backends import Unreachable
from kubeproof.evidence import Record, counts_by_practice, row_html, summary_html, write_json_atomically
from kubeproof.practices import FRAMEWORKS, PRACTICES
from kubeproof.results import Finding, NotVerified, ObjectRef
from kubeproof.snapshot import WORKLOAD_KINDS, owned_by_a_workload
from kubeproof.session import EXIT_CONFIG, EXIT_UNREACHABLE, Audit, ConfigError, Options, resolve_cluster

AUDIT = pytest.StashKey["Audit | None"]()
RECORDS = pytest.StashKey[list]()
STARTED = pytest.StashKey[datetime.datetime]()
REPORT_STEM = pytest.StashKey[str]()
VERDICT = pytest.StashKey["Verdict"]()
PARTIAL_HTML = pytest.StashKey[tuple]()
COMPLETED = pytest.StashKey[bool]()

# Test parameters that stand for cluster objects, and the kinds that fill them.
OBJECT_PARAMETERS = {
    "namespace": ("namespaces",),
    "role": ("clusterroles", "roles"),
    "binding": ("clusterrolebindings", "rolebindings"),
    "service_account": ("serviceaccounts",),
    "secret": ("secrets",),  # metadata only
    "node": ("nodes",),
    # Controllers and bare pods; what a controller owns is judged once, through its owner's template.
    "workload": WORKLOAD_KINDS,
}
SUITE_FOLDER = "tests_cluster"


class Unreadable:
    """Stands in for the objects of a kind that could not be listed; a test given one is not verified."""

    def __init__(self, kind: str, reason: str):
        self.kind, self.reason = kind, reason


def pytest_addoption(parser):
    group = parser.getgroup("kubeproof", "kubeproof cluster audit")
    group.addoption("--cluster", help="kubeconfig context to audit, or 'local' for the embedded cluster "
                    "(default: the kubeconfig's current context)")
    group.addoption("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    group.addoption("--baseline", help="baseline YAML (default: baselines/<cluster>.yaml, else baselines/default.yaml)")
    group.addoption("--local-profile", default="hardened", choices=("hardened", "insecure"),
                    help="profile of the embedded cluster for --cluster=local (default: hardened)")
    group.addoption("--local-attach", metavar="DIR",
                    help="audit an embedded cluster another process started (its work folder) instead of starting one")
    group.addoption("--etcd-endpoint", help="etcd client URL, to read how secrets are stored (live clusters)")
    group.addoption("--etcd-ca", help="CA bundle for --etcd-endpoint")
    group.addoption("--etcd-cert", help="client certificate for --etcd-endpoint")
    group.addoption("--etcd-key", help="client key for --etcd-endpoint")
    # --strict is pytest's own flag (strict markers, config and ids); kubeproof also reads it to count
    # "not verified" results as failures.
    group.addoption("--report-dir", default="reports", help="where reports are written (default: reports/)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for name, text in PRACTICES.items():
        config.addinivalue_line("markers", f"{name}: practice: {text}")
    for name, text in FRAMEWORKS.items():
        config.addinivalue_line("markers", f"{name}(*ids): {text}")
    config.stash[AUDIT] = None
    config.stash[RECORDS] = []
    config.stash[STARTED] = datetime.datetime.now(datetime.timezone.utc)
    if _is_audit(config):
        try:
            cluster = resolve_cluster(_options(config))
        except ConfigError as error:
            pytest.exit(f"kubeproof: {error}", returncode=EXIT_CONFIG)
        _name_report(config, cluster)


def _is_audit(config) -> bool:
    """The run audits a cluster when it runs the suite in tests_cluster/."""
    suite = Path(config.rootpath, SUITE_FOLDER).resolve()
    for arg in config.args:
        path = Path(config.invocation_params.dir, str(arg).split("::")[0]).resolve()
        if path == suite or suite in path.parents or path in suite.parents:
            return True
    return False


def _options(config) -> Options:
    get = config.getoption
    return Options(get("cluster"), get("kubeconfig"), get("baseline"), get("local_profile"), get("local_attach"),
                   get("etcd_endpoint"), get("etcd_ca"), get("etcd_cert"), get("etcd_key"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session):
    config = session.config
    if not _is_audit(config):
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        if reporter:
            reporter.write_line(f"kubeproof: {message}")

    try:
        audit = Audit.open(_options(config), config.rootpath, progress=progress)
    except ConfigError as error:
        pytest.exit(f"kubeproof: {error}", returncode=EXIT_CONFIG)
    except Unreachable as error:
        pytest.exit(f"kubeproof: cannot reach the API server {error.endpoint}: {error.reason}", returncode=EXIT_UNREACHABLE)
    config.stash[AUDIT] = audit
    progress(f"auditing {audit.cluster} at {audit.backend.server} (Kubernetes {audit.server_version.get('gitVersion', '?')}) "
             f"against {audit.baseline.path}")
    return None


def _name_report(config, cluster: str) -> None:
    """reports/<cluster>-<UTC timestamp>.html, self-contained; set before pytest-html configures."""
    stamp = config.stash[STARTED].strftime("%Y%m%dT%H%M%SZ")
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)
    stem = f"{safe_name}-{stamp}"
    config.stash[REPORT_STEM] = stem
    if not config.getoption("htmlpath", None):
        # pytest-html writes here; the file gets its real name only when the run completes.
        report_dir = _report_dir(config)
        report_dir.mkdir(parents=True, exist_ok=True)
        config.option.htmlpath = str(report_dir / f".{stem}.html.partial")
        config.stash[PARTIAL_HTML] = (Path(config.option.htmlpath), report_dir / f"{stem}.html")
    config.option.self_contained_html = True


def _report_dir(config) -> Path:
    return Path(config.rootpath, config.getoption("report_dir"))


def _environment(config, audit: Audit) -> dict:
    return {
        "cluster": audit.cluster,
        "backend": audit.backend.kind,
        "API server": audit.backend.server,
        "server version": audit.server_version.get("gitVersion", "unknown"),
        "baseline": audit.baseline.path,
        "baseline sha256": audit.baseline.sha256,
        "kubeproof": f"{kubeproof.__version__} ({_git_commit(config.rootpath)})",
        "started (UTC)": config.stash[STARTED].isoformat(timespec="seconds"),
        "strict": bool(config.getoption("strict")),
    }


def _git_commit(root) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=5).stdout.strip() or "no commit"
    except (OSError, subprocess.SubprocessError):
        return "unknown commit"


def _object_id(obj: dict, kind: str) -> str:
    return str(ObjectRef.of(obj, kind))


def pytest_generate_tests(metafunc):
    audit = metafunc.config.stash.get(AUDIT, None)
    for parameter, kinds in OBJECT_PARAMETERS.items():
        if parameter not in metafunc.fixturenames:
            continue
        if audit is None:
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid} needs cluster objects; run it as part of {SUITE_FOLDER}/"
            )
        values, ids = [], []
        for name in kinds:
            read = audit.snapshot.read(name)
            if read.readable:
                for item in read.items:
                    if parameter == "workload" and owned_by_a_workload(item):
                        continue
                    values.append(item)
                    ids.append(_object_id(item, read.kind.kind))
            else:
                values.append(Unreadable(read.kind.kind, read.error))
                ids.append(f"{read.kind.kind}:unreadable")
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
def probes(request):
    """Read-only live questions (anonymous GETs, server-side dry-runs), each asked once."""
    from kubeproof.probes import Probes

    return Probes(_audit(request).backend)


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
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    callspec = getattr(item, "callspec", None)
    for value in (callspec.params.values() if callspec else ()):
        if isinstance(value, Unreadable):
            raise NotVerified(f"{value.kind} objects could not be listed: {value.reason}")


def _controls(item) -> dict[str, list[str]]:
    return {name: [str(a) for m in item.iter_markers(name) for a in m.args] for name in FRAMEWORKS}


def _practice(item) -> str | None:
    return next((name for name in PRACTICES if item.get_closest_marker(name)), None)


def _subject(item) -> dict | None:
    callspec = getattr(item, "callspec", None)
    for name, value in (callspec.params.items() if callspec else ()):
        if isinstance(value, dict):
            kind = value.get("kind") or name
            return ObjectRef.of(value, kind).__dict__
        if isinstance(value, Unreadable):
            return {"kind": value.kind, "name": "(could not be listed)"}
        if isinstance(value, str) and name == "path":
            return {"kind": "Endpoint", "name": value}
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    audit = item.config.stash.get(AUDIT, None)
    if audit is None or not _in_suite(item):
        return report
    excinfo = call.excinfo
    status = None
    reason = ""
    if excinfo is not None and isinstance(excinfo.value, (NotVerified, Unreachable)):
        reason = excinfo.value.reason if isinstance(excinfo.value, NotVerified) else f"API server unreachable: {excinfo.value}"
        status = "not_verified"
        if item.config.getoption("strict"):
            report.outcome = "failed"
            report.longrepr = f"NOT VERIFIED (--strict): {reason}"
        else:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] + 1, f"NOT VERIFIED: {reason}")
        report.kubeproof_not_verified = True
    records = item.config.stash[RECORDS]
    record = getattr(item, "_kubeproof_record", None)
    if record is None:
        record = Record(item.nodeid, item.originalname, _practice(item), _controls(item), _subject(item))
        item._kubeproof_record = record
        records.append(record)
    found = item.stash.get(VERDICT, None)
    if status is None:
        if report.outcome == "failed":
            status = "failed" if (found and found.findings and call.when == "call") else "error"
            if status == "error":
                reason = _short(report.longreprtext)
        elif report.outcome == "skipped":
            status = "skipped"
            reason = _skip_reason(report)
        elif call.when == "call":
            status = "passed"
    if status and (record.status in ("passed",) or status in ("not_verified", "failed", "error")):
        if not (record.status in ("failed", "error", "not_verified") and status in ("passed", "skipped")):
            record.status, record.reason = status, reason or record.reason
    if found is not None:
        record.findings = [f.to_dict() for f in found.findings]
        record.facts = dict(found.facts)
    report.kubeproof_record = record
    return report


def _in_suite(item) -> bool:
    return Path(item.config.rootpath, SUITE_FOLDER).resolve() in Path(item.path).resolve().parents


def _short(text: str) -> str:
    return (text or "").strip().splitlines()[-1][:500] if text else ""


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return _short(str(longrepr))


def pytest_report_teststatus(report, config):
    if getattr(report, "kubeproof_not_verified", False) and report.outcome == "skipped":
        return "not verified", "N", ("NOT VERIFIED", {"yellow": True})
    return None


# -- evidence --------------------------------------------------------------------------------------
def pytest_html_results_summary(prefix, summary, postfix, session):
    audit = session.config.stash.get(AUDIT, None)
    if audit is not None:
        prefix.append(summary_html(session.config.stash[RECORDS], _environment(session.config, audit)))


def pytest_html_results_table_html(report, data):
    record = getattr(report, "kubeproof_record", None)
    if record is not None and report.when == "call" or (record is not None and report.outcome != "passed"):
        data.append(row_html(record))


def pytest_html_report_title(report):
    report.title = "kubeproof compliance evidence"


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    audit = config.stash.get(AUDIT, None)
    # Only a run that got to the end leaves artifacts under their real names (0 proven, 1 findings).
    config.stash[COMPLETED] = audit is not None and int(exitstatus) in (0, 1)
    if not config.stash[COMPLETED]:
        return
    records = config.stash[RECORDS]
    environment = _environment(config, audit)
    environment["finished (UTC)"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    write_json_atomically(_report_dir(config) / f"{config.stash[REPORT_STEM]}.json", {
        "environment": environment,
        "snapshot": audit.snapshot.summary(),
        "summary": {p: dict(c) for p, c in counts_by_practice(records).items()},
        "results": [r.to_dict() for r in records],
    })


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    audit = config.stash.get(AUDIT, None)
    if audit is None:
        return
    terminalreporter.section("kubeproof")
    for practice, counts in counts_by_practice(config.stash[RECORDS]).items():
        shown = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        terminalreporter.write_line(f"{PRACTICES.get(practice, practice)}: {shown}")
    stem = config.stash.get(REPORT_STEM, None)
    if stem and config.stash.get(COMPLETED, False):
        terminalreporter.write_line(f"evidence: {_report_dir(config) / stem}.html and .json")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    audit = config.stash.get(AUDIT, None)
    if audit is not None:
        config.stash[AUDIT] = None
        audit.close()
    partial = config.stash.get(PARTIAL_HTML, None)
    if partial:
        written, final = partial
        if config.stash.get(COMPLETED, False) and written.exists():
            written.replace(final)
        else:
            written.unlink(missing_ok=True)
