"""`python -m kubeproof diff`: two run folders written here, compared as an auditor asks."""

from __future__ import annotations

import hashlib
import json

import pytest

import kubeproof
from kubeproof import diff
from kubeproof.__main__ import main


def record(test, status="passed", *, obj=("Namespace", None, "team-a"), cis=("5.3.2",), nsa=(), practice="network_policy",
           findings=(), param=None):
    kind, namespace, name = obj if obj else (None, None, None)
    objref = {"kind": kind, "namespace": namespace, "name": name, "uid": "u-1"} if obj else None
    return {
        "nodeid": f"tests_cluster/test_{practice}.py::{test}[{param or name}]", "test": test, "practice": practice,
        "controls": {"cis": list(cis), "nsa": list(nsa), "pss": []}, "object": objref, "status": status,
        "reason": "", "evidence": {"token": "must-never-show"}, "reads": [],
        "findings": [{"controls": list(cis), "object": objref, "path": path, "observed": observed,
                      "expected": "something else", "remediation": "fix it"} for path, observed in findings],
    }


def write_run(folder, results, version=None, sums=True):
    folder.mkdir(parents=True)
    document = {"environment": {"cluster": "c1", "kubeproof version": version or kubeproof.__version__,
                                "started (UTC)": "2026-01-01T00:00:00+00:00"}, "results": results}
    (folder / "results.json").write_text(json.dumps(document))
    if sums:
        digest = hashlib.sha256((folder / "results.json").read_bytes()).hexdigest()
        (folder / "SHA256SUMS").write_text(f"{digest}  results.json\n")
    return folder


def compare(tmp_path, before, after):
    return diff.compare(diff.load_run(write_run(tmp_path / "a", before), "RUN_A"),
                        diff.load_run(write_run(tmp_path / "b", after), "RUN_B"))


DENY = "spec.policyTypes"


def test_identical_runs_are_not_worse_and_exit_0(tmp_path, capsys):
    runs = [record("test_default_deny"), record("test_default_deny", "failed", obj=("Namespace", None, "b"), findings=[(DENY, [])])]
    a, b = write_run(tmp_path / "a", runs), write_run(tmp_path / "b", runs)
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "NOT WORSE" in out and "0 new findings, 0 fixed" in out


