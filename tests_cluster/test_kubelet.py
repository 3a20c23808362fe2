"""Every node's kubelet runs with the settings CIS section 4.2 asks for, read from the kubelet itself:
its running configuration (/configz, where an absent field is its zero value), its command line
(/flagz), and live requests. An unauthenticated GET /pods must get 401 (4.2.1), the same GET by an
identity that holds no rights must get 403 (4.2.2), a client certificate the cluster's CA signed must
be recognised (4.2.3), the read-only port must not answer (4.2.4), and the serving certificate must
verify against the cluster's CA (4.2.9). Where a probe and the
configuration disagree, the probe decides and the evidence keeps both. One result per node: the node
is what a person fixes, and each finding names its control. A kubelet that cannot be reached or read
is not verified for that node, never passed."""

import pytest

from kubeproof.checks import kubelet, kubelet_probes
from kubeproof.checks.kubelet_probes import Outcome
from kubeproof.results import NotVerified

pytestmark = [pytest.mark.kubelet, pytest.mark.nsa("Kubernetes Pod security: node hardening")]

CONFIGURATION = tuple(row for row in kubelet.ROWS if not row.uses_flags)
COMMAND_LINE = tuple(row for row in kubelet.ROWS if row.uses_flags)


@pytest.mark.cis(*(row.id for row in CONFIGURATION))
def test_kubelet_configuration(node, kubelets, verdict):
    facts = kubelets.facts(node)
    verdict.observe(kubelet=facts.endpoint.url if facts.endpoint.port else facts.endpoint.problem,
                    requests=facts.replies, configuration_source=facts.configz_source or None)
    configz = facts.configz
    found, probes = kubelet_probes.judge(
        facts.node, configz, Outcome.of(facts.anonymous_pods), Outcome.of(facts.no_rights_pods),
        Outcome.of(facts.read_only), Outcome.of(facts.serving), Outcome.of(facts.client_certificate))
    verdict.observe(probes=probes)
    if configz is None:
        verdict(found)  # what the probes proved fails the node even without its configuration
        raise NotVerified(facts.configz_problem or "the kubelet's configuration could not be read")
    verdict.observe(settings={row.id: kubelet.evidence(row, configz, None) for row in CONFIGURATION})
    unknown = [f"{control}: neither a probe nor the configuration settled it" for control in probes.get("unsettled", ())]
    for row in CONFIGURATION:
        if row.id not in kubelet_probes.PROBED:
            try:
                found += kubelet.findings(row, configz, None, facts.node)
            except NotVerified as reason:
                unknown.append(f"{row.id}: {reason.reason}")
    verdict(found)
    if unknown:
        raise NotVerified("; ".join(unknown))


@pytest.mark.cis(*(row.id for row in COMMAND_LINE))
def test_kubelet_command_line(node, kubelets, verdict):
    facts = kubelets.facts(node)
    flags = facts.flags()
    for row in COMMAND_LINE:
        verdict.observe(command_line_source=facts.flagz_source or facts.flagz_problem,
                        **{row.id: kubelet.evidence(row, flags, flags)})
        if flags is None:
            raise NotVerified(f"the kubelet's command line is not in /configz, and /flagz could not be read: "
                              f"{facts.flagz_problem}")
        verdict(kubelet.findings(row, None, flags, facts.node))
