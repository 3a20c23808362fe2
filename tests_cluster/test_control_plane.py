"""The control plane runs with the settings CIS sections 1.2-1.4 and 2 ask for, read from each
component's effective command line and configuration files (kubeproof.checks.control_plane).

Where the configuration is hidden (managed control planes) every case is not verified. Where the running server can say more
than its flags, both are reported: anonymous access (1.2.1) is proven live by
tests_cluster/test_anonymous_access.py and the probe's answer is attached here as well; profiling
(1.2.15) is also judged by an authenticated GET of /debug/pprof/ (served means on, whatever the flag says)."""

import pytest

from kubeproof.checks import control_plane

pytestmark = [pytest.mark.control_plane, pytest.mark.nsa("Network separation and hardening: control plane hardening")]


def cases(component: str) -> list:
    return [pytest.param(row, marks=pytest.mark.cis(row.id), id=row.id) for row in control_plane.rows_for(component)]


def judge(control, cluster, snapshot, probes, verdict) -> None:
    config = snapshot.component_config(control.component)
    verdict.observe(component=control.component, source=config.source, expected=control.rule.expected)
    verdict.observe(**control_plane.evidence(control, config.flags, config.files))
    if control.live_proof:
        verdict.observe(live_proof=control.live_proof, unauthenticated_get=probes.anonymous("/version").summary())
    if control.needs_nodes and not snapshot.items("nodes"):
        verdict.exempt(f"{control.id} protects what runs on nodes, and this cluster has none")
    found = control_plane.findings(control, config.flags, config.files)
    if control.live_get:
        answer = cluster.request("GET", control.live_get)
        verdict.observe(live_get={"request": f"GET {control.live_get}", "status": answer.status})
        found += control_plane.live_get_findings(control, answer.status)
    verdict(found)


@pytest.mark.parametrize("control", cases(control_plane.APISERVER))
def test_api_server_setting(control, cluster, snapshot, probes, verdict):
    judge(control, cluster, snapshot, probes, verdict)


@pytest.mark.parametrize("control", cases(control_plane.CONTROLLER_MANAGER))
def test_controller_manager_setting(control, cluster, snapshot, probes, verdict):
    judge(control, cluster, snapshot, probes, verdict)


@pytest.mark.parametrize("control", cases(control_plane.SCHEDULER))
def test_scheduler_setting(control, cluster, snapshot, probes, verdict):
    judge(control, cluster, snapshot, probes, verdict)


@pytest.mark.parametrize("control", cases(control_plane.ETCD))
def test_etcd_setting(control, cluster, snapshot, probes, verdict):
    judge(control, cluster, snapshot, probes, verdict)
