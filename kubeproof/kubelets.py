"""What each node's kubelet says about itself, asked the way the API server's own probes are: the
running configuration (/configz), the command line (/flagz), and three live probes (an
unauthenticated GET of /pods, the same GET by an identity with no rights on nodes, and the read-only
port). Read-only: GETs only.

The kubelet is read directly on its port with the suite's own credentials, which need only `get` on
`nodes/configz` (the kubelet's fine-grained authorization). Credentials are sent only to a kubelet
whose serving certificate the cluster's CA verifies; one that the CA does not verify is asked only
without credentials (nothing to leak), which a kubelet that serves anonymous requests answers. Through
the API server's node proxy only when the identity already holds `nodes/proxy`, and the evidence then
says that it holds a privilege CIS itself flags (5.1.x). Every request has a timeout; nodes are asked
concurrently, a bounded number at once; a node that does not complete a TLS handshake in time is not
asked again, so dead nodes cost one timeout each, all at once."""

from __future__ import annotations

import errno
import json
import os
import selectors
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import urllib3

from kubeproof.backends.http import CredentialsError, Unreachable
from kubeproof.results import NotVerified

KUBELET_PORT = 10250  # kubeadm's, kind's and the managed clouds' default
READ_ONLY_PORT = 10255  # the kubelet's default when readOnlyPort is set without a value
WORKERS = 64
# /flagz in its structured form (the plain-text form is for people).
FLAGZ = "application/json;as=Flagz;v=v1beta1;g=config.k8s.io"


@dataclass
class Endpoint:
    node: str
    address: str | None
    port: int | None
    problem: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if self.address and ":" in self.address else self.address
        return f"https://{host}:{self.port}"


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def endpoint_of(node: dict) -> Endpoint:
    """The kubelet's address (the node's InternalIP, else ExternalIP, else Hostname) and port, as
    the node reports them in its status. Any other shape is a problem, never a guess."""
    node = _mapping(node)
    name = str(_mapping(node.get("metadata")).get("name") or "?")
    status = _mapping(node.get("status"))
    addresses = status.get("addresses") if isinstance(status.get("addresses"), list) else []
    by_type: dict[str, str] = {}
    for entry in addresses:
        if isinstance(entry, dict) and isinstance(entry.get("address"), str) and entry["address"]:
            by_type.setdefault(str(entry.get("type")), entry["address"])
    address = by_type.get("InternalIP") or by_type.get("ExternalIP") or by_type.get("Hostname")
    port = _mapping(_mapping(status.get("daemonEndpoints")).get("kubeletEndpoint")).get("Port")
    if name == "?":
        return Endpoint(name, None, None, "the node object has no name")
    if not address:
        return Endpoint(name, None, None, "the node reports no address in its status")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return Endpoint(name, address, None, f"the node reports no kubelet port (daemonEndpoints: {port!r})")
    return Endpoint(name, address, port)


@dataclass
class Reply:
    """One exchange with a kubelet, or why there was none. Small enough to be evidence."""

    request: str
    status: int | None = None
    body: object = None
    error: str | None = None  # no HTTP answer: refused, timed out, TLS failed
    refused: bool = False  # the connection was actively refused (nothing listens)
    verified: bool | None = None  # whether the serving certificate was verified by the cluster CA

    def summary(self) -> dict:
        out = {"request": self.request}
        if self.status is not None:
            out["status"] = self.status
        if self.error:
            out["error"] = self.error
        if self.verified is not None:
            out["serving certificate verified by the cluster CA"] = self.verified
        return out


@dataclass
class KubeletFacts:
    """Everything the suite learnt from one node's kubelet."""

    node: str
    endpoint: Endpoint
    configz: dict | None = None
    configz_source: str = ""
    configz_problem: str | None = None
    flagz: dict | None = None
    flagz_source: str = ""
    flagz_problem: str | None = None
    serving: Reply | None = None  # the first authenticated request: did the cluster's CA verify the kubelet?
    client_certificate: Reply | None = None  # that request, when the suite authenticates with a certificate
    anonymous_pods: Reply | None = None
    no_rights_pods: Reply | None = None
    read_only: Reply | None = None
    replies: list[dict] = field(default_factory=list)

    def configuration(self) -> dict:
        if self.configz is None:
            raise NotVerified(f"the kubelet of node {self.node} could not be read: {self.configz_problem}")
        return self.configz

    def flags(self) -> dict | None:
        return self.flagz


