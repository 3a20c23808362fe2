"""Unit tests for kubeproof.kubelets against sockets the tests open on 127.0.0.1: where a node's
kubelet is, the two low-level probes (a closed port, a listener that never answers, an HTTP answer, a
TLS handshake), and the Kubelets class end to end against a fake kubelet served with ssl and
http.server: credentials go only to a kubelet the cluster's CA verifies, and dead nodes cost one
timeout each, all at once."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeproof.backends.http import Answer
from kubeproof.kubelets import Kubelets, endpoint_of, flagz_flags, handshake_completes, read_only_port_answer

TIMEOUT = 0.5
TOKEN = "Bearer kubeproof-unit-test-token"


# -- endpoint_of ---------------------------------------------------------------------------------------
def node(name="node-1", addresses=None, port=10250, status=None) -> dict:
    if status is None:
        status = {"addresses": addresses if addresses is not None else [{"type": "InternalIP", "address": "10.0.0.1"}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
    return {"metadata": {"name": name}, "status": status}


@pytest.mark.parametrize("addresses, expected", [
    ([{"type": "Hostname", "address": "n1"}, {"type": "ExternalIP", "address": "203.0.113.9"},
      {"type": "InternalIP", "address": "10.0.0.1"}], "10.0.0.1"),
    ([{"type": "Hostname", "address": "n1"}, {"type": "ExternalIP", "address": "203.0.113.9"}], "203.0.113.9"),
    ([{"type": "Hostname", "address": "n1"}], "n1"),
    # The first address of a type is the one kept, as the node lists its preferred one first.
    ([{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "InternalIP", "address": "10.0.0.2"}], "10.0.0.1"),
    # Entries that are not addresses are passed over, not fatal.
    (["10.9.9.9", None, {"type": "InternalIP"}, {"type": "InternalIP", "address": 7},
      {"type": "ExternalIP", "address": "203.0.113.9"}], "203.0.113.9"),
])
def test_endpoint_prefers_internal_then_external_then_hostname(addresses, expected):
    endpoint = endpoint_of(node(addresses=addresses))
    assert (endpoint.node, endpoint.address, endpoint.port, endpoint.problem) == ("node-1", expected, 10250, None)
    assert endpoint.url == f"https://{expected}:10250"


def test_endpoint_of_an_ipv6_node_brackets_the_address():
    endpoint = endpoint_of(node(addresses=[{"type": "InternalIP", "address": "fd00::5"}], port=10250))
    assert endpoint.url == "https://[fd00::5]:10250"


@pytest.mark.parametrize("addresses", [[], None, "10.0.0.1", [{"type": "InternalIP", "address": ""}]])
def test_endpoint_without_an_address_is_a_problem(addresses):
    status = {"addresses": addresses, "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}
    endpoint = endpoint_of(node(status=status))
    assert endpoint.address is None and endpoint.port is None
    assert "no address" in endpoint.problem


@pytest.mark.parametrize("port", [None, 0, -1, 65536, "10250", 10250.0])
def test_endpoint_without_a_usable_port_is_a_problem(port):
    endpoint = endpoint_of(node(port=port))
    assert endpoint.address == "10.0.0.1" and endpoint.port is None
    assert "no kubelet port" in endpoint.problem


@pytest.mark.parametrize("shape", [
    {}, {"metadata": None, "status": None}, {"metadata": {"name": "n"}, "status": "Ready"},
    {"metadata": {"name": "n"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                                           "daemonEndpoints": []}},
    {"metadata": {"name": "n"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                                           "daemonEndpoints": {"kubeletEndpoint": []}}},
    {"metadata": {"name": "n"}, "status": []},
    {"metadata": {"name": "n"}, "status": {"addresses": {"InternalIP": "10.0.0.1"}}},
    {"metadata": {"name": "n"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                                           "daemonEndpoints": None}},
    {"metadata": {"name": "n"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                                           "daemonEndpoints": {"kubeletEndpoint": None}}},
    {"metadata": {"name": "n"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                                           "daemonEndpoints": {"kubeletEndpoint": {}}}},
])
def test_malformed_status_is_a_problem_not_a_crash(shape):
    endpoint = endpoint_of(shape)
    assert endpoint.problem
    assert endpoint.port is None


_ADDRESSED = {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}


@pytest.mark.parametrize("shape", [
    {"metadata": {"name": "n"}, "status": dict(_ADDRESSED, daemonEndpoints="10250")},
    {"metadata": {"name": "n"}, "status": dict(_ADDRESSED, daemonEndpoints=["10250"])},
    {"metadata": {"name": "n"}, "status": dict(_ADDRESSED, daemonEndpoints={"kubeletEndpoint": 10250})},
    {"metadata": {"name": "n"}, "status": dict(_ADDRESSED, daemonEndpoints={"kubeletEndpoint": ["x"]})},
    {"metadata": "n", "status": dict(_ADDRESSED, daemonEndpoints={"kubeletEndpoint": {"Port": 10250}})},
])
def test_parts_of_the_wrong_type_are_a_problem(shape):
    assert endpoint_of(shape).problem


# -- flagz ---------------------------------------------------------------------------------------------
def test_flagz_flags_reads_the_json_form():
    assert flagz_flags({"flags": {"hostname-override": "", "v": 2, "node-ip": "10.0.0.1"}}) == {
        "hostname-override": "", "v": "2", "node-ip": "10.0.0.1"}
    assert flagz_flags({"flags": {}}) == {}


@pytest.mark.parametrize("body", [{}, {"flags": None}, {"flags": ["--v=2"]}, {"flags": "--v=2"}])
def test_flagz_flags_of_another_shape_is_none(body):
    assert flagz_flags(body) is None


# -- sockets on loopback ---------------------------------------------------------------------------------
@pytest.fixture
def closed_port():
    # Bound but never listening: a connection is refused, and no other process can take the port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(autouse=True)
def default_read_only_port(closed_port, monkeypatch):
    """Where the configuration names no read-only port, the suite probes the kubelet's default
    (10255); here that is a port the test holds closed, not whatever this machine runs there."""
    monkeypatch.setattr("kubeproof.kubelets.READ_ONLY_PORT", closed_port)


@pytest.fixture(scope="module")
def silent_port():
    """A listener that accepts connections (the kernel completes them) and never says a word: a
    node whose kubelet hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    yield sock.getsockname()[1]
    sock.close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Healthz(_Quiet):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # refused handshakes are part of the tests, not noise for the log


