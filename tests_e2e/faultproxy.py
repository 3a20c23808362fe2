"""A loopback HTTP proxy in front of an embedded API server that injects one fault per request pattern.

The suite talks plain HTTP to the proxy with a dummy bearer token; the proxy forwards to the real API
server over TLS with the embedded cluster's admin client certificate. A request without the token is
forwarded without any client credentials, so kubeproof's unauthenticated probes stay anonymous.
Status, headers (admission `Warning`s included) and bodies pass through unchanged unless a rule says
otherwise; upstream bodies are read whole (chunked or not) and sent on with a Content-Length.

Faults (one per rule): an API-server style Status answer (401, 403, 404, 429, 500), a hang past the
client's timeout that ends with the connection closed unanswered, a body cut in half (with the full
Content-Length, so the client sees the connection drop mid-body; or unframed, ended by closing the
connection, so the client cannot tell), a JSON body with flipped bytes, and 410 Gone on a list's
continue token. The proxy may also lower the page size of LIST requests (`page_limit`): the server
may always return fewer items than asked, so this is legitimate and makes small clusters page."""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import urllib3
import yaml

TOKEN = "kubeproof-fault-proxy"
STATUS_FAULTS = {
    "401": ("Unauthorized", "Unauthorized"),
    "403": ("Forbidden", "forbidden: the request was refused (kubeproof fault injection)"),
    "404": ("NotFound", "the server could not find the requested resource"),
    "429": ("TooManyRequests", "too many requests, please try again later"),
    "500": ("InternalError", "Internal error occurred: the server failed to answer (kubeproof fault injection)"),
}
FAULTS = (*STATUS_FAULTS, "hang", "truncate", "truncate-unframed", "corrupt", "gone")
GONE_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)
# Hop-by-hop headers and those the proxy sets itself.
_NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "authorization",
                  "accept-encoding", "proxy-authorization", "te", "trailer", "upgrade"}


@dataclass
class Rule:
    """One fault for the requests that match: method, a regex the whole path must match, and optionally
    who asks (authenticated / anonymous), only continue pages, a query or body substring."""

    fault: str
    method: str
    path: str
    auth: str = "any"  # "any", "authenticated", "anonymous"
    continue_only: bool = False
    query_contains: str | None = None
    body_contains: str | None = None
    body_lacks: str | None = None
    hits: int = 0

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; one of {', '.join(FAULTS)}")
        self._path = re.compile(self.path)

    def matches(self, method: str, path: str, query: dict, authenticated: bool, body: bytes) -> bool:
        if method != self.method or not self._path.fullmatch(path):
            return False
        if self.auth != "any" and (self.auth == "authenticated") != authenticated:
            return False
        if self.continue_only and not query.get("continue"):
            return False
        if self.query_contains and self.query_contains not in urlencode(query):
            return False
        if self.body_contains and self.body_contains.encode() not in body:
            return False
        return not (self.body_lacks and self.body_lacks.encode() in body)


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    authenticated: bool
    status: int | None  # None: no answer was sent (hang)
    fault: str | None
    body: bytes = b""


def status_body(code: int, reason: str, message: str, continue_token: str | None = None) -> bytes:
    metadata = {"continue": continue_token} if continue_token else {}
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": metadata, "status": "Failure",
                       "message": message, "reason": reason, "code": code}).encode()


