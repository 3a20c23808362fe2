"""Each CIS id is written once, in a check module. The tests of tests_cluster/test_<name>.py mark
themselves from the constants of kubeproof/checks/<name>.py, whose CIS_BY_TEST says which ids each
test carries; these tests hold every test's `cis` marks to that declaration and every id to the CIS
1.12 list. The suite modules are imported directly, as tools/controls_catalogue.py does (collecting
them with pytest would need a cluster), and their marks are read by the catalogue's own reader, so
what is checked here is what docs/CONTROLS.md shows."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

from kubeproof import cis
from kubeproof.practices import PRACTICES

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("controls_catalogue", ROOT / "tools" / "controls_catalogue.py")
catalogue = importlib.util.module_from_spec(_spec)
sys.modules["controls_catalogue"] = catalogue  # dataclasses look their module up while the class is built
_spec.loader.exec_module(catalogue)

SUITE_FILES = sorted(catalogue.SUITE.glob("test_*.py"))


def name_of(path: Path) -> str:
    return path.stem.removeprefix("test_")


def check_module_of(path: Path):
    return importlib.import_module(f"kubeproof.checks.{name_of(path)}")


def marked_ids(suite_module) -> dict[str, set[str]]:
    """Every test function of the module and its CIS ids (module, function and pytest.param marks)."""
    marked = {name: set() for name, function in vars(suite_module).items()
              if name.startswith("test") and inspect.isfunction(function) and function.__module__ == suite_module.__name__}
    for case in catalogue.cases_of_module(suite_module, "suite"):
        marked[case.test.split("::")[1].split("[")[0]] |= set(case.controls)
    return marked


def disagreements(suite_module, check_module) -> list[str]:
    """Where a test's marks and its check module's CIS_BY_TEST differ (empty: they agree)."""
    declared = getattr(check_module, "CIS_BY_TEST", None)
    if declared is None:
        return [f"{check_module.__name__} declares no CIS_BY_TEST"]
    marked = marked_ids(suite_module)
    problems = []
    for test in sorted(marked.keys() | declared.keys()):
        if test not in declared:
            problems.append(f"{test}: not in {check_module.__name__}.CIS_BY_TEST")
        elif test not in marked:
            problems.append(f"{test}: in {check_module.__name__}.CIS_BY_TEST, but there is no such test")
        elif marked[test] != set(declared[test]):
            problems.append(f"{test}: marked {sorted(marked[test])}, declared {sorted(declared[test])}")
    return problems


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda path: path.name)
def test_cis_marks_are_the_ids_the_check_module_declares(path):
    suite_module = catalogue.import_suite_module(path)
    check_module = check_module_of(path)
    assert disagreements(suite_module, check_module) == []
    unknown = {i for ids in check_module.CIS_BY_TEST.values() for i in ids} - cis.ids()
    assert not unknown, f"not CIS 1.12 control ids: {sorted(unknown)}"


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda path: path.name)
def test_no_cis_id_is_written_in_the_suite(path):
    literal = re.search(r"mark\.cis\(\s*['\"][^)]*\)", path.read_text())
    assert literal is None, f"{path.name}: {literal.group()}: mark from a constant of kubeproof.checks.{name_of(path)}"


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda path: path.name)
def test_one_name_per_practice(path):
    """tests_cluster/test_<name>.py is marked with its practice, <name> or <practice>_<part>, and is backed
    by kubeproof/checks/<name>.py, unit-tested in tests_unit/test_checks_<name>.py."""
    marks = {mark.name for mark in catalogue.import_suite_module(path).pytestmark}
    [practice] = marks & PRACTICES.keys()
    assert name_of(path) == practice or name_of(path).startswith(f"{practice}_")
    assert check_module_of(path)
    assert (ROOT / "tests_unit" / f"test_checks_{name_of(path)}.py").exists()


# -- the check above catches a disagreement --------------------------------------------------------
FAKE_SUITE = '''
import pytest

pytestmark = [pytest.mark.rbac]


@pytest.mark.cis("5.1.3")
def test_wildcards(role):
    pass


@pytest.mark.parametrize("row", [pytest.param(1, marks=pytest.mark.cis("1.2.1"), id="1.2.1"),
                                 pytest.param(2, marks=pytest.mark.cis("1.2.2"), id="1.2.2")])
def test_rows(row):
    pass


def test_without_cis():
    pass
'''
AGREEING = {"test_wildcards": ("5.1.3",), "test_rows": ("1.2.1", "1.2.2"), "test_without_cis": ()}


def fake_modules(declared: dict | None, source: str = FAKE_SUITE):
    suite_module = types.ModuleType("fake_suite")
    exec(compile(textwrap.dedent(source), "fake_suite.py", "exec"), suite_module.__dict__)
    check_module = types.ModuleType("fake_checks")
    if declared is not None:
        check_module.CIS_BY_TEST = declared
    return suite_module, check_module


def test_marks_that_agree_with_their_declaration_pass():
    assert disagreements(*fake_modules(AGREEING)) == []


@pytest.mark.parametrize("declared, problem", [
    ({**AGREEING, "test_wildcards": ("5.1.1",)}, "test_wildcards: marked ['5.1.3'], declared ['5.1.1']"),
    ({**AGREEING, "test_rows": ("1.2.1",)}, "test_rows: marked ['1.2.1', '1.2.2'], declared ['1.2.1']"),
    ({**AGREEING, "test_without_cis": ("5.1.5",)}, "test_without_cis: marked [], declared ['5.1.5']"),
    ({k: v for k, v in AGREEING.items() if k != "test_rows"}, "test_rows: not in fake_checks.CIS_BY_TEST"),
    ({**AGREEING, "test_gone": ()}, "test_gone: in fake_checks.CIS_BY_TEST, but there is no such test"),
    (None, "fake_checks declares no CIS_BY_TEST"),
])
def test_a_mark_that_disagrees_with_its_declaration_is_caught(declared, problem):
    assert disagreements(*fake_modules(declared)) == [problem]
