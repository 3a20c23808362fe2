"""Pod Security Standards per workload: every controller's pod template, and every bare pod, judged
once against the level the baseline requires for its namespace, at the policy version the namespace
pins. Unlike the namespace tests, this also sees templates whose pods do not exist yet."""

import pytest

from kubeproof.checks import pod_security_workloads as pss
from kubeproof.checks._workload import namespace_of

pytestmark = [pytest.mark.pod_security, pytest.mark.nsa("Kubernetes Pod security")]


@pytest.fixture(scope="module")
def namespaces_by_name(snapshot):
    return pss.namespaces_by_name(snapshot.items("namespaces"))


@pytest.mark.cis(*pss.CIS_CONTROLS)
@pytest.mark.pss(*pss.CHECK_IDS)
def test_workload_meets_the_required_pod_security_level(workload, baseline, namespaces_by_name, verdict):
    namespace = namespace_of(workload)
    level = baseline.required_pod_security(namespace)
    if level == "privileged":
        verdict.exempt(f"the baseline lets namespace {namespace} run privileged pods")
    listed = namespaces_by_name.get(namespace)
    version = pss.policy_version(listed)
    verdict.observe(required_level=level, policy_version=version, namespace_found=listed is not None)
    verdict(pss.pod_security_findings(workload, level, version))