def corrupt(body: bytes) -> bytes:
    """Flip the high bit of the first and the middle byte: same length, never valid JSON (the first
    byte is no longer '{'), and most of the text, messages included, still readable."""
    if not body:
        return b"\xfb"
    damaged = bytearray(body)
    damaged[0] ^= 0x80
    damaged[len(damaged) // 2] ^= 0x80
    return bytes(damaged)


class FaultProxy:
    def __init__(self, upstream: str, ca: str | Path, client_cert: str | Path, client_key: str | Path,
                 page_limit: int | None = None, hang_seconds: float = 5.0):
        self.upstream = upstream.rstrip("/")
        self.page_limit = page_limit
        self.hang_seconds = hang_seconds
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        common = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": str(ca), "retries": False, "maxsize": 8,
                  "timeout": urllib3.Timeout(connect=5.0, read=120.0)}
        self._admin = urllib3.PoolManager(cert_file=str(client_cert), key_file=str(client_key), **common)
        self._anonymous = urllib3.PoolManager(**common)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._admin.clear()
        self._anonymous.clear()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def write_kubeconfig(self, path: str | Path, context: str = "faulty") -> Path:
        """A kubeconfig whose server is this proxy and whose user holds the proxy's dummy token."""
        path = Path(path)
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": "fault-proxy", "user": {"token": TOKEN}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": "fault-proxy"}}],
            "current-context": context,
        }))
        path.chmod(0o600)
        return path

    # -- rules ------------------------------------------------------------------------------------
    def inject(self, *rules: Rule) -> None:
        with self._lock:
            self.rules = list(rules)
            self.seen = []

    def clear(self) -> None:
        self.inject()

    def _match(self, method, path, query, authenticated, body) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, query, authenticated, body):
                    rule.hits += 1
                    return rule
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    # -- forwarding -------------------------------------------------------------------------------
    def forward(self, method: str, path: str, query: dict, headers: dict, body: bytes, authenticated: bool):
        if self.page_limit and method == "GET" and "limit" in query:
            query = dict(query, limit=str(min(int(query["limit"]), self.page_limit)))
        url = self.upstream + path + (("?" + urlencode(query)) if query else "")
        pool = self._admin if authenticated else self._anonymous
        return pool.request(method, url, body=body or None, headers=headers, preload_content=True,
                            decode_content=False, redirect=False)


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - the signature is BaseHTTPRequestHandler's
        pass

    def do_GET(self):
        self._handle()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_GET

    def _handle(self) -> None:
        proxy = self.owner
        split = urlsplit(self.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        authorization = self.headers.get("Authorization")
        if authorization not in (None, f"Bearer {TOKEN}"):
            # Foreign credentials are never passed on, nor silently dropped.
            self._answer(401, [("Content-Type", "application/json")],
                         status_body(401, "Unauthorized", "the fault proxy accepts only its own token"))
            proxy._record(Seen(self.command, path, query, False, 401, None))
            return
        authenticated = authorization is not None
        rule = proxy._match(self.command, path, query, authenticated, body)
        fault = rule.fault if rule else None
        seen = Seen(self.command, path, query, authenticated, None, fault, body)
        proxy._record(seen)
        if fault in STATUS_FAULTS or fault == "gone":
            code = 410 if fault == "gone" else int(fault)
            reason, message = ("Expired", GONE_MESSAGE) if fault == "gone" else STATUS_FAULTS[fault]
            token = "kubeproof-fault-inconsistent-continue" if fault == "gone" else None
            headers = [("Content-Type", "application/json"), ("Cache-Control", "no-cache, private")]
            if fault == "429":
                headers.append(("Retry-After", "1"))
            seen.status = code
            self._answer(code, headers, status_body(code, reason, message, token))
            return
        if fault == "hang":
            time.sleep(proxy.hang_seconds)
            self.close_connection = True
            return
        forwarded = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
        try:
            response = proxy.forward(self.command, path, query, forwarded, body, authenticated)
        except urllib3.exceptions.HTTPError as error:
            seen.status = 502
            self._answer(502, [("Content-Type", "text/plain")], f"fault proxy: upstream failed: {error}".encode())
            return
        seen.status = response.status
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _NOT_FORWARDED]
        payload = response.data or b""
        if fault == "corrupt":
            payload = corrupt(payload)
        if fault == "truncate":
            # The promised length, half the bytes, then the connection drops.
            self._answer(response.status, headers, payload[: len(payload) // 2], length=len(payload), close=True)
        elif fault == "truncate-unframed":
            # No length: the body ends where the connection closes, so the client cannot tell it was cut.
            self._answer(response.status, headers, payload[: len(payload) // 2], length=None, close=True)
        else:
            self._answer(response.status, headers, payload)

    def _answer(self, status: int, headers, body: bytes, length: int | None | bool = True, close: bool = False) -> None:
        try:
            self.send_response_only(status)
            for key, value in headers:
                self.send_header(key, value)
            if length is True:
                self.send_header("Content-Length", str(len(body)))
            elif length is not None:
                self.send_header("Content-Length", str(length))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