class _Client:
    """GETs to kubelets: one pool per TLS identity, a timeout on everything."""

    def __init__(self, ca_file, cert_file, key_file, auth_headers, timeout: float):
        self.timeout = urllib3.Timeout(connect=min(3.0, timeout), read=timeout)
        common = {"retries": False, "timeout": self.timeout, "maxsize": 2, "num_pools": 4096}
        self._verified = urllib3.PoolManager(cert_reqs=ssl.CERT_REQUIRED, ca_certs=ca_file, cert_file=cert_file,
                                             key_file=key_file, **common) if ca_file else None
        # Only requests without credentials go unverified; urllib3's warning would say otherwise.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._unverified = urllib3.PoolManager(cert_reqs=ssl.CERT_NONE, **common)
        self._auth_headers = auth_headers or (lambda: {})
        self.uses_certificate = bool(cert_file and ca_file)

    def get(self, url: str, path: str, credentials: bool, extra_headers=None) -> Reply:
        request = f"GET {url}{path}" + ("" if credentials else " (no credentials)")
        headers = {"Accept": "application/json", "User-Agent": "kubeproof"}
        headers.update(extra_headers or {})
        if credentials:
            if self._verified is None:
                return Reply(request, error="the cluster's CA is not known, so no credentials are sent")
            headers.update(self._auth_headers())
            pool = self._verified
        else:
            pool = self._unverified
        try:
            response = pool.request("GET", url + path, headers=headers, redirect=False)
        except urllib3.exceptions.SSLError as error:
            return Reply(request, error=f"TLS: {_short(error)}", verified=False if credentials else None)
        except urllib3.exceptions.HTTPError as error:
            refused = isinstance(getattr(error, "reason", error), ConnectionRefusedError) or "refused" in str(error).lower()
            return Reply(request, error=_short(error), refused=refused)
        body = None
        try:
            body = json.loads(response.data) if response.data else None
        except ValueError:
            body = None
        return Reply(request, response.status, body, verified=True if credentials else None)


def _short(error: Exception) -> str:
    text = str(getattr(error, "reason", None) or error)
    return text.split(": ", 1)[-1][:300] if "object at 0x" in text else text[:300]


def _handshake_only() -> ssl.SSLContext:
    # Whether a TLS server answers at all; nothing is sent over it, so nothing needs verifying.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


_HANDSHAKE = _handshake_only()


def handshake_completes(address: str, port: int, timeout: float) -> str | None:
    """None when a TLS handshake with the kubelet completes in time; else why not."""
    context = _HANDSHAKE
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw:
            raw.settimeout(timeout)
            with context.wrap_socket(raw, server_hostname=address):
                return None
    except ConnectionRefusedError:
        return f"connection refused at {address}:{port}"
    except TimeoutError:
        return f"no answer from {address}:{port} within {timeout:g} s"
    except (OSError, ssl.SSLError) as error:
        return f"{address}:{port}: {error}"


def read_only_port_answer(address: str, port: int, timeout: float) -> Reply:
    """A plain-HTTP GET of /healthz on the read-only port: refused means closed."""
    request = f"GET http://{address}:{port}/healthz"
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(f"GET /healthz HTTP/1.0\r\nHost: {address}\r\nUser-Agent: kubeproof\r\n\r\n".encode())
            head = sock.recv(64).decode(errors="replace")
    except ConnectionRefusedError:
        return Reply(request, error="connection refused", refused=True)
    except TimeoutError:
        return Reply(request, error=f"no answer within {timeout:g} s")
    except OSError as error:
        return Reply(request, error=str(error))
    parts = head.split()
    status = int(parts[1]) if len(parts) > 1 and parts[0].startswith("HTTP/") and parts[1].isdigit() else None
    return Reply(request, status, error=None if status else f"not an HTTP answer: {head[:40]!r}")


SWEEP_CONCURRENCY = 8192
SWEEP_TIMEOUT = 3.0  # for a TLS server's first answer; a kubelet that needs longer is not verified, never passed


