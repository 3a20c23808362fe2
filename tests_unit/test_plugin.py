"""The plugin end to end without a cluster: pytester writes a tiny tests_cluster/ suite and runs it in
process through the real plugin (options, parameters, fixtures, outcomes, governance, evidence), with
the one seam kubeproof.session.open_backend answering with FakeCluster, a Backend whose request()
reads a dict. Everything above the backend is the real code: Audit.open, the Snapshot, Probes.

Mirrors what tests_e2e/test_command_line.py and test_evidence_artifacts.py assert against real clusters:
outcomes and the counts every artifact agrees on, --strict, waivers and the ratchet, the grouped HTML
of a large run, and exit codes 2 and 3 with nothing left in the report folder."""

from __future__ import annotations

import datetime
import gc
import hashlib
import html
import itertools
import json
import re
import textwrap
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from kubeproof import plugin, session
from kubeproof.backends import Answer, Backend, Unreachable
from kubeproof.snapshot import KINDS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SERVER = "https://fake-apiserver.invalid:6443"
TOMORROW = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()


def _role(name: str, *verbs: str) -> dict:
    return {"kind": "ClusterRole", "metadata": {"name": name, "uid": f"uid-{name}"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": list(verbs)}]}


CLUSTER_ROLES = [_role("reader", "get", "list"), _role("wildcard", "*"), _role("vendor-operator", "*")]


class FakeCluster(Backend):
    """A cluster that answers from a dict of (method, path) -> body; anything else is a 404. No
    etcd, so what needs etcd is not verified, as on a managed control plane."""

    kind = "fake"

    def __init__(self, objects: dict[str, list[dict]], unreachable: bool = False):
        self.name = "fake"
        self.http = SimpleNamespace(server=SERVER, timeout=None)  # Audit.open sets the timeout
        self.unreachable = unreachable
        self.asked: list[tuple[str, str]] = []
        self.answers = {
            ("GET", "/version"): {"major": "1", "minor": "37", "gitVersion": "v1.37.0"},
            ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews"): {
                "status": {"userInfo": {"username": "fake-auditor", "groups": ["auditors"]}}},
            ("GET", "/api/v1/namespaces/kube-system"): {"kind": "Namespace", "metadata": {"name": "kube-system", "uid": "ks-uid-1"}},
        }
        for name, items in objects.items():
            self.answers[("GET", KINDS[name].path)] = {"kind": "List", "metadata": {}, "items": items}

    def request(self, method: str, path: str, **kwargs) -> Answer:
        self.asked.append((method, path))
        if self.unreachable:
            raise Unreachable(SERVER, "connection refused")
        body = self.answers.get((method, path))
        if body is None:
            return Answer(method, path, 404, {"kind": "Status", "message": "the server could not find the requested resource"})
        return Answer(method, path, 200, json.loads(json.dumps(body)))  # a fresh copy, as from the wire


SUITE = {
    "test_rbac.py": '''
        import pytest
        from kubeproof.results import Finding, ObjectRef

        pytestmark = [pytest.mark.rbac]

        @pytest.mark.cis("5.1.3")
        def test_role_grants_no_wildcards(role, verdict):
            verbs = [v for rule in role.get("rules") or [] for v in rule.get("verbs") or []]
            verdict.observe(verbs=verbs)
            verdict([Finding(("5.1.3",), ObjectRef.of(role), "rules[0].verbs", verbs, "no '*'", "Name the verbs.")]
                    if "*" in verbs else [])
    ''',
    "test_etcd_encryption.py": '''
        import pytest

        pytestmark = [pytest.mark.etcd_encryption]

        @pytest.mark.cis("1.2.28")
        def test_every_stored_secret_is_encrypted(snapshot, verdict):
            verdict.observe(secrets=len(snapshot.etcd_secrets()))  # no etcd here: not verified
    ''',
    "test_baseline_waivers.py": '''
        import pytest

        pytestmark = [pytest.mark.baseline_waivers]

        def test_waiver_is_in_use(waiver, governance, verdict):
            if waiver in governance.stale():
                verdict.exempt(f"stale: waiver at line {waiver.line} matched no result in this run")
    ''',
}

MANY = '''
    import pytest

    pytestmark = [pytest.mark.rbac]

    @pytest.mark.cis("5.1.3")
    @pytest.mark.parametrize("number", range({many}))
    def test_one_of_many(number, verdict):
        verdict.observe(number=number)
'''

WAIVER = ('  - control: "5.1.3"\n    kind: ClusterRole\n    name: vendor-operator\n'
          f'    justification: the vendor operator needs it until v2\n    owner: platform@example.com\n    expires: {TOMORROW}\n')


class FakeRun(SimpleNamespace):
    """One run of the written suite: exit status, output, results.json, the run folder, the backend."""

    def records(self, status: str | None = None) -> list[dict]:
        found = (self.results or {}).get("results", [])
        return [r for r in found if status is None or r["status"] == status]

    def by_object(self) -> dict[tuple[str, str], dict]:
        return {(r["test"], (r["object"] or {}).get("name", "")): r for r in self.records()}


@pytest.fixture
def suite(pytester, monkeypatch):
    """The tiny suite in pytester's folder, and `suite.run(*args)` to audit a FakeCluster with it."""
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)  # in CI: not the job's page (a test may set its own)
    for name, source in SUITE.items():
        path = pytester.path / "tests_cluster" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(source))
    (pytester.path / "baselines").mkdir()
    (pytester.path / "baselines" / "default.yaml").write_text((ROOT / "baselines" / "default.yaml").read_text())
    numbers = itertools.count(1)

    def run(*args: str, unreachable: bool = False, subprocess: bool = False) -> FakeRun:
        """In process, so the plugin opens the fake backend; in a subprocess (where no backend is
        reachable) for what stops the run in pytest_configure: kubeproof's hook runs first there, so
        pytester's in-process recorder, registered by a later pytest_configure, would never be."""
        backend = FakeCluster({"clusterroles": CLUSTER_ROLES, "roles": []}, unreachable)
        monkeypatch.setattr(session, "open_backend", lambda options, cluster: backend)
        runpytest = pytester.runpytest_subprocess if subprocess else pytester.runpytest_inprocess
        # A report folder per run: two runs within one second would name their run folders alike.
        reports = pytester.path / "reports" / f"run{next(numbers)}"
        try:
            result = runpytest("tests_cluster", "--cluster=fake", f"--report-dir={reports}", *args)
        finally:
            gc.unfreeze()  # the plugin freezes the collector for the run's objects; this process goes on
        folders = sorted(p.parent for p in reports.glob("*/results.json")) if reports.exists() else []
        return FakeRun(returncode=result.ret, output=result.stdout.str() + "\n" + result.stderr.str(), backend=backend,
                       report_dir=reports,
                       results=json.loads((folders[-1] / "results.json").read_text()) if folders else None,
                       folder=folders[-1] if folders else None)

    return SimpleNamespace(path=pytester.path, run=run)


