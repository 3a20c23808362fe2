"""HTTP to a Kubernetes API server, from a kubeconfig context.

The official client loads the kubeconfig (certificates, tokens, exec plugins); the requests themselves
go through urllib3 so the suite gets raw JSON, response headers (admission warnings) and exact status
codes, and so no request is retried behind its back."""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlencode

import urllib3

DEFAULT_TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)


class CredentialsError(Exception):
    """The kubeconfig's credentials could not be produced (an exec plugin failed, a file vanished)."""


class Unreachable(Exception):
    """The API server (or etcd) did not answer at all: exit status 3, naming the endpoint."""

    def __init__(self, endpoint: str, reason: str):
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason


@dataclass
class Answer:
    """One HTTP exchange, kept small enough to be evidence."""

    method: str
    path: str
    status: int
    body: dict | list | None
    text: str = ""  # the first bytes of a body that was not JSON
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("message"), str):
            return self.body["message"]
        return self.text

    def summary(self) -> dict:
        out = {"request": f"{self.method} {self.path}", "status": self.status}
        if self.message:
            out["message"] = self.message[:500]
        if self.warnings:
            out["warnings"] = self.warnings
        return out


def _warnings(headers) -> list[str]:
    # Warning: 299 - "text"  (RFC 7234 form the API server uses)
    found = []
    for value in headers.getlist("Warning") if hasattr(headers, "getlist") else [headers.get("Warning")]:
        if not value:
            continue
        text = value.split(" ", 2)[-1].strip()
        if text.startswith('"') and text.endswith('"'):
            text = text[1:-1].replace('\\"', '"')
        found.append(text)
    return found


class KubeHttp:
    def __init__(self, server: str, ca_file: str | None, cert_file: str | None, key_file: str | None,
                 verify: bool = True, auth_headers=None, timeout=DEFAULT_TIMEOUT):
        self.server = server.rstrip("/")
        # Kept so kubelets can be asked with the same identity (kubeproof.kubelets).
        self.ca_file, self.cert_file, self.key_file = (ca_file if verify else None), cert_file, key_file
        self._auth_headers = auth_headers or (lambda: {})
        self.timeout = timeout
        kwargs = {"retries": False, "timeout": timeout, "maxsize": 4}
        if verify:
            kwargs.update(cert_reqs=ssl.CERT_REQUIRED, ca_certs=ca_file)
        else:
            kwargs.update(cert_reqs=ssl.CERT_NONE)
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._authenticated = urllib3.PoolManager(cert_file=cert_file, key_file=key_file, **kwargs)
        self._anonymous = urllib3.PoolManager(**kwargs)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None, context: str | None) -> KubeHttp:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
        )

        def auth_headers() -> dict:
            headers = {}
            for setting in configuration.auth_settings().values():
                if setting.get("in") == "header" and setting.get("value"):
                    headers[setting["key"]] = setting["value"]
            return headers

        return cls(
            configuration.host, configuration.ssl_ca_cert, configuration.cert_file, configuration.key_file,
            verify=configuration.verify_ssl, auth_headers=auth_headers,
        )

    @classmethod
    def from_service_account(cls, folder: str, host: str, port: str) -> KubeHttp:
        """In a pod: the mounted service-account token and CA, and the API server from the
        environment. The token is re-read on every request, as the kubelet rotates it."""
        token_file, ca_file = os.path.join(folder, "token"), os.path.join(folder, "ca.crt")

        def auth_headers() -> dict:
            with open(token_file) as token:
                return {"Authorization": f"Bearer {token.read().strip()}"}

        server = f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"
        return cls(server, ca_file, None, None, auth_headers=auth_headers)

    def request(self, method: str, path: str, query: dict | None = None, body=None,
                content_type: str = "application/json", accept: str = "application/json",
                anonymous: bool = False, timeout=None) -> Answer:
        url = self.server + path + (("?" + urlencode(query)) if query else "")
        headers = {"Accept": accept, "User-Agent": "kubeproof"}
        if body is not None:
            headers["Content-Type"] = content_type
        if not anonymous:
            try:
                headers.update(self._auth_headers())
            except Exception as error:  # exec plugins and token files fail in many ways; none is a pass
                raise CredentialsError(f"the credentials for {self.server} could not be produced: {error}") from None
        pool = self._anonymous if anonymous else self._authenticated
        try:
            response = pool.request(
                method, url, headers=headers, body=json.dumps(body).encode() if body is not None else None,
                timeout=timeout or self.timeout, preload_content=True, redirect=False,
            )
        except urllib3.exceptions.HTTPError as error:
            raise Unreachable(self.server, _reason(error)) from None
        payload = response.data or b""
        parsed, text = None, ""
        shown_path = path + (("?" + urlencode(query)) if query else "")
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            if "json" in (response.headers.get("Content-Type") or "").split(";")[0].lower():
                # Said to be JSON and is not: cut short or damaged on the way. Its status and headers
                # (a 401, an admission warning) are no evidence either, so there is no answer at all.
                raise Unreachable(self.server, f"{method} {shown_path} answered HTTP {response.status} with a "
                                  f"body that is not the JSON it declares ({len(payload)} bytes)") from None
            text = payload[:300].decode(errors="replace")
        return Answer(method, shown_path, response.status, parsed, text, _warnings(response.headers))


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or error
    text = str(reason)
    # urllib3 nests the interesting part; keep the message short and free of object reprs.
    return text.split(": ", 1)[-1] if "object at 0x" in text else text
