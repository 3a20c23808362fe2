"""The pytest plugin: kubeproof's hooks, and only its hooks. What they call lives by job:

- kubeproof/parameters.py: the registry of test parameters and where their values come from
- kubeproof/fixtures.py: the fixtures and `Verdict` (imported below, which is how pytest finds them)
- kubeproof/outcomes.py: records, and kubeproof's status mapped onto pytest's outcomes
- kubeproof/reporting.py: the HTML report, the terminal summary, the run folder's artifacts
- kubeproof/suite.py: where the suite lives, and the stash keys they share

Data flows one way: the session's backend feeds the snapshot, tests call pure checks on what the
snapshot holds and hand the findings to `verdict`, and the records become the run folder's artifacts."""

from __future__ import annotations

import datetime
import gc
from pathlib import Path

import pytest

from kubeproof import diff, fleet, outcomes, parameters, ratchet, reporting
from kubeproof.artifacts import RunFolder
from kubeproof.backends import Unreachable
from kubeproof.baseline import safe_name
from kubeproof.fixtures import (  # noqa: F401  (the fixtures, registered from this module's namespace)
    baseline,
    cluster,
    embedded_cluster,
    governance,
    kubelets,
    probes,
    server_minor,
    server_version,
    snapshot,
    verdict,
)
from kubeproof.governance import Governance
from kubeproof.practices import FRAMEWORKS, PRACTICES
from kubeproof.probes import Probes
from kubeproof.reporting import GROUP_PASSED_ABOVE
from kubeproof.session import EXIT_CONFIG, EXIT_UNREACHABLE, Audit, ConfigError, Options, resolve_cluster
from kubeproof.suite import (
    AUDIT,
    COMPARE_WITH,
    COMPLETED,
    FAILURES_SHORT,
    GOVERNANCE,
    GROUP_PASSED,
    PROBES,
    RECORDS,
    RUN,
    STARTED,
    SUITE_FOLDER,
    home,
    in_suite,
)

WAIVER_TESTS = "test_baseline_waivers.py"
MANIFEST_TESTS = "test_manifests.py"


def pytest_addoption(parser):
    group = parser.getgroup("kubeproof", "kubeproof cluster audit")
    group.addoption("--cluster", help="kubeconfig context to audit, 'local' for the embedded cluster, or "
                    "'in-cluster' inside a pod (default: the kubeconfig's current context); several as a "
                    "comma-separated list or a glob over the contexts ('prod-*'), audited one after another, "
                    "with a fleet summary")
    group.addoption("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    group.addoption("--baseline", help="baseline YAML, or a folder of them: <cluster>.yaml, else default.yaml "
                    "(default: the folder baselines/)")
    group.addoption("--local-profile", default="hardened", choices=("hardened", "insecure"),
                    help="profile of the embedded cluster for --cluster=local (default: hardened)")
    group.addoption("--local-nodes", type=int, default=2, metavar="N",
                    help="how many kubelets the embedded cluster runs (default 2; each is a node of its own; --manifests "
                    "runs none: a folder of manifests has no nodes to audit)")
    group.addoption("--local-attach", metavar="DIR",
                    help="audit an embedded cluster another process started (its work folder) instead of starting one")
    group.addoption("--etcd-endpoint", help="etcd client URL, to read how secrets are stored (live clusters)")
    group.addoption("--etcd-ca", help="CA bundle for --etcd-endpoint")
    group.addoption("--etcd-cert", help="client certificate for --etcd-endpoint")
    group.addoption("--etcd-key", help="client key for --etcd-endpoint")
    group.addoption("--manifests", metavar="DIR",
                    help="apply a folder of manifests (YAML, multi-document, Kustomize) into a fresh embedded "
                    "cluster with server-side apply, and audit that; a folder with Chart.yaml is a Helm chart, "
                    "rendered offline and installed into a namespace named after its release")
    group.addoption("--helm-values", action="append", default=[], metavar="FILE",
                    help="a values file for the Helm charts of --manifests, after each chart's values.yaml "
                    "(repeatable; later files win)")
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
    group.addoption("--compare-with", metavar="RUN", help="an earlier run folder: the report's first page and "
                    "summary.md say what changed since it (python -m kubeproof diff RUN THIS_RUN lists it all)")
    # --strict is pytest's own flag (strict markers, config and ids); kubeproof also reads it to count
    # "not verified" results as failures.


def _options(config) -> Options:
    get = config.getoption
    return Options(get("cluster"), get("kubeconfig"), get("baseline"), get("local_profile"), get("local_attach"),
                   get("etcd_endpoint"), get("etcd_ca"), get("etcd_cert"), get("etcd_key"), get("manifests"),
                   get("request_timeout"), get("local_nodes"), get("helm_values"))


def _is_audit(config) -> bool:
    """The run audits a cluster when it runs the suite in tests_cluster/."""
    suite = Path(home(config), SUITE_FOLDER).resolve()
    if config.args_source == pytest.Config.ArgsSource.INVOCATION_DIR and home(config) != config.rootpath and any(
            config.getoption(name) for name in ("cluster", "manifests", "local_attach")):
        # `pytest --cluster=prod` from another directory: the suite is the one beside this plugin.
        config.args[:] = [str(suite)]
    for arg in config.args:
        path = Path(config.invocation_params.dir, str(arg).split("::")[0]).resolve()
        if path == suite or suite in path.parents or path in suite.parents:
            return True
    return False


