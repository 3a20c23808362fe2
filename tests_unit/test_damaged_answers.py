"""Answers damaged on the way are no answers: a body that declares JSON and is not (cut short, bytes
flipped) is Unreachable, whatever its status and headers say; a refusal of the SelfSubjectReview is
reported as an unknown identity, never a crash. Found by fault injection (tests_e2e/test_fault_injection.py)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubeproof.backends import Answer
from kubeproof.backends.http import KubeHttp, Unreachable
from kubeproof.session import Audit

STATUS_401 = b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}'
ANSWERS = {
    "/cut": (200, "application/json", b'{"kind":"Namespace","metadata":{"name":"de'),
    "/flipped": (401, "application/json", b"\xfb" + STATUS_401[1:]),
    "/whole": (401, "application/json", STATUS_401),
    "/text": (404, "text/plain; charset=utf-8", b"404 page not found"),
}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        status, content_type, body = ANSWERS[self.path]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Warning", '299 - "a warning that must not count as evidence"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield KubeHttp(f"http://127.0.0.1:{httpd.server_address[1]}", None, None, None)
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path", ["/cut", "/flipped"])
def test_a_body_that_is_not_the_json_it_declares_is_no_answer(server, path):
    with pytest.raises(Unreachable, match="not the JSON it declares"):
        server.request("GET", path)


def test_whole_json_and_plain_text_are_answers(server):
    whole = server.request("GET", "/whole")
    assert whole.status == 401 and whole.body["reason"] == "Unauthorized" and whole.warnings
    text = server.request("GET", "/text")
    assert text.status == 404 and text.body is None and text.message == "404 page not found"


class _Backend:
    def __init__(self, review: Answer):
        self.review = review

    def request(self, method, path, **kwargs):
        if path.endswith("selfsubjectreviews"):
            return self.review
        return Answer(method, path, 200, {"metadata": {"uid": "u-1"}})


@pytest.mark.parametrize("status,body", [
    (401, {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401}),
    (404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}),
    (201, {"status": "not an object"}),
    (201, None),
])
def test_a_refused_or_malformed_self_review_leaves_the_identity_unknown(status, body):
    audit = Audit("c", _Backend(Answer("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", status, body)),
                  baseline=None, snapshot=None, server_version={})
    audit.describe_identity()
    assert audit.identity == f"unknown (SelfSubjectReview answered HTTP {status})"
    assert audit.fingerprint == "kube-system uid u-1"


def test_a_self_review_names_the_identity():
    body = {"status": {"userInfo": {"username": "auditor", "groups": ["team", 3]}}}
    audit = Audit("c", _Backend(Answer("POST", "/x/selfsubjectreviews", 201, body)), None, None, {})
    audit.describe_identity()
    assert audit.identity == "auditor (groups: team)"