def test_a_new_finding_is_worse_and_named_with_its_control_and_test(tmp_path, capsys):
    a = write_run(tmp_path / "a", [record("test_default_deny")])
    b = write_run(tmp_path / "b", [record("test_default_deny", "failed", findings=[(DENY, ["Ingress"])])])
    assert main(["diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "New findings (in b, not in a): 1" in out
    assert "Namespace/team-a: spec.policyTypes is ['Ingress']; expected something else" in out
    assert "CIS 5.3.2: proved -> failed (passed 1 -> 0, failed 0 -> 1) [worse]" in out
    assert "network_policy" in out and "[worse]" in out
    assert "must-never-show" not in out  # the evidence is never read out


def test_a_fixed_finding_and_an_improved_control_are_not_worse(tmp_path):
    c = compare(tmp_path, [record("test_default_deny", "failed", findings=[(DENY, [])])], [record("test_default_deny")])
    assert [f.text for f in c.fixed] == ["Namespace/team-a: spec.policyTypes is []; expected something else"]
    assert not c.new and not c.unconfirmed and not c.worse and c.exit_status == 0
    assert [(x.name, x.before, x.after, x.worse) for x in c.controls] == [("5.3.2", "failed", "proved", False)]
    assert [(p.name, p.worse) for p in c.practices] == [("network_policy", False)]


def test_findings_match_by_test_object_and_path_not_by_position_or_parameter_id(tmp_path):
    first = record("test_role", "failed", obj=("ClusterRole", None, "x"), findings=[("rules[0].verbs", ["*"])], param="p1")
    second = record("test_role", "failed", obj=("ClusterRole", None, "y"), findings=[("rules[1].verbs", ["*"])], param="p2")
    moved_x = record("test_role", "failed", obj=("ClusterRole", None, "x"), findings=[("rules[0].verbs", ["*", "get"])],
                     param="other-id")
    c = compare(tmp_path, [first, second], [second, moved_x])  # reordered, new parameter id, new observed value
    assert not c.new and not c.fixed and not c.controls and not c.worse


def test_a_control_proved_then_not_verified_is_worse_and_the_finding_not_confirmed_fixed(tmp_path):
    c = compare(tmp_path, [record("test_default_deny", "failed", findings=[(DENY, [])]), record("test_other", cis=("5.1.1",))],
                [record("test_default_deny", "not_verified"), record("test_other", "not_verified", cis=("5.1.1",))])
    assert not c.fixed and [f.why for f in c.unconfirmed] == ["the later run's result: not verified"]
    changed = {x.name: (x.before, x.after, x.worse) for x in c.controls}
    assert changed["5.1.1"] == ("proved", "not_verified", True)
    assert changed["5.3.2"] == ("failed", "not_verified", False)  # still not proven, but no longer failing
    assert c.worse and c.exit_status == 1


def test_a_control_no_longer_judged_is_not_covered_and_its_findings_are_not_fixed(tmp_path):
    kept = record("test_kept", cis=("1.2.1",), practice="control_plane")
    c = compare(tmp_path, [record("test_default_deny", "failed", findings=[(DENY, [])]), kept], [kept])
    assert [f.why for f in c.unconfirmed] == ["the later run did not run this test"]
    assert [(x.name, x.after) for x in c.controls] == [("5.3.2", "not_covered")]
    assert [(p.name, p.after) for p in c.practices] == [("network_policy", "not_covered")]
    proved_then_gone = compare(tmp_path / "2", [record("test_default_deny")], [kept])
    assert proved_then_gone.worse  # a proof that is no longer made is a change for the worse


def test_an_object_gone_from_a_test_that_ran_again_is_fixed(tmp_path):
    c = compare(tmp_path, [record("test_default_deny", "failed", obj=("Namespace", None, "old"), findings=[(DENY, [])])],
                [record("test_default_deny", obj=("Namespace", None, "new"))])
    assert len(c.fixed) == 1 and not c.unconfirmed


def test_nsa_and_pss_controls_are_compared_too(tmp_path):
    c = compare(tmp_path, [record("test_x", cis=(), nsa=("Network separation",))],
                [record("test_x", "failed", cis=(), nsa=("Network separation",), findings=[("spec", 1)])])
    assert [(x.framework, x.name, x.after) for x in c.controls] == [("nsa", "Network separation", "failed")]
    assert "NSA/CISA Network separation: proved -> failed" in diff.text(c)


def test_a_practice_whose_counts_moved_is_listed_though_its_state_held(tmp_path):
    c = compare(tmp_path, [record("test_default_deny")],
                [record("test_default_deny"), record("test_default_deny", obj=("Namespace", None, "b"))])
    assert [(p.name, p.before, p.after, p.worse, p.counts_text()) for p in c.practices] == [
        ("network_policy", "proved", "proved", False, "passed 1 -> 2")]
    assert not c.worse


def test_markdown_and_json_formats(tmp_path, capsys):
    a = write_run(tmp_path / "a", [record("test_default_deny")])
    b = write_run(tmp_path / "b", [record("test_default_deny", "failed", obj=("Namespace", None, "a`|b"), findings=[(DENY, [])])])
    assert main(["diff", str(a), str(b), "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("## kubeproof diff: WORSE") and "### New findings" in out and "``Namespace/a`|b" in out
    assert main(["diff", str(a), str(b), "--format=json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["worse"] is True and document["counts"]["new findings"] == 1
    assert document["new_findings"][0]["object"] == {"kind": "Namespace", "namespace": None, "name": "a`|b"}
    assert "must-never-show" not in json.dumps(document)


def test_the_first_page_section_caps_its_lists_and_escapes_names(tmp_path):
    after = [record("test_default_deny", "failed", obj=("Namespace", None, f"<b>{n}</b>"), findings=[(DENY, [])])
             for n in range(30)]
    c = compare(tmp_path, [record("test_default_deny", obj=("Namespace", None, "<b>0</b>"))], after)
    page = diff.since_html(c, limit=5)
    assert page.startswith('<section class="kubeproof-since" data-worse="true"><h2>Since a</h2>')
    assert "New findings (in b, not in a): 30" in page and "... and 25 more" in page and "<b>1</b>" not in page
    assert diff.summary_line(c).startswith("Since `a`: worse; 30 new findings")


@pytest.mark.parametrize(("setup", "message"), [
    (lambda p: None, "RUN_B {p}: no such folder"),
    (lambda p: p.write_text("x"), "RUN_B {p}: not a folder"),
    (lambda p: p.mkdir(), "RUN_B {p}: no results.json, so not a kubeproof run folder"),
    (lambda p: write_run(p, [], sums=False), "RUN_B {p}: no SHA256SUMS"),
    (lambda p: (write_run(p, []), (p / "results.json").write_text("{}")), "does not match its SHA256SUMS"),
    (lambda p: write_run(p, [], version="7.0.0"), "written by kubeproof 7.0.0; this kubeproof"),
    (lambda p: write_run(p, [{"test": "t", "status": "great", "controls": {}, "findings": []}]),
     "result 1 has status 'great'"),
    (lambda p: write_run(p, [{"test": "t", "status": "passed", "findings": []}]), "result 1 has no controls table"),
    (lambda p: (write_run(p, []), (p / "SHA256SUMS").write_bytes(b"\xff\xfe\x00")), "its SHA256SUMS is not text"),
    (lambda p: write_run(p, [{**record("t", "failed", findings=[(DENY, [])]), "findings": [{"path": DENY}]}]),
     "has a finding without what was observed and expected"),
])
def test_bad_input_exits_2_naming_the_argument(tmp_path, capsys, setup, message):
    good, bad = write_run(tmp_path / "a", [record("test_default_deny")]), tmp_path / "b"
    setup(bad)
    assert main(["diff", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message.format(p=bad) in captured.err


def test_a_results_json_given_instead_of_its_folder_says_so(tmp_path, capsys):
    good = write_run(tmp_path / "a", [])
    assert main(["diff", str(good / "results.json"), str(good)]) == 2
    err = capsys.readouterr().err
    assert "RUN_A" in err and "not a folder (give the run folder that holds it)" in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["diff", "only-one"])
    assert stopped.value.code == 2 and "RUN_B" in capsys.readouterr().err


def test_a_finding_about_no_object_is_fixed_only_when_every_result_of_its_test_reached_a_verdict(tmp_path):
    # API server settings are results about no object: one parameter not verified in the later run
    # leaves the earlier finding unconfirmed, whichever parameter came last.
    flag = "--anonymous-auth"
    before = [record("test_api_server_setting", "failed", obj=None, cis=("1.2.1",), param="1.2.1",
                     findings=[(flag, "true")])]
    after = [record("test_api_server_setting", "not_verified", obj=None, cis=("1.2.1",), param="1.2.1"),
             record("test_api_server_setting", "passed", obj=None, cis=("1.2.2",), param="1.2.2")]
    c = compare(tmp_path, before, after)
    assert not c.fixed and [u.why for u in c.unconfirmed] == ["the later run's result: not verified"]
    c = compare(tmp_path / "again", before, [{**after[0], "status": "passed"}, after[1]])
    assert len(c.fixed) == 1 and not c.unconfirmed
