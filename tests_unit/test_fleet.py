"""Unit tests for kubeproof.fleet: which clusters --cluster names (lists, patterns, duplicates, usage
errors), the arguments each cluster's run gets, the fleet summary built from run folders, and, through
the real plugin in subprocesses, a fleet whose clusters nobody answers for."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY

from kubeproof import fleet
from kubeproof.artifacts import SUMS, RunFolder
from kubeproof.baseline import locate
from kubeproof.session import ConfigError, Options, is_fleet

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
CONTEXTS = ["prod-eu", "prod-us", "staging", "kind-dev", "prod-us-canary"]


def _options(cluster: str, kubeconfig: str | None = None, **more) -> Options:
    return Options(cluster, kubeconfig, None, "hardened", None, None, None, None, None, **more)


# -- which clusters --------------------------------------------------------------------------------
@pytest.mark.parametrize("value, fleet_of_many", [
    ("prod", False), ("kind-dev", False), ("", False), (None, False),
    ("a,b", True), ("prod-*", True), ("prod-?", True), ("prod-[eu]*", True), ("local,", True),
])
def test_a_list_or_a_pattern_names_several(value, fleet_of_many):
    assert is_fleet(value) is fleet_of_many


def test_a_list_keeps_its_order():
    assert fleet.expand("staging,prod-eu,kind-dev", CONTEXTS, "K") == ["staging", "prod-eu", "kind-dev"]


def test_a_pattern_matches_context_names_sorted():
    assert fleet.expand("prod-*", CONTEXTS, "K") == ["prod-eu", "prod-us", "prod-us-canary"]
    assert fleet.expand("prod-??", CONTEXTS, "K") == ["prod-eu", "prod-us"]
    assert fleet.expand("*-dev", CONTEXTS, "K") == ["kind-dev"]


def test_patterns_are_case_sensitive_as_context_names_are():
    with pytest.raises(ConfigError, match=r"--cluster PROD-\*: the pattern matches no context in K"):
        fleet.expand("PROD-*", CONTEXTS, "K")


def test_each_cluster_is_audited_once_however_often_it_is_named():
    assert fleet.expand("prod-us,prod-*,prod-us, staging,staging", CONTEXTS, "K") == [
        "prod-us", "prod-eu", "prod-us-canary", "staging"]
    assert fleet.expand("local,local", CONTEXTS, "K") == ["local"]


def test_the_embedded_and_in_cluster_names_need_no_context():
    assert fleet.expand("local,in-cluster,staging", CONTEXTS, "K") == ["local", "in-cluster", "staging"]


def test_a_pattern_that_matches_nothing_is_a_usage_error_naming_it_and_the_contexts():
    with pytest.raises(ConfigError) as raised:
        fleet.expand("staging,qa-*", CONTEXTS, "/home/me/.kube/config")
    assert str(raised.value).startswith("--cluster qa-*: the pattern matches no context in /home/me/.kube/config")
    assert "kind-dev, prod-eu" in str(raised.value)


def test_an_unknown_name_in_a_list_is_a_usage_error_before_any_audit():
    with pytest.raises(ConfigError, match="--cluster prod-asia: no such context in K"):
        fleet.expand("prod-eu,prod-asia", CONTEXTS, "K")


@pytest.mark.parametrize("value", ["prod-eu,", ",prod-eu", "prod-eu,,staging", " , "])
def test_an_empty_name_in_a_list_is_a_usage_error(value):
    with pytest.raises(ConfigError, match="an empty name in the list"):
        fleet.expand(value, CONTEXTS, "K")


def _kubeconfig(path: Path, server: str, *names: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": names[0],
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in names],
    }))
    return path


def test_plan_reads_the_kubeconfig_only_when_a_name_needs_it(tmp_path):
    assert fleet.plan(_options("local,in-cluster", str(tmp_path / "absent"))) == ["local", "in-cluster"]
    with pytest.raises(ConfigError, match="absent does not exist"):
        fleet.plan(_options("local,prod-*", str(tmp_path / "absent")))
    kubeconfig = _kubeconfig(tmp_path / "config", "https://127.0.0.1:1", "prod-b", "prod-a", "dev")
    assert fleet.plan(_options("local,prod-*", str(kubeconfig))) == ["local", "prod-a", "prod-b"]


def test_options_that_mean_one_cluster_are_refused_with_many(tmp_path):
    with pytest.raises(ConfigError, match="--manifests"):
        fleet.plan(_options("a,b", manifests=str(tmp_path)))
    with pytest.raises(ConfigError, match="--update-baseline"):
        fleet.plan(_options("local,local"), update_baseline=True)
    with pytest.raises(ConfigError, match="--compare-with"):
        fleet.plan(_options("local,local"), compare_with=str(tmp_path))


def test_each_run_gets_the_invocations_arguments_with_its_cluster_last():
    args = ["tests_cluster", "--cluster", "prod-*", "-m", "rbac", "--cluster=a,b", "--strict", "--clusterish"]
    assert fleet.member_args(args, "prod-eu") == ["tests_cluster", "-m", "rbac", "--strict", "--clusterish",
                                                  "--cluster=prod-eu"]


def test_a_baseline_folder_gives_each_cluster_its_own_file_else_its_default(tmp_path):
    (tmp_path / "baselines").mkdir()
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "prod-eu.yaml").write_text("")
    assert locate(str(folder), "prod-eu", tmp_path) == folder / "prod-eu.yaml"
    assert locate(str(folder), "prod-us", tmp_path) == folder / "default.yaml"
    assert locate(str(tmp_path / "one.yaml"), "prod-eu", tmp_path) == tmp_path / "one.yaml"


# -- the fleet summary -----------------------------------------------------------------------------
def test_the_fleet_exits_with_the_worst_status_unreachable_first():
    assert fleet.fleet_exit([0, 0]) == 0
    assert fleet.fleet_exit([0, 1, 0]) == 1
    assert fleet.fleet_exit([1, 2, 0]) == 2
    assert fleet.fleet_exit([2, 3, 1]) == 3
    assert fleet.fleet_exit([3, 0]) == 3
    # Any other ending (pytest's usage error, nothing collected, a signal) is never better than 2.
    assert fleet.fleet_exit([0, 4]) == 2 and fleet.fleet_exit([1, 5]) == 2 and fleet.fleet_exit([0, -9]) == 2
    assert fleet.fleet_exit([4, 3]) == 3


@pytest.mark.parametrize("counts, status", [
    ({"passed": 3}, "proved"),
    ({"passed": 3, "skipped": 1}, "proved"),
    ({"passed": 3, "failed": 1}, "failed"),
    ({"error": 1, "passed": 2}, "failed"),
    ({"failed": 1, "not_verified": 2}, "failed"),
    ({"passed": 3, "not_verified": 1}, "not verified"),
    ({"not_verified": 1, "waived": 1}, "not verified"),
    ({"passed": 2, "waived": 1}, "waived"),
    ({"accepted": 1}, "waived"),
    ({"skipped": 2}, "exempt"),
    ({}, "not verified"),
    (None, "not verified"),
    ({"passed": 0}, "not verified"),
])
def test_a_controls_status_on_one_cluster_is_its_worst_result(counts, status):
    assert fleet.control_status(counts) == status


def _head(cluster: str, by_control: dict, exit_status: int = 0) -> dict:
    by_practice = Counter()
    for counts in by_control.values():
        by_practice.update(counts)
    tests = sum(by_practice.values())
    return {
        "environment": {"cluster": cluster, "API server": f"https://{cluster}:6443", "baseline": f"baselines/{cluster}.yaml",
                        "baseline sha256": "b" * 64, "cluster fingerprint": f"kube-system uid {cluster}", "server version": "v1.37.0"},
        "counts": {"tests": tests, "passed": by_practice["passed"], "failed": by_practice["failed"]},
        "summary_by_practice": {"rbac": dict(by_practice)},
        "summary_by_control": by_control,
    }


def _members() -> list[fleet.Member]:
    return [
        fleet.Member("eu", 0, "no findings", run_folder="eu-1", sums_sha256="a" * 64,
                     head=_head("eu", {"5.1.1": {"passed": 2}, "1.2.10": {"passed": 1, "skipped": 1}, "1.2.9": {"skipped": 1}})),
        fleet.Member("us", 1, "findings", run_folder="us-1", sums_sha256="c" * 64,
                     head=_head("us", {"5.1.1": {"passed": 1, "failed": 1}, "1.2.10": {"not_verified": 1},
                                       "(no CIS id)": {"waived": 1, "passed": 1}})),
        fleet.Member("gone", 3, "cannot reach the API server https://gone:6443: refused", endpoint="https://gone:6443",
                     baseline="baselines/default.yaml"),
    ]


def test_the_summary_puts_every_control_against_every_cluster():
    summary = fleet.summarize(_members(), "2026-01-01T00:00:00+00:00", "2026-01-01T00:05:00+00:00")
    assert list(summary["controls"]) == ["1.2.9", "1.2.10", "5.1.1", "(no CIS id)"]
    status = {control: {c: cell["status"] for c, cell in row.items()} for control, row in summary["controls"].items()}
    assert status == {
        "1.2.9": {"eu": "exempt", "us": "not verified", "gone": "not verified"},
        "1.2.10": {"eu": "proved", "us": "not verified", "gone": "not verified"},
        "5.1.1": {"eu": "proved", "us": "failed", "gone": "not verified"},
        "(no CIS id)": {"eu": "not verified", "us": "waived", "gone": "not verified"},
    }
    assert summary["controls"]["5.1.1"]["us"]["counts"] == {"passed": 1, "failed": 1}
    assert summary["exit_status"] == 3 and summary["verdict"] == "fail"


def test_the_summary_says_each_clusters_verdict_reason_and_counts():
    summary = fleet.summarize(_members(), "s", "f")
    eu, us, gone = summary["clusters"]
    assert (eu["verdict"], us["verdict"], gone["verdict"]) == ("pass", "fail", "unreachable")
    assert eu["controls"] == {"failed": 0, "not verified": 1, "waived": 0, "exempt": 1, "proved": 2}
    assert us["controls"] == {"failed": 1, "not verified": 2, "waived": 1, "exempt": 0, "proved": 0}
    assert gone["controls"] == {"failed": 0, "not verified": 4, "waived": 0, "exempt": 0, "proved": 0}
    assert eu["results"] == {"tests": 5, "passed": 3, "failed": 0}
    assert (eu["baseline"], eu["endpoint"], eu["run_folder"]) == ("baselines/eu.yaml", "https://eu:6443", "eu-1")
    assert (gone["baseline"], gone["endpoint"], gone["run_folder"], gone["results"]) == (
        "baselines/default.yaml", "https://gone:6443", None, None)
    assert gone["reason"].startswith("cannot reach the API server https://gone:6443")


def test_a_fleet_passes_only_when_every_cluster_passes():
    eu, us, _ = _members()
    assert fleet.summarize([eu], "s", "f")["verdict"] == "pass"
    unproven = fleet.Member("x", 0, "", head=_head("x", {"5.1.1": {"not_verified": 1}}))
    exempt_only = fleet.Member("y", 0, "", head=_head("y", {"5.1.1": {"skipped": 1}}))
    assert fleet.cluster_verdict(unproven) == "not verified" and fleet.cluster_verdict(exempt_only) == "not verified"
    assert fleet.summarize([eu, unproven], "s", "f")["verdict"] == "not verified"
    assert fleet.summarize([eu, unproven, us], "s", "f")["verdict"] == "fail"
    misconfigured = fleet.Member("z", 2, "baseline.yaml:4: bad")
    assert fleet.cluster_verdict(misconfigured) == "not audited"
    assert fleet.summarize([eu, misconfigured], "s", "f")["exit_status"] == 2


def test_markdown_and_html_show_names_as_text_never_markup():
    members = _members()
    members[0].cluster = "eu|<script>alert(1)</script>*x*"
    members[0].head["summary_by_control"]["5.1.1"] = {"passed": 2}
    summary = fleet.summarize(members, "s", "f")
    text = fleet.markdown(summary)
    assert "<script>" not in text and "eu\\|\\<script\\>" in text
    assert "| 5.1.1 | proved | failed | not verified |" in text
    header = next(line for line in text.splitlines() if line.startswith("| control |"))
    assert header.count(" | ") == 3  # the name's own | is escaped, so the table keeps its columns
    page = fleet.html_page(summary)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="../us-1/us-1.html"' in page


# -- a run folder, as the fleet reads it -----------------------------------------------------------
def _sealed_run(report_dir: Path, name: str, head: dict, rows=()) -> Path:
    run = RunFolder(report_dir, name)
    run.write_json_rows("results.json", head, "results", iter(rows))
    run.write_text(f"{name}.html", "<html></html>")
    return run.finish()


@PROPERTY
@given(head=st.dictionaries(st.text(min_size=1).filter(lambda k: k != "results"), JSON, max_size=4),
       rows=st.lists(JSON, max_size=4))
def test_the_head_of_results_json_is_read_without_its_results(tmp_path_factory, head, rows):
    folder = RunFolder(tmp_path_factory.mktemp("runs"), "run")
    folder.write_json_rows("results.json", head, "results", iter(rows))
    assert fleet.read_head(folder.partial / "results.json") == {**head, "results": []}


def test_a_run_folder_is_read_only_as_its_checksums_vouch(tmp_path):
    head = _head("eu", {"5.1.1": {"passed": 1}})
    folder = _sealed_run(tmp_path, "eu-1", head, [{"nodeid": "x", "status": "passed"}])
    read, sums = fleet.read_run_folder(folder)
    assert read == {**head, "results": []}
    assert sums == subprocess.run(["sha256sum", str(folder / SUMS)], capture_output=True, text=True).stdout.split()[0]
    member = fleet.conclude("eu", 0, {"run_folder": str(folder)}, tmp_path)
    assert (member.exit_status, member.run_folder, member.reason) == (0, "eu-1", "no findings: 1 passed")
    (folder / "results.json").write_text((folder / "results.json").read_text().replace('"passed": 1', '"passed": 9'))
    member = fleet.conclude("eu", 0, {"run_folder": str(folder)}, tmp_path)
    assert member.exit_status == 2 and "does not match its SHA256SUMS" in member.reason and member.head is None


def test_a_run_that_exits_0_without_a_run_folder_counts_as_not_audited(tmp_path):
    member = fleet.conclude("eu", 0, {}, tmp_path)
    assert member.exit_status == 2 and "wrote no run folder" in member.reason
    assert fleet.cluster_verdict(member) == "not audited"


def test_why_a_run_stopped_comes_from_its_note_else_its_exit_status(tmp_path):
    told = {"exit_status": 3, "reason": "cannot reach the API server https://x:6443: refused", "endpoint": "https://x:6443"}
    member = fleet.conclude("x", 3, told, tmp_path)
    assert (member.exit_status, member.endpoint, member.reason) == (3, "https://x:6443", told["reason"])
    assert "exit status 4" in fleet.conclude("x", 4, {}, tmp_path).reason
    assert "killed by SIGKILL" in fleet.conclude("x", -9, {}, tmp_path).reason


# -- through the plugin ----------------------------------------------------------------------------
@pytest.fixture
def fleet_suite(pytester, monkeypatch):
    """A one-test tests_cluster/ and the default baseline in pytester's folder; nobody answers at the
    kubeconfig's server, so each cluster's run stops before any test."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    (pytester.path / "tests_cluster").mkdir()
    (pytester.path / "tests_cluster" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    (pytester.path / "baselines").mkdir()
    (pytester.path / "baselines" / "default.yaml").write_text((ROOT / "baselines" / "default.yaml").read_text())
    return pytester


def test_a_pattern_that_matches_nothing_exits_2_and_writes_nothing(fleet_suite, tmp_path):
    kubeconfig = _kubeconfig(tmp_path / "config", "https://127.0.0.1:1", "prod-a", "dev")
    reports = tmp_path / "reports"
    result = fleet_suite.runpytest_subprocess("tests_cluster", f"--kubeconfig={kubeconfig}", "--cluster=qa-*",
                                              f"--report-dir={reports}")
    assert result.ret == 2
    assert "--cluster qa-*: the pattern matches no context" in result.stderr.str()
    assert not reports.exists()


def test_a_misconfigured_cluster_and_an_unreachable_one_do_not_stop_each_other(fleet_suite, tmp_path):
    kubeconfig = _kubeconfig(tmp_path / "config", "https://127.0.0.1:1", "prod-a", "prod-b", "dev")
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "default.yaml").write_text((ROOT / "baselines" / "default.yaml").read_text())
    (baselines / "prod-a.yaml").write_text("pod_security:\n  default: strictest\n")
    reports = tmp_path / "reports"
    result = fleet_suite.runpytest_subprocess("tests_cluster", f"--kubeconfig={kubeconfig}", "--cluster", "prod-*",
                                              f"--baseline={baselines}", f"--report-dir={reports}")
    assert result.ret == 3, result.stdout.str() + result.stderr.str()
    (folder,) = reports.iterdir()
    assert folder.name.startswith("fleet-")
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "fleet.html", "fleet.json", "fleet.md"]
    subprocess.run(["sha256sum", "--quiet", "-c", SUMS], cwd=folder, check=True)
    summary = json.loads((folder / "fleet.json").read_text())
    a, b = summary["clusters"]
    assert (a["cluster"], a["exit_status"], a["verdict"]) == ("prod-a", 2, "not audited")
    assert f"{baselines / 'prod-a.yaml'}:2" in a["reason"] and a["baseline"] == str(baselines / "prod-a.yaml")
    assert (b["cluster"], b["exit_status"], b["verdict"], b["endpoint"]) == ("prod-b", 3, "unreachable", "https://127.0.0.1:1")
    assert b["baseline"] == str(baselines / "default.yaml")
    output = result.stdout.str() + result.stderr.str()
    assert "cannot reach the API server https://127.0.0.1:1" in output and "not-a-real-token" not in output
    assert "exit status 3" in output

