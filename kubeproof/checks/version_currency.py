"""Version currency: the API server and every kubelet run a Kubernetes minor version that still gets
patches, and kubelets stay within the supported skew of the API server.

Pure: the support table, the versions and today's date are all parameters, so the same inputs always
give the same answer (the tests pass `datetime.date.today()`). A minor the table does not know, or
one without a published end of life, is not verified rather than assumed supported.

A version within WARN_DAYS of its end of life passes with a warning: `Currency.state == "ending"`; the
test puts the warning in the evidence and raises a pytest warning, so the run stays green while the
report and the terminal both say an upgrade is due."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Version currency"

WARN_DAYS = 60
# Version skew policy (kubernetes.io/releases/version-skew-policy, since 1.28): a kubelet may be up to
# three minor versions older than kube-apiserver and never newer.
MAX_KUBELET_LAG = 3
# No CIS 1.12 control asks for a supported version: the tests of tests_cluster/test_version_currency.py
# carry the NSA section only (tests_unit/test_markers.py holds them to that).
CIS_BY_TEST: dict[str, tuple[str, ...]] = {
    "test_api_server_version_is_supported": (),
    "test_kubelet_version_is_supported": (),
    "test_kubelet_is_within_skew_of_the_api_server": (),
}
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")

_REMEDIATE_ENDED = (
    "Upgrade to a Kubernetes minor version that still receives patches (one minor at a time for the "
    "control plane); past its end of life a version gets no security fixes."
)
_REMEDIATE_SKEW = (
    "Upgrade (or, if it is ahead, hold back) this node's kubelet so it is the API server's minor version "
    "or at most three minors older; outside that skew the pair is untested and unsupported."
)


class SupportEndingSoon(UserWarning):
    """A Kubernetes version reaches its end of life within WARN_DAYS."""


@dataclass(frozen=True)
class Support:
    minor: str
    released: datetime.date | None
    end_of_life: datetime.date | None


@dataclass(frozen=True)
class Currency:
    minor: str
    released: datetime.date | None
    end_of_life: datetime.date
    days_left: int
    state: str  # "supported", "ending" (within WARN_DAYS), "ended"

    def evidence(self) -> dict:
        return {"minor": self.minor, "released": str(self.released) if self.released else "unknown",
                "end of life": str(self.end_of_life), "days left": self.days_left, "state": self.state}


def _date(value, where: str) -> datetime.date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise NotVerified(f"the support table's {where} is not a date")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise NotVerified(f"the support table's {where} ({value!r}) is not a date") from None


def parse_table(document) -> dict[str, Support]:
    """The table's minors, checked for shape; anything malformed makes the table unusable."""
    if not isinstance(document, dict) or not isinstance(document.get("minors"), dict):
        raise NotVerified("the Kubernetes support table has no minors mapping")
    table = {}
    for minor, entry in document["minors"].items():
        if not isinstance(minor, str) or not _VERSION.match(minor) or not isinstance(entry, dict):
            raise NotVerified(f"the support table's entry {minor!r} is malformed")
        table[minor] = Support(minor, _date(entry.get("released"), f"{minor} released"),
                               _date(entry.get("end_of_life"), f"{minor} end_of_life"))
    return table


def minor_of(version) -> str:
    """'1.37' from 'v1.37.2', 'v1.30.4-eks-1a2b3c', '1.29.3+k3s1' or '1.37'."""
    match = _VERSION.match(version.strip()) if isinstance(version, str) else None
    if not match:
        raise NotVerified(f"{version!r} is not a Kubernetes version")
    return f"{int(match.group(1))}.{int(match.group(2))}"


def server_minor(version_info) -> str:
    """The API server's minor from its /version answer: major and minor (managed services append '+'
    to the minor), else gitVersion."""
    if not isinstance(version_info, dict):
        raise NotVerified("the API server's /version answer is not an object")
    major, minor = version_info.get("major"), version_info.get("minor")
    if isinstance(major, str) and isinstance(minor, str):
        major, minor = major.strip(), minor.strip().rstrip("+")
        if major.isdigit() and minor.isdigit():
            return f"{int(major)}.{int(minor)}"
    return minor_of(version_info.get("gitVersion"))


def currency(minor: str, table: dict[str, Support], today: datetime.date) -> Currency:
    support = table.get(minor)
    if support is None:
        raise NotVerified(f"Kubernetes {minor} is not in kubeproof's support table; its end of life is unknown here")
    if support.end_of_life is None:
        raise NotVerified(f"no end-of-life date is published for Kubernetes {minor} in kubeproof's support table")
    days_left = (support.end_of_life - today).days
    state = "ended" if days_left < 0 else "ending" if days_left <= WARN_DAYS else "supported"
    return Currency(minor, support.released, support.end_of_life, days_left, state)


def currency_findings(subject: ObjectRef, what: str, version: str, status: Currency) -> list[Finding]:
    if status.state != "ended":
        return []
    return [Finding((), subject, what, f"{version} (Kubernetes {status.minor}, end of life {status.end_of_life}, "
                    f"{-status.days_left} days ago)", "a Kubernetes minor version before its end of life",
                    _REMEDIATE_ENDED)]


def warning_text(subject: str, status: Currency) -> str | None:
    if status.state != "ending":
        return None
    return (f"{subject} runs Kubernetes {status.minor}, whose support ends on {status.end_of_life} "
            f"({status.days_left} days from now)")


def skew_findings(node: ObjectRef, kubelet_minor: str, apiserver_minor: str) -> list[Finding]:
    kubelet, apiserver = (tuple(int(p) for p in minor_of(v).split(".")) for v in (kubelet_minor, apiserver_minor))
    if kubelet[0] != apiserver[0]:
        lag = None
    else:
        lag = apiserver[1] - kubelet[1]
    if lag is not None and 0 <= lag <= MAX_KUBELET_LAG:
        return []
    if lag is not None and lag < 0:
        observed = f"kubelet {kubelet_minor} is newer than the API server ({apiserver_minor})"
    elif lag is not None:
        observed = f"kubelet {kubelet_minor} is {lag} minor versions behind the API server ({apiserver_minor})"
    else:
        observed = f"kubelet {kubelet_minor} and the API server ({apiserver_minor}) differ in major version"
    return [Finding((), node, "status.nodeInfo.kubeletVersion", observed,
                    f"the API server's minor or up to {MAX_KUBELET_LAG} minors older", _REMEDIATE_SKEW)]


def kubelet_version(node) -> str:
    if not isinstance(node, dict):
        raise NotVerified("the node is not an object")
    status = node.get("status")
    info = status.get("nodeInfo") if isinstance(status, dict) else None
    version = info.get("kubeletVersion") if isinstance(info, dict) else None
    if not isinstance(version, str) or not version:
        raise NotVerified(f"node {ObjectRef.of(node, 'Node').name} does not report its kubelet version")
    return version
