"""Unit tests for kubeproof.results (what checks return) and kubeproof.evidence (records and the HTML
built from them: every value from the cluster is escaped)."""

from __future__ import annotations

import html
import json
from collections import Counter
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY

from kubeproof.evidence import STATUSES, Record, counts_by_control, counts_by_practice, row_html, summary_html
from kubeproof.results import Evidence, Finding, NotVerified, ObjectRef

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'


# -- results ---------------------------------------------------------------------------------------
def test_not_verified_keeps_its_reason():
    error = NotVerified("the roles could not be listed")
    assert isinstance(error, Exception)
    assert error.reason == "the roles could not be listed" == str(error)


def test_object_ref_of_an_object():
    obj = {"kind": "Role", "metadata": {"name": "deployer", "namespace": "team-a", "uid": "1234"}}
    assert ObjectRef.of(obj) == ObjectRef("Role", "deployer", "team-a", "1234")
    assert ObjectRef.of(obj, "ClusterRole").kind == "ClusterRole"  # the caller's kind wins
    assert str(ObjectRef.of(obj)) == "Role/team-a/deployer"
    assert str(ObjectRef("ClusterRole", "view")) == "ClusterRole/view"


@pytest.mark.parametrize("obj", [None, "x", [], {}, {"metadata": None}, {"metadata": []}, {"metadata": {"name": ""}},
                                 {"kind": 3, "metadata": {"name": 5, "namespace": ["a"], "uid": 7}}], ids=repr)
def test_object_ref_of_anything_never_raises(obj):
    ref = ObjectRef.of(obj)
    assert isinstance(ref.kind, str) and isinstance(ref.name, str)
    assert ref.namespace is None or isinstance(ref.namespace, str)
    assert ref.uid is None or isinstance(ref.uid, str)


@PROPERTY
@given(JSON, st.none() | st.text(max_size=5))
def test_object_ref_of_arbitrary_values_never_raises(obj, kind):
    ref = ObjectRef.of(obj, kind)
    assert isinstance(str(ref), str)


def test_finding_describe_and_to_dict():
    finding = Finding(("5.1.3",), ObjectRef("ClusterRole", "ops"), "rules[2].verbs", ["*"], "explicit names", "list them")
    assert finding.describe() == "ClusterRole/ops: rules[2].verbs is ['*']; expected explicit names"
    record = finding.to_dict()
    assert record == {
        "controls": ["5.1.3"],
        "object": {"kind": "ClusterRole", "name": "ops", "namespace": None, "uid": None},
        "path": "rules[2].verbs", "observed": ["*"], "expected": "explicit names", "remediation": "list them",
    }
    assert json.loads(json.dumps(record)) == record


def test_evidence_starts_empty_and_unshared():
    first, second = Evidence(), Evidence()
    first.facts["a"] = 1
    assert second.facts == {}


