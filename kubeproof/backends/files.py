"""File facts for the node file controls (kubeproof.checks.node_files): what stat says of a path, as
plain dicts, on this machine (the embedded cluster's own files) or inside a kind node (docker exec)."""

from __future__ import annotations

import base64
import binascii
import grp
import hashlib
import os
import pwd
import re
import stat
from pathlib import Path


def _name(lookup, number: int) -> str | None:
    try:
        return lookup(number)[0]
    except KeyError:
        return None


def stat_fact(role: str, path: str | Path) -> dict:
    """The fact of one local path; a path that is not there is reported absent (no reason given)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return {"role": role, "path": str(path), "exists": False}
    return {"role": role, "path": str(path), "exists": True, "mode": stat.S_IMODE(info.st_mode),
            "uid": info.st_uid, "gid": info.st_gid, "user": _name(pwd.getpwuid, info.st_uid),
            "group": _name(grp.getgrgid, info.st_gid), "is_dir": stat.S_ISDIR(info.st_mode)}


def absent(role: str, path: str, reason: str) -> dict:
    """A file the role names that this cluster does not have, and why it need not."""
    return {"role": role, "path": path, "exists": False, "absent_reason": reason}


def pki_roles(path: str | Path, dir_role: str, cert_role: str, key_role: str) -> list[str]:
    """The roles of one path under the PKI folder: the folder's (ownership), and a certificate's or
    a key's (modes) by its name."""
    name = Path(path).name
    if name.endswith((".crt", ".pem", ".pub")) and not name.endswith("-key.pem"):
        return [dir_role, cert_role]
    if name.endswith((".key", "-key.pem")):
        return [dir_role, key_role]
    return [dir_role]


def pki_facts(folder: Path, dir_role: str, cert_role: str, key_role: str) -> list[dict]:
    """The PKI folder and everything under it (ownership), its certificates and its keys (modes)."""
    facts = [stat_fact(dir_role, folder)]
    for path in sorted(folder.rglob("*")):
        facts += [stat_fact(role, path) for role in pki_roles(path, dir_role, cert_role, key_role)]
    return facts


STAT_FORMAT = "%a|%u|%g|%U|%G|%F|%n"


def stat_lines(text: str) -> list[tuple[str, dict]]:
    """(path, fact without a role) for each line of `stat -c STAT_FORMAT` output, in its order;
    lines of another shape (a warning, a path with a newline in it) are passed over."""
    seen = []
    for line in text.splitlines():
        parts = line.split("|", 6)
        if len(parts) != 7 or not parts[6]:
            continue
        mode, uid, gid, user, group, kind, path = parts
        try:
            fact = {"path": path, "exists": True, "mode": int(mode, 8), "uid": int(uid), "gid": int(gid),
                    "user": None if user in ("UNKNOWN", "") else user,
                    "group": None if group in ("UNKNOWN", "") else group, "is_dir": kind == "directory"}
        except ValueError:
            continue
        seen.append((path, fact))
    return seen


def parse_stat_lines(roles_by_path: dict[str, list[str]], text: str) -> list[dict]:
    """Facts from `stat -c STAT_FORMAT` output (one line per path, as run inside a node). A path
    stat did not list is left out: the caller reports it absent or not visible."""
    return [dict(fact, role=role) for path, fact in stat_lines(text) for role in roles_by_path.get(path, ())]


_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)


def pem_fingerprint(text: str) -> str | None:
    """SHA-256 of the DER of the first certificate in a PEM file, the way CIS 2.7 compares CAs."""
    match = _PEM.search(text)
    if match is None:
        return None
    try:
        der = base64.b64decode("".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(der).hexdigest() if der else None
