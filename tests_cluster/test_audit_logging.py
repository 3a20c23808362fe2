"""kube-apiserver records requests (CIS 1.2.16-1.2.19), its audit policy records every request and
keeps secret values and tokens out of the log (CIS 3.2.1, 3.2.2), and, on the embedded cluster whose
log the suite can read, a request of the suite's own is found in the log at the expected level.

Policy text and log lines are parsed, never copied into the report: only levels, rule positions and
a few fields of the suite's own event are."""

import json
import secrets
import time

import pytest

from kubeproof.checks import audit_logging, control_plane

pytestmark = [pytest.mark.audit_logging, pytest.mark.nsa("Audit logging and threat detection")]

PROOF_WAIT_SECONDS = 5.0
PROOF_TARGET = audit_logging.Resource("", "secrets")


@pytest.mark.parametrize("control", [pytest.param(row, marks=pytest.mark.cis(row.id), id=row.id)
                                     for row in audit_logging.ROWS])
def test_audit_log_setting(control, snapshot, verdict):
    config = snapshot.component_config(control.component)
    verdict.observe(source=config.source, expected=control.rule.expected)
    verdict.observe(**control_plane.evidence(control, config.flags, config.files))
    if control.id in audit_logging.RETENTION_IDS:
        reason = audit_logging.rotation_not_applicable(config.flags)
        if reason:
            verdict.exempt(reason)
    verdict(control_plane.findings(control, config.flags, config.files))


@pytest.mark.cis(*audit_logging.MINIMAL_POLICY_CONTROLS)
def test_audit_policy_records_every_request(snapshot, verdict):
    config = snapshot.component_config(control_plane.APISERVER)
    verdict.observe(source=config.source, **audit_logging.policy_evidence(config.flags, config.files, config.source))
    verdict(audit_logging.minimal_policy_findings(config.flags, config.files, config.source))


@pytest.mark.cis(*audit_logging.SENSITIVE_CONTROLS)
def test_audit_policy_keeps_secrets_and_tokens_out_of_the_log(snapshot, verdict):
    config = snapshot.component_config(control_plane.APISERVER)
    verdict.observe(source=config.source, **audit_logging.policy_evidence(config.flags, config.files, config.source))
    verdict(audit_logging.sensitive_findings(config.flags, config.files, config.source))


def _events_naming(log_path, marker: str) -> list[dict]:
    """Audit events whose line holds `marker`; every other line is skipped unparsed."""
    found = []
    try:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            for line in log:
                if marker in line:
                    try:
                        found.append(json.loads(line))
                    except ValueError:
                        continue
    except FileNotFoundError:
        return []
    return found


@pytest.mark.cis(*audit_logging.PROOF_CONTROLS)
def test_own_request_is_found_in_the_audit_log(cluster, snapshot, verdict):
    if cluster.kind != "local":
        verdict.exempt("the audit log lives on the control-plane nodes (or a managed service's log store); "
                       "the suite cannot read it back here, so the configuration tests are the evidence")
    log_path = cluster.cluster.audit_log_path
    if log_path is None:
        config = snapshot.component_config(control_plane.APISERVER)
        verdict(control_plane.findings(audit_logging.ROWS[0], config.flags, config.files))
        return
    # A GET for a secret that does not exist: identifiable, read-only, and no secret value is involved.
    marker = f"kubeproof-audit-proof-{secrets.token_hex(6)}"
    path = f"/api/v1/namespaces/default/secrets/{marker}"
    answer = cluster.request("GET", path)
    verdict.observe(request=answer.summary(), audit_log=str(log_path))
    deadline = time.monotonic() + PROOF_WAIT_SECONDS
    events = _events_naming(log_path, marker)
    while not events and time.monotonic() < deadline:
        time.sleep(0.2)
        events = _events_naming(log_path, marker)
    verdict.observe(events=[audit_logging.proof_summary(e) for e in events])
    verdict(audit_logging.proof_findings(events, path, PROOF_TARGET))