def _stop(message: str, returncode: int, **more) -> None:
    """Ends the run before any test with kubeproof's exit status, and tells a fleet run why."""
    fleet.note(exit_status=returncode, reason=message, **more)
    pytest.exit(f"kubeproof: {message}", returncode=returncode)


# -- session ---------------------------------------------------------------------------------------
def pytest_cmdline_main(config):
    """--cluster naming several clusters: each is audited by a run of its own, one after another, and
    the fleet summary is written from their run folders (kubeproof/fleet.py). This run itself starts
    no session, so it holds no cluster's snapshot."""
    asks_only = ("help", "version", "collectonly", "markers", "showfixtures", "show_fixtures_per_test")
    if not fleet.is_fleet(config.getoption("cluster")) or not _is_audit(config) or any(map(config.getoption, asks_only)):
        return None
    return fleet.run(config, _options(config), home(config))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for name, text in PRACTICES.items():
        config.addinivalue_line("markers", f"{name}: practice: {text}")
    for name, text in FRAMEWORKS.items():
        config.addinivalue_line("markers", f"{name}(*ids): {text}")
    config.stash[AUDIT] = None
    config.stash[RUN] = None
    config.stash[RECORDS] = []
    config.stash[STARTED] = datetime.datetime.now(datetime.UTC)
    config.stash[COMPARE_WITH] = None
    if not _is_audit(config):
        return
    try:
        cluster = resolve_cluster(_options(config))
    except ConfigError as error:
        _stop(str(error), EXIT_CONFIG)
    if config.getoption("compare_with"):  # read now: a run folder that cannot be compared stops the run
        try:
            config.stash[COMPARE_WITH] = diff.load_run(Path(config.invocation_params.dir, config.getoption("compare_with")),
                                                       "--compare-with")
        except diff.BadRun as error:
            _stop(str(error), EXIT_CONFIG)
    # Set before pytest-html configures, which this hook runs ahead of. JUnit XML is written from the
    # records at the end (artifacts.write_junit), so it counts exactly as results.json does.
    stamp = config.stash[STARTED].strftime("%Y%m%dT%H%M%SZ")
    run = RunFolder(Path(config.rootpath, config.getoption("report_dir")), f"{safe_name(cluster)}-{stamp}")
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
        audit = Audit.open(_options(config), home(config), progress=progress)
        accepted = None
        if config.getoption("fail_on") == "new":
            accepted = ratchet.load(ratchet.accepted_path(audit.baseline.path))
    except ConfigError as error:
        _stop(str(error), EXIT_CONFIG)
    except ratchet.AcceptedFileError as error:
        audit.close()
        _stop(str(error), EXIT_CONFIG)
    except Unreachable as error:
        _stop(f"cannot reach the API server {error.endpoint}: {error.reason}", EXIT_UNREACHABLE, endpoint=error.endpoint)
    config.stash[AUDIT] = audit
    config.stash[PROBES] = Probes(audit.backend, dry_runs=not config.getoption("no_dry_run"))
    config.stash[GOVERNANCE] = Governance(audit.baseline.waivers, datetime.date.today(), accepted)
    reporting.add_environment_metadata(config, audit)
    progress(f"auditing {audit.cluster} at {audit.backend.server} (Kubernetes {audit.server_version.get('gitVersion', '?')}) "
             f"as {audit.identity}, against {audit.baseline.path}")
    return None


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
    """Fills each parameter kubeproof knows (kubeproof/parameters.py) from its source."""
    audit = metafunc.config.stash.get(AUDIT, None)
    wanted = parameters.generated(metafunc.fixturenames)
    if wanted and audit is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid} needs cluster objects; run it as part of {SUITE_FOLDER}/")
    for parameter in wanted:
        values, ids = parameter.cases(parameter, audit)
        metafunc.parametrize(parameter.name, values, ids=ids)


# -- outcomes (kubeproof/outcomes.py) --------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.config.stash.get(AUDIT, None) is not None and in_suite(item):
        outcomes.begin(item)


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_not_verified(item, call):
    return outcomes.not_verified_report(item, call)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if item.config.stash.get(AUDIT, None) is not None and in_suite(item):
        outcomes.conclude(item, call, report)
    return report


def pytest_report_teststatus(report, config):
    return outcomes.teststatus(report)


# -- evidence (kubeproof/reporting.py) -------------------------------------------------------------
def pytest_html_results_summary(prefix, summary, postfix, session):
    reporting.html_summary(prefix, session.config)


def pytest_html_results_table_row(report, cells):
    reporting.html_row(report, cells)


def pytest_html_results_table_html(report, data):
    reporting.html_evidence(report, data)


def pytest_html_report_title(report):
    report.title = reporting.TITLE


def pytest_sessionfinish(session, exitstatus):
    reporting.write_artifacts(session.config, exitstatus)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    reporting.terminal_summary(terminalreporter, config)


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
            fleet.note(run_folder=str(run.finish()))
        else:
            run.abandon()
