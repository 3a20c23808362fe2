"""Waivers are governed too: one past its expiry date covers nothing and fails the run until it is
renewed with a fresh justification or removed."""

from __future__ import annotations

import datetime

from kubeproof.results import Finding, ObjectRef

_REMEDIATE = (
    "Fix the findings this waiver covered and delete it, or renew it with a new expiry date and a "
    "justification someone has reviewed again."
)


def expired_waiver_findings(waiver, today: datetime.date) -> list[Finding]:
    if not waiver.expired(today):
        return []
    return [Finding((waiver.control,), ObjectRef("Waiver", f"line {waiver.line}"), "expires", waiver.expires.isoformat(),
                    f"a date on or after {today.isoformat()}", _REMEDIATE)]
