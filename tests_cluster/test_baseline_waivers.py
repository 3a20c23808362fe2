"""Every waiver in the baseline is current and still covers something. These tests run last: they
judge what the rest of the suite matched."""

import pytest

from kubeproof.checks import baseline_waivers

pytestmark = [pytest.mark.baseline_waivers]


def test_waiver_is_current_and_in_use(waiver, governance, verdict):
    verdict.observe(owner=waiver.owner, expires=waiver.expires.isoformat(), justification=waiver.justification,
                    selector=f"{waiver.kind}/{waiver.namespace}/{waiver.name}", covers_not_verified=waiver.not_verified)
    verdict(baseline_waivers.expired_waiver_findings(waiver, governance.today))
    if waiver in governance.stale():
        verdict.exempt(f"stale: waiver at line {waiver.line} matched no result in this run; remove it or fix its selector")