def _raise_open_files(wanted: int) -> int:
    """Lifts the soft limit on open files towards `wanted` (never above the hard limit); returns
    how many connections may be open at once, leaving room for everything else."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted + 256 if hard == resource.RLIM_INFINITY else min(hard, wanted + 256)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        return max(16, min(wanted, soft - 256))
    except (ImportError, ValueError, OSError):
        return 256


def _client_hello() -> bytes:
    """The bytes of a TLS ClientHello, made once: a server that answers it with anything is alive.
    The handshake is never completed, so the same hello serves every connection."""
    outgoing = ssl.MemoryBIO()
    tls = _HANDSHAKE.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="kubelet")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def sweep(endpoints: list[Endpoint], timeout: float, concurrency: int) -> dict[str, str]:
    """Says hello (TLS) to every kubelet at once, at most `concurrency` connections open; returns the
    nodes whose kubelet did not answer within `timeout`, with the reason. Those are not asked again.
    Plain non-blocking sockets: thousands of silent nodes cost one timeout and little memory."""
    if not endpoints:
        return {}
    limit = _raise_open_files(min(concurrency, len(endpoints)))
    hello = _client_hello()
    silent: dict[str, str] = {}
    waiting = list(reversed(endpoints))
    selector = selectors.DefaultSelector()
    deadline_of: dict[socket.socket, float] = {}
    try:
        while waiting or deadline_of:
            while waiting and len(deadline_of) < limit:
                endpoint = waiting.pop()
                try:
                    family = socket.AF_INET6 if ":" in endpoint.address else socket.AF_INET
                    sock = socket.socket(family, socket.SOCK_STREAM)
                    sock.setblocking(False)
                    sock.connect_ex((endpoint.address, endpoint.port))
                except OSError as error:
                    silent[endpoint.node] = f"{endpoint.address}:{endpoint.port}: {error}"
                    continue
                selector.register(sock, selectors.EVENT_WRITE, (endpoint, "connect"))
                deadline_of[sock] = time.monotonic() + timeout
            now = time.monotonic()
            wait = max(0.0, min(deadline_of.values()) - now) if deadline_of else 0.0
            for key, _ in selector.select(timeout=min(wait, 0.5)):
                sock, (endpoint, stage) = key.fileobj, key.data
                where = f"{endpoint.address}:{endpoint.port}"
                if stage == "connect":
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        reason = "connection refused" if error == errno.ECONNREFUSED else os.strerror(error)
                        silent[endpoint.node] = f"{reason} at {where}"
                        _forget(selector, deadline_of, sock)
                        continue
                    try:
                        sock.send(hello)
                    except OSError as failure:
                        silent[endpoint.node] = f"{where}: {failure}"
                        _forget(selector, deadline_of, sock)
                        continue
                    selector.modify(sock, selectors.EVENT_READ, (endpoint, "hello"))
                else:
                    try:
                        answered = sock.recv(16)
                    except OSError as failure:
                        answered, silent[endpoint.node] = b"", f"{where}: {failure}"
                    if not answered and endpoint.node not in silent:
                        silent[endpoint.node] = f"{where} closed the connection without answering"
                    _forget(selector, deadline_of, sock)
            now = time.monotonic()
            for sock in [s for s, deadline in deadline_of.items() if deadline <= now]:
                endpoint, _ = selector.get_key(sock).data
                silent[endpoint.node] = f"no answer from {endpoint.address}:{endpoint.port} within {timeout:g} s"
                _forget(selector, deadline_of, sock)
    finally:
        for sock in list(deadline_of):
            _forget(selector, deadline_of, sock)
        selector.close()
    return silent


def _forget(selector, deadline_of: dict, sock: socket.socket) -> None:
    selector.unregister(sock)
    deadline_of.pop(sock, None)
    sock.close()


class Kubelets:
    """Asks every node's kubelet once per session; tests read the answers."""

    def __init__(self, backend, timeout: float = 5.0, workers: int = WORKERS):
        self.backend = backend
        self.timeout = timeout
        self.workers = workers
        http = backend.http
        self._client = _Client(http.ca_file, http.cert_file, http.key_file, http._auth_headers, timeout)
        no_rights = backend.no_rights_credentials()
        self._no_rights = _Client(http.ca_file, no_rights[0], no_rights[1], None, timeout) if no_rights else None
        self._facts: dict[str, KubeletFacts] = {}
        self._lock = threading.Lock()
        self.proxy_used = False
        self.seconds = 0.0
        self._silent: dict[str, str] = {}  # node -> why its kubelet did not complete a handshake

    def facts(self, node: dict) -> KubeletFacts:
        name = str((node.get("metadata") or {}).get("name"))
        with self._lock:
            cached = self._facts.get(name)
        if cached is None:
            cached = self._ask(node)
            with self._lock:
                self._facts[name] = cached
        return cached

    def ask_all(self, nodes: list[dict]) -> None:
        """Asks every node (a bounded number at a time), so the tests find the answers. First one TLS
        handshake per kubelet, thousands at once: a dead node costs one handshake timeout, paid
        alongside every other dead node's, instead of a worker's time for each of its requests."""
        began = time.monotonic()
        endpoints = [endpoint_of(node) for node in nodes]
        self._silent.update(sweep([e for e in endpoints if not e.problem], min(SWEEP_TIMEOUT, self.timeout),
                                  SWEEP_CONCURRENCY))
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(nodes)))) as pool:
            list(pool.map(self.facts, nodes))
        self.seconds = time.monotonic() - began

    def release(self) -> None:
        self._facts.clear()

    def _ask(self, node: dict) -> KubeletFacts:
        endpoint = endpoint_of(node)
        facts = KubeletFacts(endpoint.node, endpoint)
        if endpoint.problem:
            facts.configz_problem = facts.flagz_problem = endpoint.problem
            return facts
        if endpoint.node in self._silent:
            unreachable = self._silent[endpoint.node]
        else:
            unreachable = handshake_completes(endpoint.address, endpoint.port, self.timeout)
        if unreachable:
            facts.configz_problem = facts.flagz_problem = f"the kubelet did not answer: {unreachable}"
            facts.anonymous_pods = Reply(f"GET {endpoint.url}/pods (no credentials)", error=unreachable)
            return facts
        self._read_configuration(facts)
        facts.anonymous_pods = self._client.get(endpoint.url, "/pods", credentials=False)
        if self._no_rights is not None:
            facts.no_rights_pods = self._no_rights.get(endpoint.url, "/pods", credentials=True)
        port = self._read_only_port(facts)
        if port:
            facts.read_only = read_only_port_answer(endpoint.address, port, self.timeout)
        for reply in (facts.anonymous_pods, facts.no_rights_pods, facts.read_only):
            if reply is not None:
                facts.replies.append(reply.summary())
        return facts

    def _read_configuration(self, facts: KubeletFacts) -> None:
        url = facts.endpoint.url
        reply = self._client.get(url, "/configz", credentials=True)
        facts.replies.append(reply.summary())
        facts.serving = reply if reply.verified is not None else None
        if self._client.uses_certificate:
            facts.client_certificate = reply
        source = "the kubelet's /configz, read directly with the suite's credentials"
        verified = reply.verified is not False
        if not verified:
            # Not verified by the cluster's CA: ask again without credentials.
            reply = self._client.get(url, "/configz", credentials=False)
            facts.replies.append(reply.summary())
            source = ("the kubelet's /configz, read without credentials (its serving certificate is not "
                      "verified by the cluster's CA, so no credentials were sent; it serves anonymous requests)")
        if reply.status == 200 and isinstance(reply.body, dict) and isinstance(reply.body.get("kubeletconfig"), dict):
            facts.configz, facts.configz_source = reply.body, source
        else:
            proxied = self._through_proxy(facts.node, "configz")
            if proxied is not None:
                facts.configz, facts.configz_source = proxied, (
                    "the API server's node proxy (nodes/proxy): this identity holds a privilege CIS 5.1 flags")
            else:
                facts.configz_problem = _why(reply, "/configz")
        flagz = self._client.get(url, "/flagz", credentials=verified, extra_headers={"Accept": FLAGZ})
        facts.replies.append(flagz.summary())
        if flagz.status == 200 and isinstance(flagz.body, dict) and flagz_flags(flagz.body) is not None:
            facts.flagz = flagz_flags(flagz.body)
            facts.flagz_source = f"the kubelet's /flagz ({'with' if verified else 'without'} credentials)"
        else:
            facts.flagz_problem = _why(flagz, "/flagz")
            # Kubelets before 1.36 serve no /flagz; where the node itself is visible, its unit says.
            on_node = self.backend.kubelet_flags(facts.node)
            if on_node is not None:
                facts.flagz, facts.flagz_problem = on_node, None
                facts.flagz_source = "the kubelet's command line on the node (its systemd unit, drop-ins and environment files)"

    def _through_proxy(self, node: str, path: str) -> dict | None:
        """The node proxy, only for an identity that already holds nodes/proxy. An API server that
        does not answer leaves the kubelet unread (not verified), as any other failure here does."""
        try:
            review = self.backend.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body={
                "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": "get", "resource": "nodes", "subresource": "proxy",
                                                "name": node}}})
            allowed = isinstance(review.body, dict) and (review.body.get("status") or {}).get("allowed") is True
            if not (review.ok and allowed):
                return None
            answer = self.backend.request("GET", f"/api/v1/nodes/{node}/proxy/{path}")
        except (Unreachable, CredentialsError):
            return None
        if answer.ok and isinstance(answer.body, dict) and isinstance(answer.body.get("kubeletconfig"), dict):
            self.proxy_used = True
            return answer.body
        return None

    def _read_only_port(self, facts: KubeletFacts) -> int | None:
        config = (facts.configz or {}).get("kubeletconfig")
        if isinstance(config, dict):
            port = config.get("readOnlyPort", 0)
            return port if isinstance(port, int) and port > 0 else READ_ONLY_PORT
        return READ_ONLY_PORT


def flagz_flags(body: dict) -> dict | None:
    """The flags of a /flagz answer in its JSON form ({"flags": {name: value}}), else None."""
    flags = body.get("flags")
    if isinstance(flags, dict):
        return {str(k): str(v) for k, v in flags.items()}
    return None


def _why(reply: Reply, path: str) -> str:
    if reply.error:
        return f"{path}: {reply.error}"
    if reply.status in (401, 403):
        return (f"{path} answered HTTP {reply.status}: the identity may not read it (it needs get on nodes/configz)")
    return f"{path} answered HTTP {reply.status} without a kubelet configuration"
