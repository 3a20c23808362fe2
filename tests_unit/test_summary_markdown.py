"""summary.md, the run in a page of Markdown: the builder on records (verdict, counts by practice,
failures with file:line, not verified listed, the cap, inert text), and through the real plugin on a
fake cluster (the file in the run folder and in SHA256SUMS, appended to $GITHUB_STEP_SUMMARY, a
step summary that cannot be written only warns)."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st
from strategies import PROPERTY
from test_plugin import suite  # noqa: F401  (the fixture: a tiny suite audited through the real plugin)

from kubeproof.artifacts import SUMMARY, SUMS, sarif_log, summary_markdown, verdict
from kubeproof.evidence import STATUSES, Record, counts_by_practice
from kubeproof.practices import PRACTICES

pytest_plugins = ["pytester"]

PAGE = "reports/run/run.html"
SOURCES = {("Role", "team-b", "deployer"): ("team-b/rbac.yaml", 7)}


def record(status: str = "passed", name: str = "deployer", *, practice: str = "rbac", number: int = 0, **extra) -> Record:
    obj = {"kind": "Role", "namespace": "team-b", "name": name}
    findings = [{"controls": ["5.1.3"], "object": obj, "path": "rules[0].verbs", "observed": ["*"],
                 "expected": "explicit verbs", "remediation": "Name the verbs."}] if status in ("failed", "waived", "accepted") else []
    return Record(f"tests_cluster/test_rbac.py::test_role_grants_no_wildcards[{name}-{number}]", "test_role_grants_no_wildcards",
                  practice, {"cis": ["5.1.3"]}, obj, status, findings=findings, **extra)


def unproven(reason: str = "etcd is not reachable from here") -> Record:
    return Record("tests_cluster/test_etcd_encryption.py::test_every_stored_secret_is_encrypted",
                  "test_every_stored_secret_is_encrypted", "etcd_encryption", {"cis": ["1.2.28"]}, None,
                  "not_verified", reason=reason)


def markdown(records, exitstatus=0, strict=False, sources=None, **options) -> str:
    return summary_markdown(records, exitstatus=exitstatus, strict=strict, sources=SOURCES if sources is None else sources,
                            html_name=PAGE, **options)


def table(text: str) -> dict[str, dict[str, str]]:
    """The counts table read back: practice -> column -> cell."""
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    return {cells[0]: dict(zip(header[1:], cells[1:], strict=True))
            for cells in ([c.strip() for c in row.strip("|").split("|")] for row in rows[1:])}


def spans(line: str) -> tuple[str, list[str]]:
    """A line read as CommonMark reads code spans: (the text outside them, with each span as `@`,
    the spans' contents). A run of n backticks opens a span that the next run of exactly n closes."""
    outside, inside, at = "", [], 0
    while at < len(line):
        if line[at] != "`":
            outside, at = outside + line[at], at + 1
            continue
        run = re.match(r"`+", line[at:]).group()
        close = next((m for m in re.finditer(r"`+", line[at + len(run):]) if len(m.group()) == len(run)), None)
        assert close is not None, f"unclosed code span in {line!r}"
        content = line[at + len(run): at + len(run) + close.start()]
        inside.append(content[1:-1] if len(content) > 2 and content[0] == content[-1] == " " else content)
        outside, at = outside + "@", at + len(run) + close.end()
    return outside, inside


def entries(text: str, heading: str) -> list[str]:
    section = text.split(f"### {heading}", 1)[1].split("\n\n", 2)[1]
    return [line for line in section.splitlines() if line.startswith("- ")]


# -- the builder -------------------------------------------------------------------------------------
def test_a_failure_from_a_manifest_is_listed_with_its_file_and_line():
    text = markdown([record("failed"), record("passed", "reader")], exitstatus=1)
    assert text.startswith("## kubeproof: FAIL\n")
    [entry] = entries(text, "Failures: 1")
    assert spans(entry) == ("- @ @ (test @ in @)", [
        "team-b/rbac.yaml:7", "Role/team-b/deployer: rules[0].verbs is ['*']; expected explicit verbs",
        "test_role_grants_no_wildcards", "tests_cluster/test_rbac.py"])
    assert table(text)["RBAC least privilege"]["failed"] == "1"
    assert table(text)["RBAC least privilege"]["passed"] == "1"


def test_without_a_manifest_the_object_and_the_test_say_where():
    [entry] = entries(markdown([record("failed", "ops")], exitstatus=1), "Failures: 1")
    outside, inside = spans(entry)
    assert outside == "- @ (test @ in @)"  # no file: this object did not come from one
    assert inside[0].startswith("Role/team-b/ops: rules[0].verbs") and inside[1] == "test_role_grants_no_wildcards"


def test_a_run_with_everything_proven_says_pass_and_lists_nothing():
    text = markdown([record("passed", f"r{n}", number=n) for n in range(3)])
    assert text.startswith("## kubeproof: PASS\n")
    assert "Exit status 0. 3 results: 3 passed, 0 failed" in text
    assert "### " not in text
    assert table(text)["**total**"]["passed"] == "**3**"


def test_not_verified_is_counted_listed_and_never_a_pass():
    text = markdown([record("passed"), unproven()])
    assert text.startswith("## kubeproof: NOT VERIFIED\n")
    assert table(text)["etcd encryption at rest"]["not verified"] == "1"
    [entry] = entries(text, "Not verified (never a pass): 1")
    assert spans(entry)[1][:2] == ["(cluster): etcd is not reachable from here", "test_every_stored_secret_is_encrypted"]
    assert "### Failures" not in text
    # --strict made the run exit 1 for it: then the verdict is fail, and it is still listed.
    strict = markdown([record("passed"), unproven()], exitstatus=1, strict=True)
    assert strict.startswith("## kubeproof: FAIL\n") and "--strict fails not verified results" in strict
    assert len(entries(strict, "Not verified (never a pass): 1")) == 1


def test_a_long_list_is_capped_with_the_rest_counted_and_the_page_named():
    failed = [record("failed", f"r{n}", number=n) for n in range(27_000)]
    text = markdown(failed + [unproven(f"reason {n}") for n in range(7)], exitstatus=1, limit=20)
    listed = entries(text, "Failures: 27000")
    assert len(listed) == 21 and listed[-1] == f"- ... and 26980 more; see `{PAGE}`"
    assert len(entries(text, "Not verified (never a pass): 7")) == 7  # under the cap: all of them, no "more"
    assert len(text.encode()) < 20_000
    # The default cap keeps a 27,000-failure run to a page as well.
    assert len(markdown(failed, exitstatus=1).encode()) < 64_000


def test_verdict_follows_the_exit_status_and_fails_closed():
    assert verdict([record("passed")], 0, strict=False) == "pass"
    assert verdict([record("passed")], 1, strict=False) == "fail"  # whatever made pytest exit 1 is a failure
    assert verdict([record("waived"), record("passed", "b")], 0, strict=False) == "pass"
    # Only waived and accepted results: every judgement failed, so the run proved nothing.
    assert verdict([record("waived"), record("accepted", "b")], 0, strict=False) == "not verified"
    assert verdict([record("error")], 0, strict=False) == "fail"
    assert verdict([], 0, strict=False) == "not verified"  # nothing proven is not a pass
    assert verdict([record("skipped"), record("skipped", "b")], 0, strict=False) == "not verified"
    assert verdict([record("skipped"), record("passed", "b")], 0, strict=False) == "pass"
    assert verdict([record("skipped"), unproven()], 0, strict=False) == "not verified"


def test_counts_are_the_suites_own_for_every_status():
    records = [record(status, f"{status}-{n}", number=n, practice=practice)
               for n, (status, practice) in enumerate((s, p) for s in STATUSES for p in ("rbac", "secrets", None))]
    shown = table(markdown(records, exitstatus=1))
    for practice, counts in counts_by_practice(records).items():
        row = shown[PRACTICES.get(practice, practice)]
        assert {s: int(row[s.replace("_", " ")]) for s in STATUSES} == {s: counts.get(s, 0) for s in STATUSES}
    assert int(shown["**total**"]["failed"].strip("*")) == len(records) // len(STATUSES)


def test_findings_read_as_in_sarif_and_the_evidence_stays_out():
    marker = "kp-marker-summary-5e1f"
    failing = record("failed", facts={"token": marker, "reply": {"data": marker}})
    failing.reason = ""
    text = markdown([failing], exitstatus=1, sources={})
    assert marker not in text
    message = sarif_log([failing], "0", {})["runs"][0]["results"][0]["message"]["text"]
    [entry] = entries(text, "Failures: 1")
    assert spans(entry)[1][0] == message


@PROPERTY
@given(name=st.text(min_size=1, max_size=400) | st.text(alphabet="`*_[]|<>&\\\n\r\u2028 a", min_size=1, max_size=40),
       reason=st.text(max_size=400) | st.text(alphabet="`*_[]|<>&\\\n\r\u2028 a", max_size=40))
def test_names_and_reasons_stay_inert_one_line_text(name, reason):
    text = markdown([record("failed", name), unproven(reason)], exitstatus=1, sources={})
    [failure], [unknown] = entries(text, "Failures: 1"), entries(text, "Not verified (never a pass): 1")
    for line in (failure, unknown):
        # Whatever the name or reason holds, it is inside code spans (shown as text, never markup),
        # around them is only our own wording, and the entry is one bounded line.
        assert spans(line)[0] == "- @ (test @ in @)"
        assert len(line) < 1_000
    assert spans(failure)[1][0].startswith(" ".join(f"Role/team-b/{name}".split())[:100])
    assert len(table(text)) == 3  # two practices and the total: nothing broke the table
    assert len(text.splitlines()) == len(markdown([record("failed"), unproven()], exitstatus=1, sources={}).splitlines())


# -- through the plugin --------------------------------------------------------------------------------
def test_the_run_folder_has_summary_md_covered_by_the_checksums(suite):  # noqa: F811
    run = suite.run()
    assert run.returncode == 1, run.output
    text = (run.folder / SUMMARY).read_text()
    assert text.startswith("## kubeproof: FAIL\n")
    counts = run.results["counts"]
    assert (f"{counts['tests']} results: {counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
            f"{counts['skipped']} skipped") in text
    # Each finding as results.json (and so the HTML) words it: the same texts, nothing else.
    failed = [spans(e)[1][0] for e in entries(text, "Failures: 2")]
    assert failed == [f"ClusterRole/{r['object']['name']}: {f['path']} is {f['observed']!r}; expected {f['expected']}"
                      for r in run.records("failed") for f in r["findings"]]
    [not_verified] = entries(text, "Not verified (never a pass): 1")
    assert spans(not_verified)[1][0] == "(cluster): " + run.by_object()[("test_every_stored_secret_is_encrypted", "")]["reason"]
    assert f"/{run.folder.name}/{run.folder.name}.html`" in text
    sums = dict(reversed(line.split("  ", 1)) for line in (run.folder / SUMS).read_text().splitlines())
    assert sums[SUMMARY] == hashlib.sha256((run.folder / SUMMARY).read_bytes()).hexdigest()


def test_github_step_summary_is_appended_to_never_truncated(suite, monkeypatch, tmp_path):  # noqa: F811
    step = tmp_path / "step-summary.md"
    step.write_text("## an earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    first, second = suite.run(), suite.run("-k", "stored_secret")
    assert (first.returncode, second.returncode) == (1, 0), first.output + second.output
    written = step.read_text()
    assert written == ("## an earlier step\n\n" + (first.folder / SUMMARY).read_text() + "\n"
                       + (second.folder / SUMMARY).read_text())
    assert "## kubeproof: FAIL" in written and "## kubeproof: NOT VERIFIED" in written


def test_a_step_summary_that_cannot_be_written_warns_and_the_run_stands(suite, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))  # a folder: opening it to append fails
    run = suite.run()
    assert run.returncode == 1, run.output  # the findings decide, not the step summary
    assert "could not append the summary to $GITHUB_STEP_SUMMARY" in run.output
    assert (run.folder / SUMMARY).exists() and (run.folder / SUMS).exists()
