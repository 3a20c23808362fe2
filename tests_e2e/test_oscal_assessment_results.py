"""assessment-results.json from a real run: the embedded cluster audited as a managed cluster is seen
(through a context of another name, so etcd and the nodes' files are out of reach and much is not
verified). The document validates with compliance-trestle's OSCAL models, SHA256SUMS covers it, it
has an observation per result, and every control's state follows from results.json: a control is
satisfied only where results proved it, and the stored-secrets control, which could not be verified,
is not satisfied with its reason."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict

from suite_runs import run_suite
from trestle.oscal.assessment_results import AssessmentResults

from kubeproof.oscal import NAME, target_id


def test_a_managed_view_of_the_cluster_gives_a_valid_document_that_never_passes_what_was_not_verified(embedded_cluster, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(embedded_cluster.kubeconfig.read_text().replace("local", "managed"))
    run = run_suite(tmp_path / "reports", "--cluster=managed", f"--kubeconfig={kubeconfig}")
    assert run.returncode in (0, 1), run.output[-2000:]
    folder = run.run_folder
    assert NAME in (folder / "SHA256SUMS").read_text()
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0 and f"{NAME}: OK" in check.stdout, check.stdout + check.stderr

    doc = json.loads((folder / NAME).read_text())
    AssessmentResults.parse_obj(doc["assessment-results"])
    result = doc["assessment-results"]["results"][0]
    records = run.records()
    assert len(result["observations"]) == len(records)
    assert result["start"] == run.results["environment"]["started (UTC)"]

    # Each CIS control's state, recomputed from results.json: satisfied only when proven.
    statuses = defaultdict(set)
    for record in records:
        findings_name = {c for f in record["findings"] for c in f["controls"]}
        for control in record["controls"].get("cis", []):
            failing = record["status"] in ("failed", "waived", "accepted") and findings_name & set(record["controls"]["cis"])
            statuses[control].add("passed" if failing and control not in findings_name else record["status"])
    found = {f["target"]["target-id"]: f["target"]["status"] for f in result["findings"]}
    for control, seen in statuses.items():
        proven = "passed" in seen and seen <= {"passed", "skipped"}
        assert found[target_id("cis", control)]["state"] == ("satisfied" if proven else "not-satisfied"), (control, seen)
        if "not_verified" in seen:
            assert "Not verified" in found[target_id("cis", control)]["remarks"], control

    stored = next(r for r in records if r["test"] == "test_every_stored_secret_is_encrypted")
    assert stored["status"] == "not_verified"
    secrets = found[target_id("cis", stored["controls"]["cis"][0])]
    assert secrets["state"] == "not-satisfied" and " ".join(stored["reason"].split()) in secrets["remarks"]
    reviewed = {c["control-id"] for s in result["reviewed-controls"]["control-selections"] for c in s.get("include-controls", [])}
    assert {target_id("cis", c) for c in statuses} <= reviewed
