"""Unit tests for tools/controls_catalogue.py, and the check that docs/CONTROLS.md is what the markers
in tests_cluster/ say: it fails whenever a test's CIS ids change without the catalogue being
regenerated (`python tools/controls_catalogue.py`)."""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import PROPERTY

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("controls_catalogue", ROOT / "tools" / "controls_catalogue.py")
catalogue = importlib.util.module_from_spec(_spec)
sys.modules["controls_catalogue"] = catalogue  # dataclasses look their module up while the class is built
_spec.loader.exec_module(catalogue)

HAVE_CONTROLS = catalogue.DEFAULT_CONTROLS.exists()
needs_controls = pytest.mark.skipif(not HAVE_CONTROLS, reason=f"{catalogue.DEFAULT_CONTROLS} is not present")


@needs_controls
def test_docs_controls_md_is_up_to_date():
    expected = catalogue.generate()
    current = catalogue.OUTPUT.read_text() if catalogue.OUTPUT.exists() else ""
    assert current == expected, "docs/CONTROLS.md is out of date: run python tools/controls_catalogue.py"


@needs_controls
def test_every_cis_control_is_listed_exactly_once():
    text = catalogue.generate()
    listed = re.findall(r"^\| (\d+(?:\.\d+)+) \|", text, re.MULTILINE)
    ids = [c["id"] for c in catalogue.load_controls()]
    assert sorted(listed, key=catalogue.id_key) == ids
    assert len(set(listed)) == len(listed)


@needs_controls
def test_control_plane_rows_are_in_the_catalogue():
    from kubeproof.checks import audit_logging, control_plane

    cases = catalogue.collect()
    for row in control_plane.ROWS + audit_logging.ROWS:
        assert any(row.id in case.controls and f"[{row.id}]" in case.test for case in cases), row.id


SUITE_MODULE = '''
import pytest

pytestmark = [pytest.mark.rbac, pytest.mark.cis("9.9.1")]


def helper(snapshot):
    return snapshot.component_config("kube-apiserver")


@pytest.mark.cis("9.9.2", "9.9.1")
def test_reads_configuration(snapshot, probes, verdict):
    helper(snapshot)
    probes.anonymous("/version")


@pytest.mark.parametrize("row", [pytest.param(1, marks=pytest.mark.cis("9.9.3"), id="first"),
                                 pytest.param(2, marks=[pytest.mark.cis("9.9.4")], id="second"),
                                 3])
def test_rows(row, probes):
    probes.access_review({})


def test_objects(namespace, verdict):
    pass


def not_a_test():
    pass
'''


def write_suite(folder: Path, source: str = SUITE_MODULE) -> Path:
    suite = folder / "tests_cluster"
    suite.mkdir()
    (suite / "test_example.py").write_text(textwrap.dedent(source))
    return suite


def test_ids_come_from_module_function_and_param_marks(tmp_path):
    cases = {c.test: c for c in catalogue.collect(write_suite(tmp_path))}
    assert set(cases) == {
        "tests_cluster/test_example.py::test_reads_configuration",
        "tests_cluster/test_example.py::test_rows[first]",
        "tests_cluster/test_example.py::test_rows[second]",
        "tests_cluster/test_example.py::test_objects",
    }
    assert cases["tests_cluster/test_example.py::test_reads_configuration"].controls == ("9.9.1", "9.9.2")
    assert cases["tests_cluster/test_example.py::test_rows[first]"].controls == ("9.9.1", "9.9.3")
    assert cases["tests_cluster/test_example.py::test_rows[second]"].controls == ("9.9.1", "9.9.4")
    assert cases["tests_cluster/test_example.py::test_objects"].controls == ("9.9.1",)


def test_method_is_read_from_what_the_test_calls(tmp_path):
    cases = {c.test.split("::")[1]: c.method for c in catalogue.collect(write_suite(tmp_path))}
    # The configuration read (through a helper) is the method; the probe is supporting evidence.
    assert cases["test_reads_configuration"] == "component configuration (effective flags and files)"
    assert cases["test_rows[first]"] == "access review (SubjectAccessReview)"
    assert cases["test_objects"] == catalogue.READ_OBJECTS


@pytest.mark.parametrize("control, reason", [
    ({"id": "1.2.20", "type": "manual"}, catalogue.REASONS["1.2.20"]),  # an id of its own, over MANUAL
    ({"id": "3.1.2", "type": "manual"}, catalogue.REASONS["3.1"]),  # a group prefix
    ({"id": "5.6.4", "type": "manual"}, catalogue.MANUAL),
    ({"id": "5.4.1", "type": "automated"}, catalogue.NOT_YET),
])
def test_reasons(control, reason):
    assert catalogue.reason_for(control) == reason


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch):
    if not HAVE_CONTROLS:
        pytest.skip(f"{catalogue.DEFAULT_CONTROLS} is not present")
    stale = tmp_path / "CONTROLS.md"
    stale.write_text("old\n")
    assert catalogue.main(["--check", "--output", str(stale)]) == 1
    assert catalogue.main(["--output", str(stale)]) == 0
    assert catalogue.main(["--check", "--output", str(stale)]) == 0


CONTROL_IDS = [f"{a}.{b}" for a in (1, 2, 5) for b in range(1, 6)]


@PROPERTY
@given(marked=st.dictionaries(st.sampled_from([f"t::test_{i}" for i in range(6)]),
                              st.lists(st.sampled_from(CONTROL_IDS + ["7.7"]), min_size=1, max_size=4), max_size=6))
def test_render_lists_each_control_once_and_proves_exactly_the_marked_ones(marked):
    controls = [{"id": i, "section": "s", "type": "automated"} for i in CONTROL_IDS]
    cases = [catalogue.Case(test, tuple(dict.fromkeys(ids)), "probe") for test, ids in marked.items()]
    text = catalogue.render(catalogue.Catalogue(controls, cases))
    proved_part, _, missing_part = text.partition("## Not proved automatically")
    proved = re.findall(r"^\| (\d+\.\d+) \|", proved_part, re.MULTILINE)
    missing = re.findall(r"^\| (\d+\.\d+) \|", missing_part, re.MULTILINE)
    marked_ids = {i for ids in marked.values() for i in ids} & set(CONTROL_IDS)
    assert set(proved) == marked_ids and set(missing) == set(CONTROL_IDS) - marked_ids
    assert len(proved) + len(missing) == len(CONTROL_IDS)
    assert ("7.7" in text) == any("7.7" in ids for ids in marked.values())  # unknown ids are shown, not lost
