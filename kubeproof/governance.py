"""Waivers and the ratchet: how a finding the team has decided about is reported.

A waived finding stays in the report, marked waived with its waiver; an expired waiver no longer
covers anything and is itself a failure; a waiver covers a "not verified" result only when it says
so. With --fail-on=new, findings recorded as accepted are reported as accepted, not failed."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from kubeproof.baseline import Waiver
from kubeproof.ratchet import fingerprint


@dataclass
class Judgement:
    status: str
    note: str = ""


@dataclass
class Governance:
    waivers: tuple[Waiver, ...]
    today: datetime.date
    accepted: dict[str, dict] | None = None  # None: every finding fails (--fail-on=any)
    matched: dict[int, int] = field(default_factory=dict)  # waiver index -> findings it matched
    seen: set[str] = field(default_factory=set)  # fingerprints of every finding this run

    def _covering(self, controls, obj, not_verified: bool = False) -> list[tuple[int, Waiver]]:
        found = []
        for index, waiver in enumerate(self.waivers):
            if waiver.covers(controls, obj) and (waiver.not_verified or not not_verified):
                self.matched[index] = self.matched.get(index, 0) + 1
                found.append((index, waiver))
        return found

    def judge(self, status: str, test: str, controls: list[str], subject: dict | None, findings: list[dict]) -> Judgement:
        if status == "failed":
            return self._judge_findings(test, findings)
        if status == "not_verified":
            return self._judge_not_verified(controls, subject)
        return Judgement(status)

    def _judge_findings(self, test: str, findings: list[dict]) -> Judgement:
        waived, accepted, notes, open_findings = [], 0, [], 0
        for finding in findings:
            mark = fingerprint(test, finding)
            self.seen.add(mark)
            covering = self._covering(finding["controls"], finding["object"])
            current = [w for _, w in covering if not w.expired(self.today)]
            if current:
                waived.append(current[0])
                continue
            notes.extend(f"waiver {w.label} expired on {w.expires}" for _, w in covering)
            if self.accepted is not None and mark in self.accepted:
                accepted += 1
                continue
            open_findings += 1
        if open_findings:
            return Judgement("failed", "; ".join(notes))
        if waived and not accepted:
            return Judgement("waived", "waived by " + "; ".join(sorted({
                f"{w.label}: {w.justification} (expires {w.expires})" for w in waived})))
        return Judgement("accepted", f"{accepted} finding(s) recorded as accepted (--fail-on=new)"
                         + (f"; {len(waived)} waived" if waived else ""))

    def _judge_not_verified(self, controls, subject) -> Judgement:
        covering = [w for _, w in self._covering(controls, subject, not_verified=True) if not w.expired(self.today)]
        if covering:
            waiver = covering[0]
            return Judgement("waived", f"waived although NOT VERIFIED, as waiver {waiver.label} says "
                             f"(not_verified: true): {waiver.justification}")
        silent = [w for w in self.waivers if w.covers(controls, subject) and not w.not_verified]
        if silent:
            return Judgement("not_verified", f"waiver {silent[0].label} does not cover results that could not be "
                             "verified (it would need not_verified: true)")
        return Judgement("not_verified")

    def stale(self) -> list[Waiver]:
        return [w for index, w in enumerate(self.waivers) if not self.matched.get(index)]

    def fixed(self, tests_run: set[str]) -> list[dict]:
        if self.accepted is None:
            return []
        return [entry for mark, entry in self.accepted.items() if mark not in self.seen and entry.get("test") in tests_run]
