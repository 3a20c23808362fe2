"""Unit tests for kubeproof.artifacts.RunFolder: the run folder's JSON and its completion."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof.artifacts import SUMS, RunFolder
from strategies import JSON, PROPERTY


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
