"""Reads etcd through its JSON gateway, keeping only the first bytes of each value.

etcd has no way to return part of a value, so each value crosses the wire whole. The moment it is
decoded it is reduced to its encryption header ("k8s:enc:aescbc:v1:key1", which names a provider and
a key, not key material) or to None when it is not encrypted; no other byte is kept, logged or returned."""

from __future__ import annotations

import base64
import json
import ssl
from dataclasses import dataclass

import urllib3

from kubeproof.backends.http import Unreachable

PREFIX_BYTES = 64  # room for "k8s:enc:<provider>:<version>:<key name>:"; cut before anything is kept
ENCRYPTED = b"k8s:enc:"
PAGE = 200


@dataclass(frozen=True)
class EtcdAccess:
    endpoint: str
    ca_file: str | None
    cert_file: str | None
    key_file: str | None


@dataclass(frozen=True)
class StoredValue:
    key: str
    encryption_header: str | None  # None: the value is not encrypted


def encryption_header(value: bytes) -> str | None:
    if not value.startswith(ENCRYPTED):
        return None
    fields = value[:PREFIX_BYTES].split(b":")[:5]
    header = b":".join(fields)
    return header.decode("ascii") if header.isascii() and header.decode("ascii").isprintable() else "k8s:enc:?"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _range_end(prefix: bytes) -> bytes:
    end = bytearray(prefix)
    end[-1] += 1  # prefixes used here never end in 0xff
    return bytes(end)


class EtcdReader:
    def __init__(self, access: EtcdAccess, timeout: float = 10.0):
        self.access = access
        self._pool = urllib3.PoolManager(
            cert_reqs=ssl.CERT_REQUIRED if access.ca_file else ssl.CERT_NONE,
            ca_certs=access.ca_file, cert_file=access.cert_file, key_file=access.key_file,
            retries=False, timeout=urllib3.Timeout(connect=5.0, read=timeout),
        )

    def value_prefixes(self, prefix: str) -> list[StoredValue]:
        """Every key under `prefix` with the first bytes of its value."""
        start, end = prefix.encode(), _range_end(prefix.encode())
        found: list[StoredValue] = []
        while True:
            answer = self._post("/v3/kv/range", {"key": _b64(start), "range_end": _b64(end), "limit": PAGE})
            kvs = answer.get("kvs") or []
            for kv in kvs:
                key = base64.b64decode(kv.get("key", ""))
                header = encryption_header(base64.b64decode(kv.get("value", ""))[:PREFIX_BYTES])
                found.append(StoredValue(key.decode(errors="replace"), header))
            if not answer.get("more") or not kvs:
                return found
            start = base64.b64decode(kvs[-1]["key"]) + b"\x00"

    def _post(self, path: str, body: dict) -> dict:
        try:
            response = self._pool.request(
                "POST", self.access.endpoint.rstrip("/") + path, body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
        except urllib3.exceptions.HTTPError as error:
            raise Unreachable(self.access.endpoint, str(getattr(error, "reason", error))) from None
        if response.status != 200:
            raise EtcdError(f"etcd {self.access.endpoint} answered {response.status} to {path}")
        try:
            return json.loads(response.data)
        except ValueError:
            raise EtcdError(f"etcd {self.access.endpoint} answered {path} with a body that is not JSON") from None


class EtcdError(Exception):
    pass
