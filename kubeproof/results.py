"""What checks return: findings about objects, or the admission that something could not be seen.

Pure data. Checks build these; the plugin turns them into test outcomes and evidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class NotVerified(Exception):
    """The data a check needs could not be read or interpreted. Never a pass."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    name: str
    namespace: str | None = None
    uid: str | None = None

    @classmethod
    def of(cls, obj: dict, kind: str | None = None) -> ObjectRef:
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        metadata = metadata if isinstance(metadata, dict) else {}
        return cls(
            kind=str(kind or (obj.get("kind") if isinstance(obj, dict) else None) or "?"),
            name=str(metadata.get("name") or "?"),
            namespace=metadata.get("namespace") if isinstance(metadata.get("namespace"), str) else None,
            uid=metadata.get("uid") if isinstance(metadata.get("uid"), str) else None,
        )

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Finding:
    """One way an object falls short of a practice."""

    controls: tuple[str, ...]
    object: ObjectRef
    path: str
    observed: Any
    expected: str
    remediation: str

    def describe(self) -> str:
        return f"{self.object}: {self.path} is {self.observed!r}; expected {self.expected}"

    def to_dict(self) -> dict:
        record = asdict(self)
        record["object"] = asdict(self.object)
        record["controls"] = list(self.controls)
        return record


@dataclass
class Evidence:
    """What a test saw, kept for the report whether it passed or not."""

    facts: dict[str, Any] = field(default_factory=dict)
