"""Pod Security Standards per namespace: the enforce label, and what the admission chain really does
with it (labels alone can lie when the plugin is off or the namespace is exempted)."""

import pytest

from kubeproof.checks import pod_security_admission as psa
from kubeproof.results import NotVerified

pytestmark = [pytest.mark.pod_security, pytest.mark.nsa("Kubernetes Pod security")]


@pytest.fixture(scope="module", autouse=True)
def admission_asked_ahead(snapshot, baseline, probes, request):
    """Every namespace's dry-runs, asked four at a time before the first test: one by one, they were
    most of this module's time on a cluster of 1,000 namespaces. Each test still asks its own
    question and keeps its own answer as evidence."""
    questions = []
    try:
        minor = request.getfixturevalue("server_minor")
        for namespace in snapshot.items("namespaces"):
            name = psa.namespace_name(namespace)
            required = baseline.required_pod_security(name)
            if required != "privileged":
                questions += [(probes.privileged_pod, name), (probes.pod_security_is_live, name),
                              (probes.pod_security_label, name, psa.dry_run_label_patch(namespace, required, minor))]
    except Exception:  # noqa: BLE001 - only a speed-up: the tests meet the same problem and report it
        pass
    probes.ask_ahead(questions)


@pytest.mark.cis(*psa.LABEL_CONTROLS)
def test_namespace_enforces_required_level(namespace, baseline, verdict):
    required = baseline.required_pod_security(psa.namespace_name(namespace))
    verdict.observe(required=required, enforce_label=psa.enforced_level(namespace) or "absent")
    verdict(psa.label_findings(namespace, required))


@pytest.mark.cis(*psa.ADMISSION_CONTROLS)
def test_admission_rejects_a_privileged_pod(namespace, baseline, probes, verdict):
    name = psa.namespace_name(namespace)
    required = baseline.required_pod_security(name)
    if required == "privileged":
        verdict.exempt(f"the baseline lets namespace {name} run privileged pods")
    answer = probes.privileged_pod(name)
    verdict.observe(dry_run=answer.summary())
    verdict(psa.privileged_probe_findings(namespace, answer.status, answer.message, required))


@pytest.mark.cis(*psa.ADMISSION_CONTROLS)
def test_existing_pods_meet_the_required_level(namespace, baseline, probes, server_minor, verdict):
    name = psa.namespace_name(namespace)
    required = baseline.required_pod_security(name)
    if required == "privileged":
        verdict.exempt(f"the baseline lets namespace {name} run privileged pods")
    liveness = probes.pod_security_is_live(name)
    verdict.observe(pod_security_liveness=liveness.summary())
    if not psa.pod_security_answered(liveness.status, liveness.message):
        raise NotVerified("PodSecurity admission did not validate the namespace's labels, so a silent dry-run proves nothing")
    answer = probes.pod_security_label(name, psa.dry_run_label_patch(namespace, required, server_minor))
    verdict.observe(dry_run=answer.summary())
    verdict(psa.existing_pod_findings(namespace, answer.status, answer.warnings, required))