def _baseline(folder: Path, text: str = "", waivers: str = "") -> Path:
    path = folder / "baseline.yaml"
    path.write_text(text or (ROOT / "baselines" / "default.yaml").read_text() + (f"waivers:\n{waivers}" if waivers else ""))
    return path


def _assert_nothing_written(report_dir: Path) -> None:
    assert not report_dir.exists() or list(report_dir.iterdir()) == []


# As tests_e2e/test_evidence_artifacts.py reads the HTML and JUnit counts.
def _html_tests(page: str) -> dict:
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    return json.loads(html.unescape(blob.group(1)))["tests"]


def _html_outcomes(page: str) -> Counter:
    counts = Counter()
    for results in _html_tests(page).values():
        outcomes = {r["result"].lower() for r in results}
        for outcome in ("error", "failed", "xfailed", "skipped", "passed"):
            if outcome in outcomes or (outcome == "xfailed" and "expected failure" in outcomes):
                counts[outcome] += 1
                break
    return counts


def _junit_counts(path: Path) -> dict:
    suite = ElementTree.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    cases = suite.findall("testcase")
    xfailed = sum(1 for c in cases for s in c.findall("skipped") if s.get("type") == "pytest.xfail")
    return {"tests": int(suite.get("tests")), "failed": int(suite.get("failures")), "error": int(suite.get("errors")),
            "skipped": int(suite.get("skipped")) - xfailed, "xfailed": xfailed}


