"""Unit tests for kubeproof.artifacts: the run folder's JSON, JUnit XML and its completion."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY

from kubeproof.artifacts import SUMS, RunFolder, write_junit
from kubeproof.evidence import STATUSES, Record, outcome_counts


@PROPERTY
@given(head=st.dictionaries(st.text(min_size=1).filter(lambda k: k != "results"), JSON, max_size=4),
       rows=st.lists(JSON, max_size=6))
def test_rows_written_one_by_one_read_back_as_one_document(tmp_path_factory, head, rows):
    folder = RunFolder(tmp_path_factory.mktemp("runs"), "run")
    folder.write_json_rows("results.json", head, "results", iter(rows))
    assert json.loads((folder.partial / "results.json").read_text()) == {**head, "results": rows}


def test_each_row_is_one_line(tmp_path):
    folder = RunFolder(tmp_path, "run")
    folder.write_json_rows("results.json", {"counts": {"tests": 2}}, "results", iter([{"a": [1, 2]}, {"b": "x\ny"}]))
    lines = (folder.partial / "results.json").read_text().splitlines()
    assert '  {"a": [1, 2]},' in lines and '  {"b": "x\\ny"}' in lines


def test_the_streamed_key_must_come_last(tmp_path):
    folder = RunFolder(tmp_path, "run")
    with pytest.raises(ValueError, match="results must be the last key"):
        folder.write_json_rows("results.json", {"results": 1, "after": 2}, "results", iter([]))


def test_a_finished_folder_is_renamed_with_checksums_and_an_abandoned_one_leaves_nothing(tmp_path):
    done = RunFolder(tmp_path, "done")
    done.write_json("results.json", {"ok": True})
    final = done.finish()
    assert final == tmp_path / "done" and not done.partial.exists()
    assert (final / SUMS).read_text().endswith("  results.json\n")
    gone = RunFolder(tmp_path, "gone")
    gone.write_json("results.json", {})
    gone.abandon()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done"]


# -- JUnit XML from the records ------------------------------------------------------------------------
FINDING = {"controls": ["5.1.3"], "object": {"kind": "Role", "namespace": "a<b", "name": "x&y"}, "path": "rules[0]",
           "observed": ["*"], "expected": "explicit verbs", "remediation": "name them"}


def junit_record(status: str, number: int = 0) -> Record:
    return Record(f"tests_cluster/test_rbac.py::test_x[Role/a<b/x&y-{number}]", "test_x", "rbac",
                  {"cis": ["5.1.3"], "nsa": ["Authentication and authorization"], "pss": []}, None, status,
                  reason=f"why <{status}>", findings=[FINDING] if status in ("failed", "waived", "accepted") else [],
                  seconds=0.25)


def parse(path):
    suite = ElementTree.parse(path).getroot()[0]
    cases = suite.findall("testcase")
    kinds = [next((child.tag + ":" + child.get("type", "") for child in case if child.tag != "properties"), "passed")
             for case in cases]
    return suite, cases, kinds


@pytest.mark.parametrize("strict", [False, True])
def test_junit_counts_every_status_as_the_other_artifacts_do(tmp_path, strict):
    records = [junit_record(status, n) for n, status in enumerate(STATUSES * 2)]
    write_junit(tmp_path / "junit.xml", records, strict=strict, started="2026-11-25T10:00:00+00:00", seconds=3.5, hostname="h")
    suite, cases, kinds = parse(tmp_path / "junit.xml")
    counts = outcome_counts(records, strict=strict)
    assert int(suite.get("tests")) == len(cases) == counts["tests"]
    assert int(suite.get("failures")) == kinds.count("failure:") == counts["failed"]
    assert int(suite.get("errors")) == kinds.count("error:") == counts["error"]
    assert kinds.count("skipped:pytest.xfail") == counts["xfailed"]
    assert int(suite.get("skipped")) == kinds.count("skipped:pytest.skip") + counts["xfailed"] == counts["skipped"] + counts["xfailed"]


def test_junit_cases_keep_names_controls_and_findings_as_text(tmp_path):
    write_junit(tmp_path / "junit.xml", [junit_record("failed")], strict=False, started="s", seconds=1.0, hostname="h")
    _, [case], _ = parse(tmp_path / "junit.xml")
    assert case.get("classname") == "tests_cluster.test_rbac" and case.get("name") == "test_x[Role/a<b/x&y-0]"
    assert case.get("time") == "0.250"
    assert {p.get("name"): p.get("value") for p in case.find("properties")} == {
        "cis": "5.1.3", "nsa": "Authentication and authorization"}
    failure = case.find("failure")
    assert failure.get("message") == "Role/a<b/x&y: rules[0] is ['*']; expected explicit verbs"
    assert failure.text.endswith("why <failed>")


def test_two_runs_in_the_same_second_get_folders_of_their_own(tmp_path):
    first, second = RunFolder(tmp_path, "local-20260101T000000Z"), RunFolder(tmp_path, "local-20260101T000000Z")
    assert second.stem == "local-20260101T000000Z-2"
    first.finish()
    third = RunFolder(tmp_path, "local-20260101T000000Z")  # the first's final folder exists now
    second.finish()
    third.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "local-20260101T000000Z", "local-20260101T000000Z-2", "local-20260101T000000Z-3"]