def _serve(server):
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server


@pytest.fixture(scope="module")
def read_only_server():
    server = _serve(_Server(("127.0.0.1", 0), _Healthz))
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_read_only_port_closed_is_refused(closed_port):
    reply = read_only_port_answer("127.0.0.1", closed_port, TIMEOUT)
    assert reply.refused and reply.status is None
    assert "refused" in reply.error


def test_read_only_port_that_never_answers_returns_within_the_timeout(silent_port):
    began = time.monotonic()
    reply = read_only_port_answer("127.0.0.1", silent_port, TIMEOUT)
    assert time.monotonic() - began < TIMEOUT + 1.0
    assert not reply.refused and reply.status is None
    assert "no answer" in reply.error


def test_read_only_port_open_answers_http(read_only_server):
    reply = read_only_port_answer("127.0.0.1", read_only_server, TIMEOUT)
    assert (reply.status, reply.refused, reply.error) == (200, False, None)
    assert reply.request == f"GET http://127.0.0.1:{read_only_server}/healthz"


def test_handshake_with_a_closed_port_is_refused(closed_port):
    assert "refused" in handshake_completes("127.0.0.1", closed_port, TIMEOUT)


def test_handshake_with_a_silent_listener_returns_within_the_timeout(silent_port):
    began = time.monotonic()
    why = handshake_completes("127.0.0.1", silent_port, TIMEOUT)
    assert time.monotonic() - began < TIMEOUT + 1.0
    assert "no answer" in why


def test_handshake_with_plain_http_fails_with_a_reason(read_only_server):
    assert handshake_completes("127.0.0.1", read_only_server, TIMEOUT)


