"""Reading fields of API objects that may be malformed, without ever guessing a pass."""

from __future__ import annotations

from kubeproof.results import NotVerified

_MISSING = object()


def mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NotVerified(f"{where} is a {type(value).__name__}, not an object; it cannot be judged")
    return value


def listing(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise NotVerified(f"{where} is a {type(value).__name__}, not a list; it cannot be judged")
    return value


def text(value, where: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise NotVerified(f"{where} is missing or not a string; it cannot be judged")
    return value


def metadata(obj, kind: str) -> dict:
    if not isinstance(obj, dict):
        raise NotVerified(f"the {kind} is a {type(obj).__name__}, not an object")
    meta = mapping(obj.get("metadata"), f"{kind} metadata")
    text(meta.get("name"), f"{kind} metadata.name")
    return meta


def json_type(value) -> str:
    """The JSON name of a value's type, for messages about a field of the wrong type."""
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "list"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__
