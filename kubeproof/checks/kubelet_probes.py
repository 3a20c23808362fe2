"""What live requests to a kubelet prove about CIS 4.2.1, 4.2.2, 4.2.4 and 4.2.9, and how they
combine with the kubelet's own configuration (kubeproof.checks.kubelet): where a probe is
conclusive it wins, and the finding says what the configuration claimed.

Pure: the probes' outcomes in (status codes, whether a connection was refused, whether the serving
certificate verified), findings out."""

from __future__ import annotations

from dataclasses import dataclass

from kubeproof.checks import kubelet
from kubeproof.results import Finding, NotVerified, ObjectRef

ON, OFF = "on", "off"


@dataclass(frozen=True)
class Outcome:
    """One probe's answer, reduced to what the suite saw."""

    status: int | None = None  # HTTP status, None when there was no HTTP answer
    refused: bool = False  # nothing listened
    verified: bool | None = None  # the serving certificate verified by the cluster's CA (None: not tried)

    @classmethod
    def of(cls, reply) -> Outcome | None:
        if reply is None:
            return None
        return cls(reply.status, bool(reply.refused), reply.verified)


def anonymous_requests(probe: Outcome | None) -> str | None:
    """4.2.1: an unauthenticated GET /pods. 401: anonymous requests refused. 200 or 403: the kubelet
    took the request as system:anonymous (403 only means its authorizer then said no)."""
    if probe is None or probe.status is None:
        return None
    if probe.status == 401:
        return OFF
    if probe.status in (200, 403):
        return ON
    return None


def authorization_enforced(probe: Outcome | None) -> str | None:
    """4.2.2: GET /pods by an identity with no rights on nodes. 403: the kubelet asked an authorizer
    and was told no. 200: it allowed a caller that holds nothing (AlwaysAllow). 401 proves nothing
    about authorization: the identity was not recognised."""
    if probe is None or probe.status is None:
        return None
    if probe.status == 403:
        return ON
    if probe.status == 200:
        return OFF
    return None


def client_certificates_accepted(probe: Outcome | None) -> str | None:
    """4.2.3: the suite's own request, made with a client certificate the cluster's CA signed, to a
    kubelet whose serving certificate verified. 401: the kubelet does not know the cluster's CA for
    clients. Any other answer: the certificate was recognised."""
    if probe is None or probe.status is None or probe.verified is not True:
        return None
    return OFF if probe.status == 401 else ON


def read_only_port(probe: Outcome | None) -> str | None:
    """4.2.4: a plain-HTTP GET on the read-only port. Refused: closed; any HTTP answer: open."""
    if probe is None:
        return None
    if probe.refused:
        return OFF
    if probe.status is not None:
        return ON
    return None


def _configured(control: str, configz, node: str) -> list[Finding] | None:
    """The configuration's findings for `control`; None when it cannot be judged from it (the probe
    may still settle the control, so its unreadable configuration must not hide the probe)."""
    if configz is None:
        return None
    try:
        return kubelet.findings(kubelet.row(control), configz, None, node)
    except NotVerified:
        return None


def _finding(control: str, node: str, path: str, observed: str) -> Finding:
    row = kubelet.row(control)
    return Finding((control,), ObjectRef("Node", node), path, observed, row.expected, row.remediation)


def judge(node: str, configz, anonymous: Outcome | None, no_rights: Outcome | None,
          read_only: Outcome | None, serving: Outcome | None,
          client_certificate: Outcome | None = None) -> tuple[list[Finding], dict]:
    """Findings for 4.2.1-4.2.4 and 4.2.9, and what each probe showed (for the evidence).
    `client_certificate` is the suite's own request when it authenticates with a client certificate
    (None otherwise: a refused token says nothing about the client CA).
    `configz` may be None (unreadable): a conclusive probe still judges its control. Controls that
    neither a probe nor the configuration settled are listed in the evidence under "unsettled"; the
    caller reports them not verified, never passed."""
    found: list[Finding] = []
    shown: dict = {}
    for control, verdict, bad, what in (
        ("4.2.1", anonymous_requests(anonymous), ON, "an unauthenticated GET /pods"),
        ("4.2.2", authorization_enforced(no_rights), OFF, "GET /pods by an identity with no rights on nodes"),
        ("4.2.3", client_certificates_accepted(client_certificate), OFF,
         "a request with a client certificate the cluster's CA signed"),
        ("4.2.4", read_only_port(read_only), ON, "a GET on the read-only port"),
    ):
        probe = {"4.2.1": anonymous, "4.2.2": no_rights, "4.2.3": client_certificate, "4.2.4": read_only}[control]
        configured = _configured(control, configz, node)
        shown[control] = {"probe": what, "answer": _answer(probe), "proves": verdict or "nothing conclusive",
                          "configuration": "not readable" if configured is None else
                          ("falls short" if configured else "compliant")}
        if verdict is None:
            if configured is None:
                shown.setdefault("unsettled", []).append(control)
            found += configured or []
        elif verdict == bad:
            claim = "" if configured is None else (
                " (the configuration says the same)" if configured else " (the configuration claims otherwise)")
            found.append(_finding(control, node, kubelet.row(control).path, f"{what} answered {_answer(probe)}{claim}"))
        elif configured:
            shown[control]["disagreement"] = "the probe shows the setting in force; the configuration reads otherwise"
    configured = _configured("4.2.9", configz, node)
    if serving is not None and serving.verified is False:
        claim = "" if configured is None else (
            "; the configuration names a certificate file, which the kubelet may have generated itself" if not configured
            else "")
        found.append(_finding("4.2.9", node, "tlsCertFile",
                              f"a serving certificate the cluster's CA does not verify{claim}"))
        shown["4.2.9"] = {"probe": "TLS handshake with the cluster's CA", "answer": "not verified"}
    else:
        if configured is None and not (serving is not None and serving.verified):
            shown.setdefault("unsettled", []).append("4.2.9")
        found += configured or []
        if serving is not None and serving.verified:
            shown["4.2.9"] = {"probe": "TLS handshake with the cluster's CA", "answer": "verified"}
    return found, shown


def _answer(probe: Outcome | None) -> str:
    if probe is None:
        return "not asked"
    if probe.refused:
        return "connection refused"
    if probe.status is None:
        return "no HTTP answer"
    return f"HTTP {probe.status}"


PROBED = ("4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.9")
