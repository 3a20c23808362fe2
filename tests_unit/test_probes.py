"""Unit tests for kubeproof.probes: asking ahead never changes an answer, only when it is asked."""

from __future__ import annotations

import threading

import pytest

from kubeproof.backends import Answer, Unreachable
from kubeproof.probes import Probes
from kubeproof.results import NotVerified


class CountingBackend:
    """Answers every dry-run with 201 and counts them; fails from the `fail_from`th on."""

    def __init__(self, fail_from: int | None = None):
        self.asked: list[str] = []
        self.fail_from = fail_from
        self.lock = threading.Lock()

    def dry_run(self, method, path, body, content_type="application/json"):
        with self.lock:
            self.asked.append(f"{method} {path}")
            number = len(self.asked)
        if self.fail_from is not None and number >= self.fail_from:
            raise Unreachable("https://127.0.0.1:1", "connection refused")
        return Answer(method, path, 201, {"kind": "Pod"})


def test_answers_asked_ahead_are_the_ones_the_tests_get_and_nothing_is_asked_twice():
    backend = CountingBackend()
    probes = Probes(backend)
    names = [f"team-{i}" for i in range(20)]
    assert probes.ask_ahead([(probes.privileged_pod, n) for n in names] + [(probes.pod_security_is_live, n) for n in names]) == 40
    asked = len(backend.asked)
    answers = [probes.privileged_pod(n) for n in names]
    assert len(backend.asked) == asked == 40
    assert all(a.status == 201 and a.path == f"/api/v1/namespaces/{n}/pods" for a, n in zip(answers, names, strict=True))


def test_a_failure_stops_asking_ahead_and_each_test_meets_it_itself():
    backend = CountingBackend(fail_from=3)
    probes = Probes(backend)
    answered = probes.ask_ahead([(probes.privileged_pod, f"team-{i}") for i in range(200)], workers=2)
    assert answered == 2 and len(backend.asked) < 10
    with pytest.raises(Unreachable):
        probes.privileged_pod("team-150")


def test_nothing_is_asked_ahead_when_dry_runs_are_off():
    backend = CountingBackend()
    probes = Probes(backend, dry_runs=False)
    assert probes.ask_ahead([(probes.privileged_pod, "team-1")]) == 0 and backend.asked == []
    with pytest.raises(NotVerified, match="--no-dry-run"):
        probes.privileged_pod("team-1")


def test_what_was_asked_ahead_is_recorded_only_for_the_test_that_asks_it():
    probes = Probes(CountingBackend())
    probes.ask_ahead([(probes.privileged_pod, "team-1"), (probes.pod_security_is_live, "team-1")])
    assert probes.touched == set()
    probes.privileged_pod("team-1")
    assert probes.touched == {"privileged-pod"}
