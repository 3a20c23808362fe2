"""Runtime monitoring: every node agent the baseline expects (log shipping, monitoring, runtime
security) runs and is ready on every node it should watch, as its DaemonSet's controller reports."""

import pytest

from kubeproof.checks import monitoring

pytestmark = [pytest.mark.monitoring, pytest.mark.nsa("Audit logging and threat detection")]


# No CIS 1.12 control asks for node agents: this test carries the NSA section only. The baseline's
# monitoring.daemonsets gives one case per entry; with none listed, pytest skips it as an empty set.
def test_monitoring_agent_is_ready_on_every_node(expected_agent, snapshot, verdict):
    daemonsets = snapshot.items("daemonsets")
    nodes = snapshot.items("nodes")
    findings = monitoring.agent_findings(expected_agent, daemonsets, nodes)
    verdict.observe(expected=expected_agent, **monitoring.agent_evidence(expected_agent, daemonsets, nodes))
    verdict(findings)