def _assert_artifacts_agree(run: FakeRun, grouped: bool = False) -> str:
    """Every artifact is there, SHA256SUMS verifies, and the HTML (its rows, unless grouped), results.json
    and JUnit count alike. Returns the HTML page."""
    folder = run.folder
    assert {p.name for p in folder.iterdir()} == {f"{folder.name}.html", "results.json", "junit.xml", "results.sarif", "summary.md", "assessment-results.json", "SHA256SUMS"}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    page = (folder / f"{folder.name}.html").read_text()
    counts = run.results["counts"]
    assert sum(v for k, v in counts.items() if k != "tests") == counts["tests"] == len(run.records())
    assert _junit_counts(folder / "junit.xml") == {k: v for k, v in counts.items() if k != "passed"}
    if not grouped:
        shown = _html_outcomes(page)
        assert {k: shown.get(k, 0) for k in ("passed", "failed", "error", "skipped", "xfailed")} == \
            {k: counts[k] for k in ("passed", "failed", "error", "skipped", "xfailed")}
    return page


# -- outcomes --------------------------------------------------------------------------------------
def test_passed_failed_and_not_verified_and_every_artifact_counts_them_alike(suite):
    run = suite.run()
    assert run.returncode == 1, run.output
    results = run.by_object()
    assert results[("test_role_grants_no_wildcards", "reader")]["status"] == "passed"
    failed = results[("test_role_grants_no_wildcards", "wildcard")]
    assert failed["status"] == "failed" and failed["findings"][0]["path"] == "rules[0].verbs"
    assert failed["object"] == {"kind": "ClusterRole", "name": "wildcard", "namespace": None, "uid": "uid-wildcard"}
    assert failed["controls"]["cis"] == ["5.1.3"] and failed["practice"] == "rbac"
    # A role's result rests on the kind its object came from, not on every kind `role` draws from.
    assert "clusterroles" in failed["reads"] and "roles" not in failed["reads"]
    unproven = results[("test_every_stored_secret_is_encrypted", "")]
    assert unproven["status"] == "not_verified" and "etcd is not reachable" in unproven["reason"]
    no_waivers = results[("test_waiver_is_in_use", "")]
    assert no_waivers["status"] == "skipped" and no_waivers["reason"] == "the baseline has no waivers"
    # Not verified is a skip in pytest's counts, shown as its own word in the terminal.
    assert run.results["counts"] == {"tests": 5, "passed": 1, "failed": 2, "error": 0, "skipped": 2, "xfailed": 0}
    assert "1 not verified" in run.output
    page = _assert_artifacts_agree(run)
    environment = run.results["environment"]
    assert environment["API server"] == SERVER and environment["backend"] == "fake"
    assert environment["cluster fingerprint"] == "kube-system uid ks-uid-1"
    assert environment["identity"] == "fake-auditor (groups: auditors)"
    assert environment["cluster fingerprint"] in page and html.escape(environment["identity"]) in page
    sarif = json.loads((run.folder / "results.sarif").read_text())
    assert len([r for r in sarif["runs"][0]["results"] if r["level"] == "error"]) == 2
    assert f"evidence: {run.folder}/" in run.output


def test_strict_turns_not_verified_into_a_failure(suite):
    lenient = suite.run("-k", "stored_secret")
    assert lenient.returncode == 0, lenient.output
    assert [r["status"] for r in lenient.records()] == ["not_verified"]
    assert lenient.results["counts"]["skipped"] == 1
    strict = suite.run("--strict", "-k", "stored_secret")
    assert strict.returncode == 1, strict.output
    assert "NOT VERIFIED (--strict)" in strict.output
    assert [r["status"] for r in strict.records()] == ["not_verified"]
    assert strict.results["counts"] == {"tests": 1, "passed": 0, "failed": 1, "error": 0, "skipped": 0, "xfailed": 0}
    assert strict.results["environment"]["strict"] is True
    _assert_artifacts_agree(strict)