# -- certificates ------------------------------------------------------------------------------------
def _name(text):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _certificate(subject, key, issuer, issuer_key, *, ca=False, server=False, client=False):
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
    usages = [usage for usage, wanted in ((ExtendedKeyUsageOID.SERVER_AUTH, server),
                                          (ExtendedKeyUsageOID.CLIENT_AUTH, client)) if wanted]
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if not ca:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(folder, stem, certificate, key):
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@dataclass
class Pki:
    ca: str
    server: tuple[str, str]
    client: tuple[str, str]
    rogue: tuple[str, str]  # a serving certificate the cluster's CA did not sign


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("kubeproof-test-ca", ca_key, "kubeproof-test-ca", ca_key, ca=True)
    ca_path, _ = _write(folder, "ca", ca, ca_key)
    server_key, client_key, rogue_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    server = _write(folder, "kubelet", _certificate("kubelet", server_key, "kubeproof-test-ca", ca_key, server=True),
                    server_key)
    client = _write(folder, "suite", _certificate("kubeproof", client_key, "kubeproof-test-ca", ca_key, client=True),
                    client_key)
    rogue = _write(folder, "rogue", _certificate("kubelet", rogue_key, "kubelet", rogue_key, server=True), rogue_key)
    return Pki(ca_path, server, client, rogue)


def test_handshake_with_a_tls_server_completes(pki):
    with FakeKubelet(pki, pki.rogue) as kubelet:
        assert handshake_completes("127.0.0.1", kubelet.port, TIMEOUT) is None


