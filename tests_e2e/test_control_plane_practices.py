"""End-to-end: the control-plane, audit-logging and version-currency practices run as a user runs
them, against real embedded clusters.

- hardened: every case passes (the cluster runs a kube-scheduler and nodes), and the audit
  proof finds the suite's own request in the API server's audit log, at Metadata, without bodies;
- insecure: exactly the expected controls fail (anonymous auth on, no Node authorizer, no
  NodeRestriction, no audit log or policy, and the CIS extras the hardened profile adds);
- managed-style: the same hardened cluster audited as a LIVE cluster through its admin kubeconfig,
  where no component's flags are visible (no first-hand view, no mirror pods): every control-plane and
  audit configuration case is not verified and none passes.

The clusters are the session's shared ones (tests_e2e/conftest.py); this module starts none of its own
and only reads from them (the audit proof is a GET)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from kubeproof.checks import audit_logging, control_plane

ROOT = Path(__file__).resolve().parents[1]
SUITE_FILES = ("tests_cluster/test_control_plane.py", "tests_cluster/test_audit_logging.py",
               "tests_cluster/test_version_currency.py")
MINE = {"control_plane", "audit_logging"}
PROOF = "test_own_request_is_found_in_the_audit_log"


@dataclass
class Run:
    returncode: int
    output: str
    records: list[dict]

    def status_of(self) -> dict[tuple[str, tuple[str, ...]], str]:
        """(test, CIS ids) -> status; a row-parametrised case carries its own id."""
        return {(r["test"], tuple(r["controls"].get("cis", []))): r["status"] for r in self.records}

    def with_status(self, status: str, practices=MINE) -> set[tuple[str, tuple[str, ...]]]:
        return {(r["test"], tuple(r["controls"].get("cis", []))) for r in self.records
                if r["status"] == status and r["practice"] in practices}

    def record(self, test: str, cis: tuple[str, ...] = ()) -> dict:
        [found] = [r for r in self.records if r["test"] == test and (not cis or tuple(r["controls"]["cis"]) == cis)]
        return found


def run_suite(report_dir: Path, *args: str, timeout: float = 300) -> Run:
    """Only this module's suite files, so each run stays a few seconds."""
    command = [sys.executable, "-m", "pytest", *SUITE_FILES, "-q", "-p", "no:cacheprovider", "--tb=line",
               f"--report-dir={report_dir}", *args]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    records = []
    for path in sorted(report_dir.rglob("*.json")) if report_dir.exists() else []:
        document = json.loads(path.read_text())
        if isinstance(document, dict) and isinstance(document.get("results"), list):
            records = document["results"]
    return Run(process.returncode, process.stdout + process.stderr, records)


def cases(test: str, rows) -> set[tuple[str, tuple[str, ...]]]:
    return {(test, (row.id,)) for row in rows}


API = "test_api_server_setting"
MANAGER = "test_controller_manager_setting"
SCHEDULER = "test_scheduler_setting"
ETCD = "test_etcd_setting"
AUDIT_FLAGS = "test_audit_log_setting"
ALL_CONFIGURATION_CASES = (
    cases(API, control_plane.rows_for(control_plane.APISERVER))
    | cases(MANAGER, control_plane.rows_for(control_plane.CONTROLLER_MANAGER))
    | cases(SCHEDULER, control_plane.rows_for(control_plane.SCHEDULER))
    | cases(ETCD, control_plane.rows_for(control_plane.ETCD))
    | cases(AUDIT_FLAGS, audit_logging.ROWS)
    | {("test_audit_policy_records_every_request", ("3.2.1",)),
       ("test_audit_policy_keeps_secrets_and_tokens_out_of_the_log", ("3.2.2",))}
)
# Nothing is exempt any more: the embedded cluster runs a kube-scheduler and nodes.
EMBEDDED_EXEMPT: set = set()


def test_hardened_cluster_passes_and_its_audit_log_holds_the_suites_request(hardened_cluster, tmp_path):
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={hardened_cluster.workdir}", "-rs")
    assert run.returncode == 0, run.output[-3000:]
    assert run.with_status("failed") == set() and run.with_status("error") == set()
    assert run.with_status("not_verified", MINE | {"version_currency"}) == set()
    assert run.with_status("skipped") == EMBEDDED_EXEMPT
    assert run.with_status("passed") == (ALL_CONFIGURATION_CASES - EMBEDDED_EXEMPT) | {(PROOF, ("1.2.16", "3.2.2"))}
    for record in run.records:
        if record["status"] == "skipped" and record["practice"] in MINE:
            assert record["reason"].startswith("exempt: "), record
    assert run.record("test_api_server_version_is_supported")["status"] == "passed"

    # The proof: the event the suite saw is in the API server's own log file, at Metadata, no bodies.
    [event] = run.record(PROOF)["evidence"]["events"]
    assert event["level"] == "Metadata" and event["verb"] == "get" and event["status"] == 404
    assert not event["request body recorded"] and not event["response body recorded"]
    logged = [json.loads(line) for line in hardened_cluster.audit_log_path.read_text().splitlines()
              if event["auditID"] in line]
    assert logged and {e["requestURI"] for e in logged} == {event["requestURI"]}
    assert event["requestURI"].startswith("/api/v1/namespaces/default/secrets/kubeproof-audit-proof-")

    # Flags and their defaults are evidence, and the live probe stands beside the anonymous-auth flag.
    anonymous = run.record(API, ("1.2.1",))["evidence"]
    assert anonymous["--anonymous-auth"] == "false" and anonymous["unauthenticated_get"]["status"] == 401
    assert run.record(API, ("1.2.21",))["evidence"]["--service-account-lookup"] == "true"
    assert run.record(API, ("1.2.15",))["evidence"]["live_get"] == {"request": "GET /debug/pprof/", "status": 404}


