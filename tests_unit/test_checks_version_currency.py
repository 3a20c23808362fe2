"""Unit tests for kubeproof.checks.version_currency and the support table shipped in kubeproof/data: end of
life against an injected date (past fails, within 60 days warns, unknown is not verified), version
parsing, and kubelet skew (up to three minors older, never newer)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, never_passes, outcome

from kubeproof import release_support
from kubeproof.checks import version_currency
from kubeproof.results import NotVerified, ObjectRef

DOCUMENT = release_support.load()
TABLE = version_currency.parse_table(DOCUMENT)
APISERVER = ObjectRef("Component", "kube-apiserver")
NODE = ObjectRef("Node", "worker-1")


def on(day: str) -> datetime.date:
    return datetime.date.fromisoformat(day)


# -- the shipped table -----------------------------------------------------------------------------
def test_table_covers_1_20_to_1_38_with_its_source_and_date():
    assert {f"1.{m}" for m in range(20, 39)} <= set(TABLE)
    assert DOCUMENT["source"] and datetime.date.fromisoformat(DOCUMENT["as_of"])
    for minor, support in TABLE.items():
        assert support.released is not None, minor
        if support.end_of_life is not None:
            assert support.released < support.end_of_life, minor
    released = [TABLE[f"1.{m}"].end_of_life for m in range(20, 38)]
    assert None not in released and released == sorted(released)  # later minors end later


def test_table_is_packaged_with_kubeproof():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "data/*" in pyproject["tool"]["setuptools"]["package-data"]["kubeproof"]


# -- end of life -----------------------------------------------------------------------------------
def test_supported_version_passes():
    status = version_currency.currency("1.37", TABLE, on("2026-11-25"))
    assert status.state == "supported" and status.days_left == 337
    assert version_currency.currency_findings(APISERVER, "/version", "v1.37.2", status) == []
    assert version_currency.warning_text("kube-apiserver", status) is None


def test_version_past_end_of_life_fails():
    status = version_currency.currency("1.33", TABLE, on("2026-11-25"))
    [finding] = version_currency.currency_findings(APISERVER, "/version", "v1.33.4", status)
    assert status.state == "ended" and finding.object == APISERVER and finding.path == "/version"
    assert finding.observed == "v1.33.4 (Kubernetes 1.33, end of life 2026-06-28, 150 days ago)"


@pytest.mark.parametrize("day, state", [("2026-12-29", "supported"), ("2026-12-30", "ending"),
                                        ("2027-02-28", "ending"), ("2027-03-01", "ended")])
def test_sixty_days_before_end_of_life_warns(day, state):
    # 1.35 ends on 2027-02-28: the warning starts 60 days before, the failure the day after.
    status = version_currency.currency("1.35", TABLE, on(day))
    assert status.state == state
    assert (version_currency.warning_text("kube-apiserver", status) is not None) == (state == "ending")
    assert (version_currency.currency_findings(APISERVER, "/version", "v1.35.1", status) != []) == (state == "ended")


def test_unknown_minor_or_unpublished_end_of_life_is_not_verified():
    with pytest.raises(NotVerified, match="not in kubeproof's support table"):
        version_currency.currency("1.99", TABLE, on("2026-11-25"))
    with pytest.raises(NotVerified, match="no end-of-life date"):
        version_currency.currency("1.38", TABLE, on("2026-11-25"))


# -- parsing versions ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, minor", [("v1.37.2", "1.37"), ("v1.30.4-eks-1a2b3c4", "1.30"),
                                         ("1.29.3+k3s1", "1.29"), ("v1.28.15-gke.1020000", "1.28"), ("1.37", "1.37")])
def test_minor_of(text, minor):
    assert version_currency.minor_of(text) == minor


@pytest.mark.parametrize("text", ["", "latest", "v1", "1.x.3", None, 1.37])
def test_minor_of_nonsense_is_not_verified(text):
    with pytest.raises(NotVerified):
        version_currency.minor_of(text)


def test_server_minor_handles_managed_suffixes_and_falls_back_to_git_version():
    assert version_currency.server_minor({"major": "1", "minor": "30+", "gitVersion": "v1.30.4-eks-1"}) == "1.30"
    assert version_currency.server_minor({"gitVersion": "v1.37.2"}) == "1.37"
    with pytest.raises(NotVerified):
        version_currency.server_minor({"major": "", "minor": ""})


def test_kubelet_version_is_read_from_node_info():
    node = {"metadata": {"name": "worker-1"}, "status": {"nodeInfo": {"kubeletVersion": "v1.36.1"}}}
    assert version_currency.kubelet_version(node) == "v1.36.1"
    for broken in ({"metadata": {"name": "w"}}, {"status": {"nodeInfo": {"kubeletVersion": ""}}}, {"status": []}, []):
        with pytest.raises(NotVerified):
            version_currency.kubelet_version(broken)


# -- skew ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kubelet, apiserver, passes", [
    ("1.37", "1.37", True), ("1.34", "1.37", True), ("1.33", "1.37", False), ("1.38", "1.37", False),
    ("2.0", "1.37", False),
])
def test_kubelet_skew(kubelet, apiserver, passes):
    found = version_currency.skew_findings(NODE, kubelet, apiserver)
    assert (found == []) == passes
    if not passes:
        assert found[0].object == NODE and found[0].path == "status.nodeInfo.kubeletVersion"


# -- properties ------------------------------------------------------------------------------------
DAYS = st.dates(min_value=datetime.date(2019, 1, 1), max_value=datetime.date(2030, 12, 31))
KNOWN = sorted(m for m, s in TABLE.items() if s.end_of_life is not None)


@PROPERTY
@given(minor=st.sampled_from(KNOWN), today=DAYS)
def test_state_follows_the_dates(minor, today):
    status = version_currency.currency(minor, TABLE, today)
    eol = TABLE[minor].end_of_life
    assert status.days_left == (eol - today).days
    assert (status.state == "ended") == (today > eol)
    assert (status.state == "ending") == (eol - datetime.timedelta(days=version_currency.WARN_DAYS) <= today <= eol)
    findings = version_currency.currency_findings(APISERVER, "/version", f"v{minor}.0", status)
    if today > eol:
        never_passes(version_currency.currency_findings, APISERVER, "/version", f"v{minor}.0", status)
    else:
        assert findings == []


@PROPERTY
@given(apiserver=st.integers(min_value=20, max_value=40), lag=st.integers(min_value=-5, max_value=8))
def test_skew_finding_exactly_outside_the_window(apiserver, lag):
    found = version_currency.skew_findings(NODE, f"1.{apiserver - lag}", f"1.{apiserver}") if apiserver - lag >= 0 else None
    if found is not None:
        assert (found == []) == (0 <= lag <= version_currency.MAX_KUBELET_LAG)


@PROPERTY
@given(value=JSON)
def test_malformed_input_only_raises_not_verified(value):
    outcome(lambda v: [version_currency.minor_of(v)] and [], value)
    outcome(lambda v: [version_currency.server_minor(v)] and [], value)
    outcome(lambda v: [version_currency.kubelet_version(v)] and [], value)
    outcome(lambda v: [version_currency.parse_table(v)] and [], value)


@PROPERTY
@given(document=st.fixed_dictionaries({"minors": st.dictionaries(st.sampled_from(["1.30", "x", "1.31"]), JSON)}))
def test_malformed_table_only_raises_not_verified(document):
    outcome(lambda d: [version_currency.parse_table(d)] and [], document)