# -- records and counts ----------------------------------------------------------------------------
def record(status="failed", practice="rbac", **changes) -> Record:
    finding = Finding(("5.1.3",), ObjectRef("ClusterRole", "ops"), "rules[0].verbs", ["*"], "explicit names", "fix it")
    base = Record(
        nodeid="tests_cluster/test_rbac.py::test_x[ClusterRole/ops]", test="test_x", practice=practice,
        controls={"cis": ["5.1.3"], "nsa": [], "pss": []}, object={"kind": "ClusterRole", "name": "ops"},
        status=status, reason="", findings=[finding.to_dict()], facts={"rules": 3},
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_record_to_dict():
    data = record().to_dict()
    assert data["status"] == "failed" and data["evidence"] == {"rules": 3} and data["findings"][0]["path"] == "rules[0].verbs"
    assert set(data) == {"nodeid", "test", "practice", "controls", "object", "status", "reason", "findings", "evidence", "reads"}


def test_counts_by_practice():
    records = [record("passed"), record("failed"), record("not_verified", practice="etcd_encryption"), record("passed", practice=None)]
    counts = counts_by_practice(records)
    assert list(counts) == ["etcd_encryption", "other", "rbac"]
    assert counts["rbac"] == Counter({"passed": 1, "failed": 1})
    assert counts["other"] == Counter({"passed": 1})


def test_a_result_under_several_controls_fails_only_those_its_findings_name():
    finding = {"controls": ["5.1.4"], "object": None, "path": "subjects[0]", "observed": "x", "expected": "y", "remediation": "z"}
    several = Record("t::b", "t", "rbac", {"cis": ["5.1.2", "5.1.4"]}, None, "failed", findings=[finding])
    waived = Record("t::c", "t", "rbac", {"cis": ["5.1.2", "5.1.4"]}, None, "waived", findings=[finding])
    counts = counts_by_control([several, waived, Record("t::d", "t", "rbac", {"cis": ["5.1.2", "5.1.4"]}, None, "not_verified")])
    assert counts["5.1.4"] == Counter({"failed": 1, "waived": 1, "not_verified": 1})
    assert counts["5.1.2"] == Counter({"passed": 2, "not_verified": 1})


def test_findings_naming_none_of_the_tests_controls_fail_them_all():
    finding = {"controls": ["9.9"], "object": None, "path": "", "observed": "x", "expected": "y", "remediation": "z"}
    stray = Record("t::b", "t", "rbac", {"cis": ["5.1.2", "5.1.4"]}, None, "failed", findings=[finding])
    assert counts_by_control([stray]) == {"5.1.2": Counter({"failed": 1}), "5.1.4": Counter({"failed": 1})}


# -- HTML: escaped everywhere ----------------------------------------------------------------------
class Markup(HTMLParser):
    """The tags of a piece of HTML, in order, with their attributes; and its text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(("start", tag, tuple(attrs)))

    def handle_endtag(self, tag):
        self.tags.append(("end", tag))

    def handle_startendtag(self, tag, attrs):
        self.tags.append(("startend", tag, tuple(attrs)))

    def handle_comment(self, data):
        self.tags.append(("comment",))

    def handle_data(self, data):
        self.text.append(data)


def parsed(markup: str) -> Markup:
    parser = Markup()
    parser.feed(markup)
    parser.close()
    return parser


def tamed(value, names: dict, keys: bool = True):
    """The same value with every string swapped for a harmless one (equal strings stay equal, empty stays
    empty); `keys=False` keeps mapping keys, for the record fields the renderer looks up by name."""
    if isinstance(value, str):
        return names.setdefault(value, f"v{len(names)}") if value else ""
    if isinstance(value, list):
        return [tamed(v, names, keys) for v in value]
    if isinstance(value, dict):
        return {(tamed(k, names) if keys else k): tamed(v, names, keys) for k, v in value.items()}
    return value


def tamed_record(hostile: Record, names: dict) -> Record:
    return Record(
        nodeid="n", test="t", practice=tamed(hostile.practice, names), controls=tamed(hostile.controls, names, keys=False),
        object=tamed(hostile.object, names, keys=False), status=hostile.status, reason=tamed(hostile.reason, names),
        findings=tamed(hostile.findings, names, keys=False), facts=tamed(hostile.facts, names),
    )


def assert_same_structure(hostile_markup: str, tame_markup: str) -> None:
    """Values from the cluster add text, never a tag, an attribute or a comment."""
    assert parsed(hostile_markup).tags == parsed(tame_markup).tags, hostile_markup


def hostile_record() -> Record:
    name_ref = ObjectRef("Role", SCRIPT, ATTRIBUTE)
    finding = Finding(("5.1.3",), name_ref, f"rules[0].{SCRIPT}", [SCRIPT, {"k": ATTRIBUTE}], SCRIPT, ATTRIBUTE)
    return Record(
        nodeid=f"t::x[{SCRIPT}]", test="x", practice=SCRIPT, controls={"cis": [SCRIPT], SCRIPT: ["1"]},
        object={"kind": "Role", "name": SCRIPT, "namespace": ATTRIBUTE}, status="not_verified", reason=SCRIPT,
        findings=[finding.to_dict()], facts={SCRIPT: SCRIPT, "list": [SCRIPT], "nested": {"a": ATTRIBUTE}},
    )


def test_row_html_escapes_an_object_name_and_every_other_value():
    hostile = hostile_record()
    markup = row_html(hostile)
    assert "<script" not in markup and "<img" not in markup
    assert html.escape(SCRIPT) in markup
    assert_same_structure(markup, row_html(tamed_record(hostile, {})))
    # The escaped text reads back as the original name.
    assert any(SCRIPT in text for text in parsed(markup).text)


def test_summary_html_escapes_practices_and_environment():
    hostile = hostile_record()
    environment = {SCRIPT: ATTRIBUTE, "cluster": SCRIPT, "strict": True}
    markup = summary_html([hostile], environment)
    assert "<script" not in markup and "<img" not in markup
    assert html.escape(SCRIPT) in markup
    names: dict = {}
    assert_same_structure(markup, summary_html([tamed_record(hostile, names)], tamed(environment, names)))


def test_summary_html_counts_every_status():
    markup = summary_html([record(s) for s in STATUSES] + [record("failed")], {})
    text = parsed(markup).text
    assert "RBAC least privilege" in text
    row = text[text.index("RBAC least privilege") + 1:][:len(STATUSES)]
    assert row == ["2" if status == "failed" else "1" for status in STATUSES]


def test_row_html_of_a_passed_record_without_findings():
    markup = row_html(record("passed", findings=[], facts={}, reason=""))
    assert "field path" not in markup and "Evidence" not in markup
    assert "CIS 5.1.3" in markup


HOSTILE_TEXT = st.lists(st.sampled_from(list("<>&\"'/=scriptimg ") + ["<script>", "</td>", "<!--", "]]>", "<img src=x>"]),
                        max_size=12).map("".join)


@PROPERTY
@given(HOSTILE_TEXT, HOSTILE_TEXT, HOSTILE_TEXT, st.sampled_from(STATUSES))
def test_no_value_ever_becomes_markup(name, namespace, observed, status):
    finding = Finding(("1.2.1",), ObjectRef("Endpoint", name, namespace), observed, [observed], name, namespace)
    hostile = Record(nodeid="n", test="t", practice=name, controls={"cis": ["1.2.1"], "nsa": [observed]},
                     object={"name": name}, status=status, reason=observed, findings=[finding.to_dict()],
                     facts={name: observed})
    names: dict = {}
    tame = tamed_record(hostile, names)
    assert_same_structure(row_html(hostile), row_html(tame))
    assert_same_structure(summary_html([hostile], {name: observed}), summary_html([tame], tamed({name: observed}, names)))


def test_a_large_runs_grouped_results_are_the_passed_and_exempt_ones_never_the_unproven():
    from kubeproof.evidence import is_grouped, passed_groups_html
    records = [record("passed", object={"kind": "Role", "namespace": "team", "name": "viewer"}, findings=[]),
               record("skipped", reason="exempt: no mesh <installed>", findings=[]),
               record("not_verified", reason="roles could not be listed", findings=[]), record("failed")]
    assert [is_grouped(r) for r in records] == [True, True, False, False]
    page = passed_groups_html(records)
    assert "Role/team/viewer" in page and "exempt: no mesh &lt;installed&gt;" in page
    assert "roles could not be listed" not in page and "(2)" in page