# The insecure profile turns off what Settings controls, and lacks the hardened profile's CIS extras.
INSECURE_FAILS = {
    (API, ("1.2.1",)): ("--anonymous-auth", "true"),
    (API, ("1.2.3",)): ("--enable-admission-plugins", "DenyServiceExternalIPs not enabled"),
    (API, ("1.2.4",)): ("--kubelet-client-certificate", "not set"),
    (API, ("1.2.5",)): ("--kubelet-certificate-authority", "not set"),
    (API, ("1.2.7",)): ("--authorization-mode", "RBAC"),
    (API, ("1.2.9",)): ("--enable-admission-plugins", "EventRateLimit not enabled"),
    (API, ("1.2.11",)): ("--enable-admission-plugins", "AlwaysPullImages not enabled"),
    (API, ("1.2.14",)): ("--enable-admission-plugins", "NodeRestriction not enabled"),
    (API, ("1.2.29",)): ("--tls-cipher-suites", "not set (defaults to Go's default list, which includes CBC-mode suites)"),
    (API, ("1.2.30",)): ("--service-account-extend-token-expiration", "not set (defaults to true)"),
    (MANAGER, ("1.3.1",)): ("--terminated-pod-gc-threshold", "not set (defaults to 12500)"),
    (SCHEDULER, ("1.4.1",)): ("--profiling", "not set (defaults to true)"),
    (AUDIT_FLAGS, ("1.2.16",)): ("--audit-log-path", "not set (and no --audit-webhook-config-file)"),
    (AUDIT_FLAGS, ("1.2.17",)): ("--audit-log-path", "not set: there is no audit log file to keep"),
    (AUDIT_FLAGS, ("1.2.18",)): ("--audit-log-path", "not set: there is no audit log file to keep"),
    (AUDIT_FLAGS, ("1.2.19",)): ("--audit-log-path", "not set: there is no audit log file to keep"),
    ("test_audit_policy_records_every_request", ("3.2.1",)): ("--audit-policy-file", "not set (no event is recorded)"),
    ("test_audit_policy_keeps_secrets_and_tokens_out_of_the_log", ("3.2.2",)):
        ("--audit-policy-file", "not set (no event is recorded)"),
    (PROOF, ("1.2.16", "3.2.2")): ("--audit-log-path", "not set (and no --audit-webhook-config-file)"),
}


def test_insecure_cluster_fails_exactly_the_expected_controls(insecure_cluster, tmp_path):
    run = run_suite(tmp_path / "reports", "--cluster=local", f"--local-attach={insecure_cluster.workdir}")
    assert run.returncode == 1, run.output[-3000:]
    assert run.with_status("failed") == set(INSECURE_FAILS)
    assert run.with_status("not_verified") == set() and run.with_status("error") == set()
    assert run.with_status("skipped") == EMBEDDED_EXEMPT
    for (test, cis), (path, observed) in INSECURE_FAILS.items():
        record = run.record(test, cis)
        assert [(f["path"], f["observed"]) for f in record["findings"]][0] == (path, observed), record
        for finding in record["findings"]:
            assert set(finding["controls"]) <= set(cis)
            assert finding["object"]["name"] in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
            assert finding["remediation"] and finding["expected"]
    assert "test_api_server_setting[1.2.7]" in run.output  # the failure is named in the terminal too


def test_managed_style_cluster_is_not_verified_never_passed(hardened_cluster, tmp_path):
    # The same cluster as a live context: the suite has no first-hand view of its flags and, as on a
    # managed control plane, there are no mirror pods to read them from.
    config = yaml.safe_load(hardened_cluster.kubeconfig.read_text())
    for context in config["contexts"]:
        context["name"] = "managed-style"
    config["current-context"] = "managed-style"
    kubeconfig = tmp_path / "managed-style.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    kubeconfig.chmod(0o600)

    proofs_before = hardened_cluster.audit_log_path.read_text().count("kubeproof-audit-proof-")
    run = run_suite(tmp_path / "reports", "--cluster=managed-style", f"--kubeconfig={kubeconfig}", "-rs")
    assert run.returncode == 0, run.output[-3000:]  # not verified is not a failure without --strict
    assert run.with_status("passed") == set() and run.with_status("failed") == set()
    assert run.with_status("not_verified") == ALL_CONFIGURATION_CASES
    for record in run.records:
        if record["status"] == "not_verified":
            assert "not visible" in record["reason"] and "mirror pod" in record["reason"], record
    proof = run.record(PROOF)
    assert proof["status"] == "skipped" and "cannot read it back" in proof["reason"]
    # The proof request is made only against the embedded backend, never against a live cluster.
    assert hardened_cluster.audit_log_path.read_text().count("kubeproof-audit-proof-") == proofs_before
    # Version currency needs no control-plane view: /version is enough.
    assert run.record("test_api_server_version_is_supported")["status"] == "passed"
