"""The report's first page: the CIS coverage picture built from records (each section's controls by
state, every state drawn, not verified never drawn as proved, names inert), the failures list, the
verdict as summary.md states it, and the one identity block put where pytest-html's environment
section was."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from kubeproof import cis
from kubeproof.artifacts import summary_markdown, verdict
from kubeproof.evidence import (
    COVERAGE_STATES,
    Record,
    SectionCoverage,
    cis_coverage,
    coverage_svg,
    failures_html,
    first_page_html,
    identity_html,
)
from kubeproof.reporting import ENVIRONMENT_SECTION, FIRST_PAGE

SVG = "{http://www.w3.org/2000/svg}"
SCRIPT = "<script>alert(1)</script>"
CATALOGUE = tuple(
    {"id": i, "section": "master" if i.startswith("1") else "policies", "group": i.rsplit(".", 1)[0], "type": t}
    for i, t in [("1.1.1", "automated"), ("1.1.2", "automated"), ("1.1.3", "automated"), ("1.1.4", "automated"),
                 ("1.1.5", "automated"), ("1.1.6", "automated"), ("1.1.7", "automated"), ("1.1.8", "automated"),
                 ("5.1.1", "automated"), ("5.1.2", "automated"), ("5.1.3", "manual")])


def result(status: str, *controls: str, named: tuple[str, ...] = (), name: str = "ops") -> Record:
    obj = {"kind": "ClusterRole", "name": name}
    findings = [{"controls": list(named or controls), "object": obj, "path": "rules[0].verbs", "observed": ["*"],
                 "expected": "explicit verbs", "remediation": "Name them."}] if status in ("failed", "waived", "accepted") else []
    return Record(f"tests_cluster/test_x.py::test_x[{name}]", "test_x", "rbac", {"cis": list(controls)}, obj, status,
                  reason="could not read" if status in ("not_verified", "skipped", "error") else "", findings=findings)


RECORDS = [
    result("passed", "1.1.1"),                              # proved
    result("passed", "1.1.2"), result("failed", "1.1.2"),   # one failure fails it
    result("passed", "1.1.3"), result("waived", "1.1.3"),   # waived
    result("accepted", "1.1.4"),                            # accepted counts as waived
    result("passed", "1.1.5"), result("not_verified", "1.1.5"),  # not verified is never proved
    result("skipped", "1.1.6"),                             # only exempt: nothing was proved
    result("passed", "1.1.7"), result("skipped", "1.1.7"),  # exempt where it did not apply, proved elsewhere
    result("error", "1.1.8"),                               # an error fails it
    # One result judging two controls, its finding naming one: the other was judged compliant.
    result("failed", "5.1.1", "5.1.2", named=("5.1.1",)),
    # 5.1.3: no result carried it, so it is not covered.
]


def by_section(sections: list[SectionCoverage]) -> dict[str, dict[str, list[str]]]:
    return {s.section: {state: ids for state, ids in s.controls.items() if ids} for s in sections}


def test_each_sections_controls_by_state():
    assert by_section(cis_coverage(RECORDS, CATALOGUE)) == {
        "1.1": {"proved": ["1.1.1", "1.1.7"], "failed": ["1.1.2", "1.1.8"], "waived": ["1.1.3", "1.1.4"],
                "not_verified": ["1.1.5", "1.1.6"]},
        "5.1": {"proved": ["5.1.2"], "failed": ["5.1.1"], "not_covered": ["5.1.3"]},
    }
    sections = cis_coverage(RECORDS, CATALOGUE)
    assert [(s.section, s.total, s.automated) for s in sections] == [("1.1", 8, 8), ("5.1", 3, 2)]


def test_the_real_catalogue_draws_every_control_once():
    sections = cis_coverage(RECORDS)
    ids = [i for s in sections for state in COVERAGE_STATES for i in s.controls[state]]
    assert sorted(ids, key=cis.id_key) == sorted(cis.ids(), key=cis.id_key)
    seen = {"1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5", "1.1.6", "1.1.7", "1.1.8", "5.1.1", "5.1.2"}
    assert sum(s.count("not_covered") for s in sections) == len(cis.ids()) - len(seen)
    assert [s.section for s in sections][:2] == ["1.1", "1.2"] and sections[0].label


def drawn(svg: str) -> dict[str, dict[str, int]]:
    root = ElementTree.fromstring(svg)  # well-formed XML, not only HTML a browser forgives
    return {g.get("data-section"): {state: int(g.get(f"data-{state.replace('_', '-')}")) for state in COVERAGE_STATES}
            for g in root.iter(f"{SVG}g") if g.get("class") == "kp-section"}


def test_the_picture_carries_each_sections_numbers_and_every_state():
    svg = coverage_svg(cis_coverage(RECORDS, CATALOGUE), "CIS test")
    assert drawn(svg) == {
        "1.1": {"proved": 2, "failed": 2, "waived": 2, "not_verified": 2, "not_covered": 0},
        "5.1": {"proved": 1, "failed": 1, "waived": 0, "not_verified": 0, "not_covered": 1},
    }
    root = ElementTree.fromstring(svg)
    segments = [r for r in root.iter(f"{SVG}rect") if r.get("data-state")]
    assert {r.get("data-state") for r in segments} == set(COVERAGE_STATES)
    # Each segment is as long as its number of controls: 2 controls, twice the width of 1.
    widths = {(r.get("data-state"), float(r.get("width"))) for r in segments}
    assert ("proved", 2 * min(w for s, w in widths if s == "not_covered")) in widths
    # Not verified is drawn in a pattern of its own, never in the proved colour.
    unproven = [r for r in segments if r.get("data-state") == "not_verified"]
    proved_fill = next(r.get("fill") for r in segments if r.get("data-state") == "proved")
    assert all(r.get("fill").startswith("url(#") and r.get("fill") != proved_fill for r in unproven)
    # Accessible: a title for the figure, each bar and each segment; the counts also as visible text.
    assert root.get("role") == "img" and root.find(f"{SVG}title").text.startswith("CIS test: 11 controls: 3 proved")
    bar = next(g for g in root.iter(f"{SVG}g") if g.get("data-section") == "1.1")
    assert bar.find(f"{SVG}title").text.startswith("CIS 1.1")
    assert all(r.find(f"{SVG}title") is not None for r in segments)
    texts = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "kp-counts"]
    assert texts == ["2 proved, 2 failed, 2 waived or accepted, 2 not verified", "1 proved, 1 failed, 1 not covered"]
    legend = [g.get("data-state") for g in root.iter(f"{SVG}g") if g.get("class") == "kp-legend"]
    assert legend == list(COVERAGE_STATES)
    assert "<script" not in svg and "href" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_run_with_no_results_covers_nothing_and_proves_nothing():
    sections = cis_coverage([], CATALOGUE)
    assert all(s.count("not_covered") == s.total for s in sections)
    assert drawn(coverage_svg(sections, "x"))["1.1"]["proved"] == 0


def test_names_in_the_picture_are_text():
    sections = [SectionCoverage("1.1", SCRIPT, 1, {"proved": ['1.1.1"><svg onload=alert(1)>'], "failed": [],
                                                   "waived": [], "not_verified": [], "not_covered": []})]
    svg = coverage_svg(sections, f"title {SCRIPT}", key='x" onload="alert(1)')
    assert "<script" not in svg and "<svg onload" not in svg and 'onload="' not in svg
    root = ElementTree.fromstring(svg)
    assert root.find(f"{SVG}title").text.startswith(f"title {SCRIPT}")
    assert any(t.text == f"1.1 {SCRIPT}" for t in root.iter(f"{SVG}text"))


def test_failures_list_each_failure_with_its_source_and_inert_names():
    records = [result("failed", "5.1.3", name=SCRIPT), result("error", "1.2.1", name="broken"),
               result("passed", "1.1.1"), result("not_verified", "1.1.2")]
    sources = {("ClusterRole", None, SCRIPT): ("rbac.yaml", 12)}
    markup = failures_html(records, sources)
    assert "<script" not in markup and "&lt;script&gt;" in markup
    assert "<h2>Failures: 2</h2>" in markup and markup.count("<li>") == 2
    assert "<code>rbac.yaml:12</code>" in markup and "error" in markup
    assert "No result failed" in failures_html([result("passed", "1.1.1")])
    many = failures_html([result("failed", "5.1.3", name=f"r{i}") for i in range(7)], limit=5)
    assert many.count("<li>") == 6 and "and 2 more" in many


def test_identity_block_is_one_table_with_the_ids_pytest_html_fills():
    markup = identity_html({"cluster": SCRIPT, SCRIPT: "v1.31", "strict": False})
    assert "<script" not in markup and markup.count("&lt;script&gt;") == 2
    assert markup.count('id="environment"') == 1 and markup.count('id="environment-header"') == 1
    # pytest-html's script draws each row as key, then the value in a div: the same markup.
    assert "<tr><td>strict</td><td><div>False</div></td></tr>" in markup


@pytest.mark.parametrize("records, exitstatus", [
    (RECORDS, 1), ([result("passed", "1.1.1")], 0), ([result("passed", "1.1.1"), result("not_verified", "1.1.2")], 0),
    ([result("skipped", "1.1.1")], 0), ([], 0), ([result("passed", "1.1.1")], 1),
])
def test_the_verdict_is_the_one_summary_md_states(records, exitstatus):
    said = verdict(records, exitstatus, strict=False)
    page = first_page_html(records, {"cluster": "c"}, verdict=said, exitstatus=exitstatus, strict=False)
    shown = re.search(r'<span id="kubeproof-verdict"[^>]*>([^<]*)</span>', page).group(1)
    heading = summary_markdown(records, exitstatus=exitstatus, strict=False, sources={}, html_name="r.html").splitlines()[0]
    assert heading == f"## kubeproof: {shown}"
    # The page opens with the verdict, then the cluster, the picture and the failures, in that order.
    order = [page.index(m) for m in ('id="kubeproof-verdict"', 'id="environment"', "<svg", "kubeproof-failures")]
    assert order == sorted(order)


def test_pytest_htmls_environment_section_is_found_once_and_replaced_by_one_block():
    jinja2 = pytest.importorskip("jinja2")
    import pytest_html
    resources = Path(pytest_html.__file__).parent / "resources"
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader([resources]),
                                     autoescape=jinja2.select_autoescape(enabled_extensions=("jinja2",)))
    source = (resources / "index.jinja2").read_text(encoding="utf-8")
    assert len(ENVIRONMENT_SECTION.findall(source)) == 1  # a pytest-html that changed its page fails here
    template = environment.from_string(ENVIRONMENT_SECTION.sub("{{ " + FIRST_PAGE + "|safe }}", source),
                                       globals={FIRST_PAGE: identity_html({"cluster": "{{ 7*7 }}"})})
    page = template.render(title="t", date="d", time="t", version="v", styles="", run_count="", running_state="finished",
                           self_contained=True, outcomes={}, test_data="{}", table_head=[],
                           additional_summary={"prefix": [], "summary": [], "postfix": []})
    assert page.count('id="environment"') == 1 and page.count('id="environment-header"') == 1
    assert "<h2>Environment</h2>" not in page and "Audited cluster" in page
    assert "{{ 7*7 }}" in page  # a cluster's name is never template syntax