def test_a_waived_and_an_accepted_finding_are_expected_failures(suite):
    baseline = _baseline(suite.path, waivers=WAIVER)
    recorded = suite.run(f"--baseline={baseline}", "--update-baseline")
    assert recorded.returncode == 1, recorded.output
    results = recorded.by_object()
    waived = results[("test_role_grants_no_wildcards", "vendor-operator")]
    assert waived["status"] == "waived" and "the vendor operator needs it" in waived["reason"] and waived["findings"]
    assert results[("test_role_grants_no_wildcards", "wildcard")]["status"] == "failed"
    # The waiver test is parametrised from the baseline's waivers, runs last and sees its waiver used.
    in_use = next(r for r in recorded.records() if r["test"] == "test_waiver_is_in_use")
    assert in_use["status"] == "passed" and "-5.1.3-ClusterRole/*/vendor-operator]" in in_use["nodeid"]
    assert recorded.records()[-1]["test"] == "test_waiver_is_in_use"
    assert (suite.path / "baseline.accepted.yaml").exists() and "accepted finding(s) in" in recorded.output

    ratchet = suite.run(f"--baseline={baseline}", "--fail-on=new")
    assert ratchet.returncode == 0, ratchet.output
    results = ratchet.by_object()
    assert results[("test_role_grants_no_wildcards", "vendor-operator")]["status"] == "waived"
    accepted = results[("test_role_grants_no_wildcards", "wildcard")]
    assert accepted["status"] == "accepted" and "recorded as accepted" in accepted["reason"]
    assert ratchet.results["counts"] == {"tests": 5, "passed": 2, "failed": 0, "error": 0, "skipped": 1, "xfailed": 2}
    assert ratchet.results["ratchet"] == {"fail_on": "new", "fixed": []}
    _assert_artifacts_agree(ratchet)
    assert "2 xfailed" in ratchet.output


def test_above_2000_results_passed_ones_are_grouped_in_the_html(suite):
    (suite.path / "tests_cluster" / "test_many.py").write_text(textwrap.dedent(MANY.format(many=plugin.GROUP_PASSED_ABOVE + 1)))
    run = suite.run()
    assert run.returncode == 1, run.output[-3000:]
    assert len(run.records()) == plugin.GROUP_PASSED_ABOVE + 6
    page = _assert_artifacts_agree(run, grouped=True)
    grouped = [r for r in run.records() if r["status"] in ("passed", "skipped")]
    assert f"Passed and exempt results, grouped ({len(grouped)})" in page
    # Only what needs reading keeps a row: the failed and the not verified results.
    shown = set(_html_tests(page))
    assert shown == {r["nodeid"] for r in run.records() if r["status"] not in ("passed", "skipped")}
    assert len(shown) == 3
    assert f"more than {plugin.GROUP_PASSED_ABOVE} results: failures are listed one line each" in run.output


# -- exit statuses ---------------------------------------------------------------------------------
def test_a_bad_option_exits_2_naming_it_and_leaves_nothing(suite):
    run = suite.run("--request-timeout=0", subprocess=True)
    assert run.returncode == 2, run.output
    assert "--request-timeout 0" in run.output and "Traceback" not in run.output
    _assert_nothing_written(run.report_dir)


def test_a_bad_baseline_exits_2_naming_file_line_and_field_and_leaves_nothing(suite):
    baseline = _baseline(suite.path, "pod_security:\n  default: restricted\n  namespaces:\n    team-a: strictest\n")
    run = suite.run(f"--baseline={baseline}")
    assert run.returncode == 2, run.output
    assert f"{baseline}:4" in run.output and "pod_security.namespaces.team-a" in run.output
    assert "Traceback" not in run.output and run.backend.asked == []
    _assert_nothing_written(run.report_dir)


def test_an_unreachable_cluster_exits_3_naming_the_endpoint_and_leaves_nothing(suite):
    run = suite.run(unreachable=True)
    assert run.returncode == 3, run.output
    assert f"cannot reach the API server {SERVER}" in run.output and "Traceback" not in run.output
    _assert_nothing_written(run.report_dir)
