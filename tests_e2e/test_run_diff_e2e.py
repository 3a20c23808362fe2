"""What changed since the last audit, on real runs: the hardened embedded cluster audited, then the
insecure one with --compare-with pointing at that run; `python -m kubeproof diff` between the two
names every practice whose counts moved, and the second report's first page says the same."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from suite_runs import ROOT, run_suite

from kubeproof.practices import PRACTICES


def kubeproof_diff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubeproof", "diff", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def two_runs(hardened_cluster, insecure_cluster, tmp_path_factory):
    reports = tmp_path_factory.mktemp("diff") / "reports"
    before = run_suite(reports / "hardened", "--cluster=local", f"--local-attach={hardened_cluster.workdir}")
    assert before.returncode == 0, before.output[-3000:]
    after = run_suite(reports / "insecure", "--cluster=local", f"--local-attach={insecure_cluster.workdir}",
                      f"--compare-with={before.run_folder}")
    assert after.returncode == 1, after.output[-3000:]
    return before, after


def test_diff_names_every_practice_whose_counts_changed_and_exits_1(two_runs):
    before, after = two_runs
    done = kubeproof_diff(str(before.run_folder), str(after.run_folder))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("kubeproof diff: WORSE (exit 1)")
    practices = done.stdout.split("Practices whose status changed:", 1)[1].split("\n\n", 1)[0]
    by_practice = (before.results["summary_by_practice"], after.results["summary_by_practice"])
    moved = {p for p in set(by_practice[0]) | set(by_practice[1]) if by_practice[0].get(p) != by_practice[1].get(p)}
    assert {"etcd_encryption", "anonymous_access", "rbac", "pod_security", "network_policy"} <= moved
    for practice in moved:
        assert f"{PRACTICES.get(practice, practice)} ({practice})" in practices, practice
    # Each failure of the insecure run is a new finding, named by object and path.
    assert "ClusterRole/insecure-everything" in done.stdout and "[worse]" in done.stdout


def test_diff_one_way_is_the_other_way_reversed(two_runs):
    before, after = two_runs
    forward = json.loads(kubeproof_diff(str(before.run_folder), str(after.run_folder), "--format=json").stdout)
    backward = json.loads(kubeproof_diff(str(after.run_folder), str(before.run_folder), "--format=json").stdout)

    def keys(entries):
        return {(e["test"], json.dumps(e["object"], sort_keys=True), e["path"]) for e in entries}

    assert forward["new_findings"] and keys(forward["new_findings"]) == keys(
        backward["fixed_findings"] + backward["not_confirmed_fixed"])
    assert {c["name"] for c in forward["controls"]} == {c["name"] for c in backward["controls"]}
    markdown = kubeproof_diff(str(before.run_folder), str(after.run_folder), "--format=markdown")
    assert markdown.returncode == 1 and markdown.stdout.startswith("## kubeproof diff: WORSE")


def test_compare_with_puts_since_on_the_first_page_and_a_line_in_the_summary(two_runs):
    before, after = two_runs
    page = next(after.run_folder.glob("local-*.html")).read_text()
    section = page.split('<section class="kubeproof-since" data-worse="true">', 1)[1].split("</section>", 1)[0]
    assert f"<h2>Since {before.run_folder.name}</h2>" in section
    assert "New findings" in section and "Practices whose status changed" in section
    assert page.index("kubeproof-since") < page.index("kubeproof-coverage-section")
    summary = (after.run_folder / "summary.md").read_text()
    assert f"Since `{before.run_folder.name}`: worse;" in summary


@pytest.mark.parametrize("target", ["missing", "empty-folder"])
def test_a_bad_compare_with_exits_2_before_the_run_and_leaves_no_run_folder(hardened_cluster, tmp_path, target):
    (tmp_path / "empty-folder").mkdir()
    reports = tmp_path / "reports"
    run = run_suite(reports, "--cluster=local", f"--local-attach={hardened_cluster.workdir}",
                    f"--compare-with={tmp_path / target}")
    assert run.returncode == 2, run.output[-3000:]
    assert f"--compare-with {tmp_path / target}:" in run.output
    assert not reports.exists() or not any(reports.iterdir())