# -- a fake kubelet ------------------------------------------------------------------------------------
CONFIG = {"authentication": {"anonymous": {"enabled": False}, "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
          "authorization": {"mode": "Webhook"}}
FLAGS = {"hostname-override": "", "node-ip": "127.0.0.1"}


@dataclass
class Seen:
    path: str
    client_certificate: bool
    authorization: str | None
    accept: str | None


@dataclass
class FakeKubelet:
    """/configz and /flagz answer anyone (a kubelet that serves anonymous requests); /pods wants a
    client certificate. Every request is recorded with the credentials it carried."""

    pki: Pki
    serving: tuple[str, str]
    configz_status: int = 200
    flagz_status: int = 200
    read_only_port: int = 0
    seen: list[Seen] = field(default_factory=list)

    def __enter__(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.serving)
        context.load_verify_locations(self.pki.ca)
        context.verify_mode = ssl.CERT_OPTIONAL
        fake = self

        class Handler(_Quiet):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                fake.seen.append(Seen(self.path, bool(self.connection.getpeercert()),
                                      self.headers.get("Authorization"), self.headers.get("Accept")))
                config = dict(CONFIG, readOnlyPort=fake.read_only_port)
                status, body = {
                    "/configz": (fake.configz_status, {"kubeletconfig": config}),
                    "/flagz": (fake.flagz_status, {"flags": FLAGS}),
                    "/pods": (200, {"kind": "PodList", "items": []}) if self.connection.getpeercert()
                    else (401, {"message": "Unauthorized"}),
                }.get(self.path, (404, {"message": "not found"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = _Server(("127.0.0.1", 0), Handler)
        # The handshake happens in the request's own thread, so a refused one does not stall the others.
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        _serve(self.server)
        self.port = self.server.server_address[1]
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@dataclass
class FakeHttp:
    ca_file: str | None
    cert_file: str | None
    key_file: str | None

    def _auth_headers(self) -> dict:
        return {"Authorization": TOKEN}


class FakeBackend:
    def __init__(self, pki: Pki, proxy: dict | None = None):
        self.http = FakeHttp(pki.ca, *pki.client)
        self.proxy = proxy  # path -> Answer the API server gives
        self.requests = []

    def no_rights_credentials(self):
        return None

    def kubelet_flags(self, node):
        return None

    def request(self, method, path, **kwargs):
        self.requests.append((method, path))
        if self.proxy is None:
            raise AssertionError(f"the API server was asked {method} {path}")
        return self.proxy[path]


def kubelet_node(name: str, port: int) -> dict:
    return {"metadata": {"name": name}, "status": {
        "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def test_verified_kubelet_is_read_with_the_suites_credentials(pki, read_only_server):
    backend = FakeBackend(pki)
    with FakeKubelet(pki, pki.server, read_only_port=read_only_server) as fake:
        facts = Kubelets(backend, timeout=2.0).facts(kubelet_node("worker-1", fake.port))
    assert facts.configz == {"kubeletconfig": dict(CONFIG, readOnlyPort=read_only_server)}
    assert facts.configuration() is facts.configz
    assert "read directly with the suite's credentials" in facts.configz_source
    assert facts.configz_problem is None
    assert facts.serving.verified is True and facts.serving.status == 200
    assert facts.client_certificate is facts.serving
    assert facts.flags() == FLAGS and "with credentials" in facts.flagz_source
    assert facts.anonymous_pods.status == 401
    assert facts.no_rights_pods is None  # the backend has no identity without rights
    assert facts.read_only.status == 200  # the read-only port named in the configuration answered
    [configz] = [seen for seen in fake.seen if seen.path == "/configz"]
    assert configz.client_certificate and configz.authorization == TOKEN
    [flagz] = [seen for seen in fake.seen if seen.path == "/flagz"]
    assert flagz.client_certificate and flagz.accept.startswith("application/json;as=Flagz")
    [pods] = [seen for seen in fake.seen if seen.path == "/pods"]
    assert not pods.client_certificate and pods.authorization is None
    assert backend.requests == []
    assert any(reply.get("status") == 401 for reply in facts.replies)


def test_kubelet_the_ca_does_not_verify_gets_no_credentials(pki, closed_port):
    backend = FakeBackend(pki)
    with FakeKubelet(pki, pki.rogue, read_only_port=closed_port) as fake:
        facts = Kubelets(backend, timeout=2.0).facts(kubelet_node("worker-2", fake.port))
    assert fake.seen, "the kubelet was asked without credentials"
    assert all(not seen.client_certificate and seen.authorization is None for seen in fake.seen)
    assert facts.serving.verified is False and facts.serving.error.startswith("TLS")
    assert facts.configz is not None
    assert "no credentials were sent" in facts.configz_source
    assert facts.flags() == FLAGS and "without credentials" in facts.flagz_source
    assert facts.read_only.refused
    assert backend.requests == []


def test_dead_kubelet_is_not_verified_with_a_reason(pki, silent_port):
    began = time.monotonic()
    facts = Kubelets(FakeBackend(pki), timeout=TIMEOUT).facts(kubelet_node("worker-3", silent_port))
    assert time.monotonic() - began < TIMEOUT * 3
    assert "no answer" in facts.configz_problem and "no answer" in facts.flagz_problem
    assert facts.configz is None and facts.serving is None and facts.read_only is None
    assert facts.anonymous_pods.error and facts.anonymous_pods.status is None


def test_node_without_an_endpoint_is_not_asked(pki):
    facts = Kubelets(FakeBackend(pki), timeout=TIMEOUT).facts({"metadata": {"name": "ghost"}, "status": {}})
    assert "no address" in facts.configz_problem
    assert facts.anonymous_pods is None


def test_dead_nodes_are_asked_at_once(pki, silent_port):
    kubelets = Kubelets(FakeBackend(pki), timeout=TIMEOUT)
    nodes = [kubelet_node(f"dead-{index}", silent_port) for index in range(200)]
    began = time.monotonic()
    kubelets.ask_all(nodes)
    took = time.monotonic() - began
    assert took < 200 * TIMEOUT / 5, f"{took:.1f} s for 200 dead nodes"
    assert kubelets.seconds == pytest.approx(took, abs=0.5)
    facts = [kubelets.facts(node) for node in nodes]  # cached: no second timeout
    assert time.monotonic() - began - took < 1.0
    assert all("no answer" in fact.configz_problem for fact in facts)


def test_answers_are_kept_for_the_session(pki):
    with FakeKubelet(pki, pki.server) as fake:
        kubelets = Kubelets(FakeBackend(pki), timeout=2.0)
        first = kubelets.facts(kubelet_node("worker-4", fake.port))
        asked = len(fake.seen)
        assert kubelets.facts(kubelet_node("worker-4", fake.port)) is first
        assert len(fake.seen) == asked
        kubelets.release()
        assert kubelets.facts(kubelet_node("worker-4", fake.port)) is not first


def _review(allowed: bool) -> Answer:
    return Answer("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", 201,
                  {"status": {"allowed": allowed}})


def test_configz_refused_without_nodes_proxy_names_the_permission(pki, closed_port):
    backend = FakeBackend(pki, proxy={"/apis/authorization.k8s.io/v1/selfsubjectaccessreviews": _review(False)})
    with FakeKubelet(pki, pki.server, configz_status=403, read_only_port=closed_port) as fake:
        kubelets = Kubelets(backend, timeout=2.0)
        facts = kubelets.facts(kubelet_node("worker-5", fake.port))
    assert facts.configz is None
    assert "HTTP 403" in facts.configz_problem and "nodes/configz" in facts.configz_problem
    assert not kubelets.proxy_used
    assert [path for _, path in backend.requests] == ["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]


def test_configz_through_the_node_proxy_says_what_privilege_it_used(pki, closed_port):
    proxied = {"kubeletconfig": dict(CONFIG, readOnlyPort=0)}
    backend = FakeBackend(pki, proxy={
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews": _review(True),
        "/api/v1/nodes/worker-6/proxy/configz": Answer("GET", "/api/v1/nodes/worker-6/proxy/configz", 200, proxied)})
    with FakeKubelet(pki, pki.server, configz_status=401, read_only_port=closed_port) as fake:
        kubelets = Kubelets(backend, timeout=2.0)
        facts = kubelets.facts(kubelet_node("worker-6", fake.port))
    assert facts.configz == proxied
    assert "nodes/proxy" in facts.configz_source
    assert kubelets.proxy_used


# -- the sweep: one TLS hello to every kubelet at once ---------------------------------------------------
def test_sweep_sorts_live_refusing_and_silent_kubelets(pki, closed_port, silent_port, read_only_server):
    from kubeproof.kubelets import Endpoint, sweep

    with FakeKubelet(pki, pki.rogue) as kubelet:
        endpoints = [Endpoint("live", "127.0.0.1", kubelet.port), Endpoint("refusing", "127.0.0.1", closed_port),
                     Endpoint("plain-http", "127.0.0.1", read_only_server),
                     *(Endpoint(f"silent-{i}", "127.0.0.1", silent_port) for i in range(50))]
        began = time.monotonic()
        silent = sweep(endpoints, timeout=0.5, concurrency=1024)
        took = time.monotonic() - began
    assert "live" not in silent and "plain-http" not in silent  # both answered something: alive
    assert "refused" in silent["refusing"]
    assert all("no answer" in silent[f"silent-{i}"] for i in range(50))
    assert took < 3.0, took  # one timeout for all fifty, not fifty


def test_sweep_with_a_small_bound_still_asks_everyone(pki, silent_port):
    from kubeproof.kubelets import Endpoint, sweep

    silent = sweep([Endpoint(f"n{i}", "127.0.0.1", silent_port) for i in range(6)], timeout=0.3, concurrency=2)
    assert sorted(silent) == [f"n{i}" for i in range(6)]


# -- a kubelet without /flagz (before 1.36): the node's own unit, where the backend can read it ---------
class NodeVisibleBackend(FakeBackend):
    def kubelet_flags(self, node):
        return {"hostname-override": f"{node}.example"}


def test_without_flagz_the_command_line_comes_from_the_node_where_visible(pki):
    with FakeKubelet(pki, pki.server, flagz_status=404) as fake:
        facts = Kubelets(NodeVisibleBackend(pki), timeout=2.0).facts(kubelet_node("worker-1", fake.port))
    assert facts.flags() == {"hostname-override": "worker-1.example"}
    assert "on the node" in facts.flagz_source and facts.flagz_problem is None


def test_without_flagz_or_a_visible_node_the_command_line_is_unknown(pki):
    with FakeKubelet(pki, pki.server, flagz_status=404) as fake:
        facts = Kubelets(FakeBackend(pki), timeout=2.0).facts(kubelet_node("worker-1", fake.port))
    assert facts.flags() is None and "/flagz answered HTTP 404" in facts.flagz_problem
