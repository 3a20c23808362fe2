"""Waivers are governed too: one past its expiry date covers nothing and fails the run until it is
renewed with a fresh justification or removed."""

from __future__ import annotations

import datetime

from kubeproof.results import Finding, ObjectRef

PRACTICE = "Baseline waivers"

# A waiver names a control of its own; the test of tests_cluster/test_baseline_waivers.py carries no
# CIS id (tests_unit/test_markers.py holds it to that).
CIS_BY_TEST: dict[str, tuple[str, ...]] = {"test_waiver_is_current_and_in_use": ()}

_REMEDIATE = (
    "Fix the findings this waiver covered and delete it, or renew it with a new expiry date and a "
    "justification someone has reviewed again."
)


def expired_waiver_findings(waiver, today: datetime.date) -> list[Finding]:
    if not waiver.expired(today):
        return []
    return [Finding((waiver.control,), ObjectRef("Waiver", f"line {waiver.line}"), "expires", waiver.expires.isoformat(),
                    f"a date on or after {today.isoformat()}", _REMEDIATE)]
