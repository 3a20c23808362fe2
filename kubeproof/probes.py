"""Live questions put to the audited cluster: each is read-only (GET, server-side dry-run) and asked
once per session, so several tests can use the same answer as evidence."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from kubeproof.backends import Answer, Backend
from kubeproof.checks import pod_security_admission as psa
from kubeproof.results import NotVerified

INVALID_LEVEL = "kubeproof-not-a-level"


class Probes:
    def __init__(self, backend: Backend, dry_runs: bool = True):
        self.backend = backend
        self.dry_runs = dry_runs
        self._answers: dict[tuple, Answer] = {}
        self.touched: set[str] = set()  # which live questions the current test asked; reset per test
        self._asking_ahead = False

    def _dry_run(self, key: tuple, method: str, path: str, body: dict, content_type: str = "application/json") -> Answer:
        if not self.dry_runs:
            # A read-only identity may not create pods or patch namespaces, even as a dry-run.
            raise NotVerified("server-side dry-runs are turned off (--no-dry-run), so admission was not asked")
        return self._ask(key, lambda: self.backend.dry_run(method, path, body, content_type=content_type))

    def _ask(self, key: tuple, ask) -> Answer:
        if not self._asking_ahead:  # a test depends on what it asks, not on what was asked for it
            self.touched.add(key[0])
        if key not in self._answers:
            self._answers[key] = ask()
        return self._answers[key]

    def ask_ahead(self, questions, workers: int = 4) -> int:
        """Asks `questions` ((probe method, *arguments), ...) a few at a time, so the tests that ask
        them one by one find the answers waiting. A question that fails stays unasked, and so do the
        rest: each test then asks its own, and reports what went wrong itself. Returns how many
        were answered."""
        if not self.dry_runs:
            return 0
        stopped = threading.Event()

        def ask(question) -> bool:
            if stopped.is_set():
                return False
            method, *arguments = question
            try:
                method(*arguments)
                return True
            except Exception:  # noqa: BLE001 - the test asking it again gets the same failure and reports it
                stopped.set()
                return False

        self._asking_ahead = True
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return sum(pool.map(ask, questions))
        finally:
            self._asking_ahead = False

    def release(self) -> None:
        """Forgets the answers once the tests have run (each test kept its own evidence of them)."""
        self._answers.clear()

    def anonymous(self, path: str) -> Answer:
        return self._ask(("anonymous", path), lambda: self.backend.anonymous(path))

    def privileged_pod(self, namespace: str) -> Answer:
        """A dry-run create of a privileged pod: the admission chain must refuse it."""
        return self._dry_run(("privileged-pod", namespace), "POST", f"/api/v1/namespaces/{namespace}/pods",
                             psa.privileged_probe_pod(namespace))

    def pod_security_label(self, namespace: str, patch: dict) -> Answer:
        """A dry-run of the namespace's enforce label: PodSecurity warns about existing pods."""
        return self._dry_run(("label", namespace, repr(patch)), "PATCH", f"/api/v1/namespaces/{namespace}", patch,
                             content_type="application/merge-patch+json")

    def pod_security_is_live(self, namespace: str) -> Answer:
        """A dry-run of an invalid enforce label: only a running PodSecurity admission refuses it."""
        patch = {"metadata": {"labels": {psa.ENFORCE: INVALID_LEVEL}}}
        return self._dry_run(("live", namespace), "PATCH", f"/api/v1/namespaces/{namespace}", patch,
                             content_type="application/merge-patch+json")

    def access_review(self, spec: dict) -> Answer:
        """A SubjectAccessReview: the real authorizer's answer to "may this subject do this?".
        Reviews are evaluated, never stored, and allowed on audited clusters."""
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        return self._ask(("access-review", json.dumps(spec, sort_keys=True)), lambda: self.backend.request(
            "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body))
