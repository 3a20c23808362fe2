"""The report's first page, opened in Chromium as an auditor opens it: the verdict summary.md states,
the audited cluster in one block (pytest-html's environment table is gone), the CIS 1.12 coverage
picture whose numbers are the run's own, then the failures, then the rest of the report."""

from __future__ import annotations

from collections import Counter, defaultdict
from html.parser import HTMLParser

import pytest
from browser import rendered_dom, screenshot
from suite_runs import run_suite

from kubeproof import cis

STATES = ("proved", "failed", "waived", "not-verified", "not-covered")


class Page(HTMLParser):
    """What the DOM shows, in document order: headings, ids, the coverage bars' numbers, the identity
    table's rows and the verdict's text."""

    def __init__(self, markup: str):
        super().__init__()
        self.ids: Counter = Counter()
        self.order: list[str] = []  # landmarks, as they come
        self.headings: list[str] = []
        self.bars: dict[str, dict[str, int]] = {}
        self.identity: list[list[str]] = []
        self.verdict = ""
        self.svg_scripts = 0
        self._open: list[str] = []  # what text is being collected for
        self._in_identity = False
        self._in_svg = False
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids[attributes["id"]] += 1
            self.order.append(f"#{attributes['id']}")
        if tag == "svg":
            self._in_svg = True
            self.order.append("svg")
        if self._in_svg and (tag == "script" or any(k.startswith("on") or k in ("href", "xlink:href") for k in attributes)):
            self.svg_scripts += 1
        if tag == "g" and attributes.get("class") == "kp-section":
            self.bars[attributes["data-section"]] = {s: int(attributes[f"data-{s}"]) for s in STATES}
        if tag == "section" and attributes.get("class"):
            self.order.append(f".{attributes['class']}")
        if tag == "table" and attributes.get("id") == "environment":
            self._in_identity = True
        if self._in_identity and tag == "tr":
            self.identity.append([])
        if tag in ("h1", "h2", "td") or attributes.get("id") == "kubeproof-verdict":
            self._open.append(tag if attributes.get("id") != "kubeproof-verdict" else "verdict")
            if tag == "h2":
                self.headings.append("")

    def handle_endtag(self, tag):
        if tag == "svg":
            self._in_svg = False
        if tag == "table":
            self._in_identity = False
        if self._open and (self._open[-1] == tag or (self._open[-1] == "verdict" and tag == "span")):
            self._open.pop()

    def handle_data(self, data):
        if not self._open:
            return
        if "verdict" in self._open:
            self.verdict += data
        if "h2" in self._open:
            self.headings[-1] += data
        if self._open[-1] == "td" and self._in_identity and self.identity and data.strip():
            self.identity[-1].append(data.strip())


def expected_coverage(results: dict) -> dict[str, dict[str, int]]:
    """Each CIS section's controls by state, worked out here from results.json's summary by control:
    any failure or error fails a control, a waived or accepted finding waives it, anything short of a
    proof leaves it not verified, and a control nobody judged is not covered."""
    by_control = results["summary_by_control"]
    table: dict[str, Counter] = defaultdict(Counter)
    for control in cis.controls():
        counts = by_control.get(control["id"])
        if counts is None:
            state = "not-covered"
        elif counts.get("failed") or counts.get("error"):
            state = "failed"
        elif counts.get("waived") or counts.get("accepted"):
            state = "waived"
        elif counts.get("not_verified") or not counts.get("passed"):
            state = "not-verified"
        else:
            state = "proved"
        table[control["group"]][state] += 1
    return {group: {s: counts.get(s, 0) for s in STATES} for group, counts in table.items()}


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("first-page")
    run = run_suite(tmp / "reports", "--manifests=examples/config-repo")
    assert run.returncode == 1 and run.results, run.output[-2000:]  # the example repository's violations
    page = next(run.run_folder.glob("*.html"))
    picture = screenshot(page, tmp / "browser-shot", tmp / "first-page.png")
    return run, page, Page(rendered_dom(page, tmp / "browser-dom")), picture


def test_the_page_opens_with_the_verdict_summary_md_states(opened):
    run, _, page, _ = opened
    heading = (run.run_folder / "summary.md").read_text(encoding="utf-8").splitlines()[0]
    assert heading == f"## kubeproof: {page.verdict.strip()}"
    assert page.verdict.strip() == "FAIL"  # exit status 1
    assert page.headings[0].startswith("Verdict:")


def test_one_identity_block_naming_the_cluster(opened):
    run, raw, page, _ = opened
    assert page.ids["environment"] == 1 and page.ids["environment-header"] == 1
    assert "Environment" not in page.headings and page.headings.count("Audited cluster") == 1
    rows = {row[0]: row[1] if len(row) > 1 else "" for row in page.identity}
    described = run.results["environment"]
    for key in ("cluster", "backend", "API server", "server version", "cluster fingerprint"):
        assert rows[key] == str(described[key]), key
    assert rows["cluster fingerprint"].startswith("kube-system uid ")
    assert not {"Python", "Platform", "Packages", "Plugins"} & set(rows)  # pytest-metadata's table is gone
    assert "<h2>Environment</h2>" not in raw.read_text(encoding="utf-8")  # in the file as written, too


def test_the_coverage_picture_carries_the_runs_numbers(opened):
    run, _, page, _ = opened
    assert page.bars == expected_coverage(run.results)
    assert sum(sum(bar.values()) for bar in page.bars.values()) == len(cis.ids())
    drawn = {state for bar in page.bars.values() for state, n in bar.items() if n}
    assert {"proved", "failed", "not-covered"} <= drawn
    assert page.svg_scripts == 0


def test_verdict_cluster_picture_failures_then_the_rest(opened):
    run, _, page, _ = opened
    landmarks = ["#kubeproof-verdict", "#environment", "svg", ".kubeproof-failures", "#results-table"]
    positions = [page.order.index(m) for m in landmarks]
    assert positions == sorted(positions), page.order[:40]
    failing = len(run.records("failed")) + len(run.records("error"))
    assert f"Failures: {failing}" in page.headings
    assert page.headings.index(f"Failures: {failing}") < page.headings.index("kubeproof summary by practice")


def test_the_screenshot_was_taken(opened, capsys):
    _, _, _, picture = opened
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with capsys.disabled():  # where a person looks: the test's output, whether or not it passed
        print(f"\nfirst page screenshot: {picture}")
