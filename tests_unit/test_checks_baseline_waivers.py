"""Unit tests for kubeproof.checks.baseline_waivers: a waiver past its expiry date is a finding of its
own control, pointing at the baseline line that holds it; until then it is no finding."""

from __future__ import annotations

import datetime

import pytest

from kubeproof.baseline import Waiver
from kubeproof.checks import baseline_waivers
from kubeproof.results import ObjectRef

EXPIRES = datetime.date(2026, 6, 30)
WAIVER = Waiver("5.1.3", "vendor chart needs it", "platform-team", EXPIRES, line=14)


@pytest.mark.parametrize("today", [EXPIRES - datetime.timedelta(days=30), EXPIRES])
def test_a_current_waiver_is_no_finding(today):
    assert baseline_waivers.expired_waiver_findings(WAIVER, today) == []


def test_an_expired_waiver_is_a_finding_of_its_control():
    today = EXPIRES + datetime.timedelta(days=1)
    [finding] = baseline_waivers.expired_waiver_findings(WAIVER, today)
    assert finding.controls == ("5.1.3",)
    assert finding.object == ObjectRef("Waiver", "line 14")
    assert finding.observed == "2026-06-30"
    assert finding.expected == "a date on or after 2026-07-01"
