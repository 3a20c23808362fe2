"""No fault in what the API server answers turns into a false pass.

The suite audits a seeded embedded cluster as a live cluster, through tests_e2e/faultproxy.py, once
without faults and then once per (fault, target) pair with one fault injected (see faults.py for
the targets, the faults and how a run is judged). This is a representative subset, sized for
`make test`: every fault on four central targets (the namespace list, read by most tests; the Role
list, read through a module-scoped fixture; the privileged-pod dry-run; /version, asked at start-up)
and one fault on every other target, rotating through the faults. `python bench/fault_matrix.py`
runs every pair.

The pairs run two at a time (KUBEPROOF_FAULT_JOBS), each through a proxy of its own. Set
KUBEPROOF_FAULT_RESULTS to a file path (or to 1 for bench/results/fault-injection-subset.json) to keep
the verdicts."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import faults
import pytest
from faultproxy import TOKEN

from kubeproof.backends.http import KubeHttp
from kubeproof.controlplane import EmbeddedCluster

CENTRAL = ("list namespaces", "list roles", "dry-run pod", "GET /version")
RESULTS_ENV = "KUBEPROOF_FAULT_RESULTS"
JOBS = max(1, int(os.environ.get("KUBEPROOF_FAULT_JOBS", "2")))  # suite runs at a time (2 cores)


def subset() -> list[tuple[str, str]]:
    pairs = [(fault, name) for name in CENTRAL for fault in faults.TARGETS[name].faults(full=False)]
    turn = 0
    for name, target in faults.TARGETS.items():
        if name in CENTRAL:
            continue
        kind = faults.KINDS.get(name.removeprefix("list "))
        choices = [f for f in target.faults(full=True) if (f, name) not in faults.INDISTINGUISHABLE
                   # A kind this cluster does not serve has no pages to fault.
                   and not (kind and kind.optional and (f == "gone" or "@" in f))]
        pairs.append((choices[turn % len(choices)], name))
        turn += 1
    return pairs


PAIRS = subset()
VERDICTS: list[faults.Verdict] = []


@dataclass
class Audited:
    cluster: EmbeddedCluster
    proxy: faults.FaultProxy
    clean: faults.Run  # the suite through the proxy without faults
    seen: list  # the requests it sent
    work: Path


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """The seeded cluster, the proxy in front of it, and the suite's run through it without faults."""
    with EmbeddedCluster(profile="hardened") as cluster:
        faults.seed(cluster)
        proxy = faults.start_proxy(cluster)
        try:
            work = tmp_path_factory.mktemp("faults")
            clean = faults.run_suite(proxy, work / "clean")
            assert clean.returncode in (0, 1) and clean.results, clean.output[-3000:]
            yield Audited(cluster, proxy, clean, list(proxy.seen), work)
        finally:
            proxy.stop()


def _through(proxy, token: bool = True) -> KubeHttp:
    return KubeHttp(proxy.url, None, None, None, auth_headers=lambda: {"Authorization": f"Bearer {TOKEN}"} if token else {})


def test_the_proxy_passes_answers_through_unchanged(audited):
    proxy, cluster = audited.proxy, audited.cluster
    assert "Traceback (most recent call last)" not in audited.clean.output
    # A large list, unpaged: the same objects as asked directly.
    path = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    answer = _through(proxy).request("GET", path)
    _, direct = cluster.api_request("GET", path)
    assert answer.status == 200 and len(answer.body["items"]) == len(direct["items"]) > 50
    assert {i["metadata"]["name"] for i in answer.body["items"]} == {i["metadata"]["name"] for i in direct["items"]}
    # Warnings travel in Warning headers, several to an answer (here: deprecated node labels).
    spec = dict(faults._pod_spec("fault-app"), nodeSelector={"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux"})
    warned = _through(proxy).request("POST", f"/api/v1/namespaces/{faults.NAMESPACE}/pods", query={"dryRun": "All"},
                                     body={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "warned"}, "spec": spec})
    assert warned.status == 201 and len(warned.warnings) == 2 and all("deprecated" in w for w in warned.warnings)
    # Errors pass through as the server's own Status, and a request without the token stays anonymous.
    missing = _through(proxy).request("GET", f"/api/v1/namespaces/{faults.NAMESPACE}/configmaps/absent")
    assert missing.status == 404 and missing.body["reason"] == "NotFound"
    anonymous = _through(proxy, token=False).request("GET", "/api")
    assert anonymous.status == 401 and not proxy.seen[-1].authenticated
    # The suite's own run: both kinds of caller, and every list paged.
    assert {s.authenticated for s in audited.seen} == {True, False}
    snapshot = audited.clean.results["snapshot"]
    assert all(read["pages"] > 1 for name, read in snapshot.items() if read["count"] > 1), snapshot
    assert [r for r in audited.clean.records() if r["status"] == "passed"]


@pytest.fixture(scope="module")
def verdicts(audited, request) -> dict[tuple[str, str], faults.Verdict]:
    """The verdict of every selected pair, JOBS runs at a time, each through a proxy of its own."""
    selected = [(item.callspec.params["fault"], item.callspec.params["target"]) for item in request.session.items
                if item.originalname == "test_no_fault_becomes_a_pass"]
    extra = [faults.start_proxy(audited.cluster) for _ in range(JOBS - 1)]
    try:
        found = faults.run_pairs([audited.proxy, *extra], [(f, faults.TARGETS[t]) for f, t in selected],
                                 audited.clean, audited.seen, audited.work, per_file=1)
    finally:
        for proxy in extra:
            proxy.stop()
    VERDICTS.extend(found)
    return {(v.fault, v.target): v for v in found}


@pytest.mark.parametrize("fault,target", PAIRS, ids=[f"{f}-{t.replace(' ', '_')}" for f, t in PAIRS])
def test_no_fault_becomes_a_pass(verdicts, fault, target):
    verdict = verdicts[(fault, target)]
    if not verdict.tried:
        pytest.skip(f"the suite does not ask for {target} (or it does not page) on this cluster")
    assert verdict.false_passes == [], f"{fault} on {target} passed: {verdict.false_passes}"
    assert verdict.problems == [], verdict.problems


def test_strict_fails_a_run_whose_answers_were_faulty(audited, tmp_path):
    proxy, clean = audited.proxy, audited.clean
    target = faults.TARGETS["list networkpolicies"]
    paths = faults.paths_for(target, clean)
    healthy = faults.run_suite(proxy, tmp_path / "healthy", paths, "--strict")
    assert healthy.returncode == 0, healthy.output[-3000:]
    proxy.inject(target.rule("500"))
    try:
        faulty = faults.run_suite(proxy, tmp_path / "faulty", paths, "--strict")
    finally:
        proxy.clear()
    assert faulty.returncode == 1, faulty.output[-3000:]
    assert "NOT VERIFIED (--strict)" in faulty.output and "500 from GET /apis/networking.k8s.io/v1/networkpolicies" in faulty.output


def test_fault_injection_summary(capsys):
    summary = faults.summary(VERDICTS)
    with capsys.disabled():
        print(f"\nfault injection (subset): {summary['pairs_tried']} pairs tried of {summary['pairs']}, "
              f"{summary['false_passes']} false passes")
    target = os.environ.get(RESULTS_ENV)
    if target:
        path = Path(target if target != "1" else Path(__file__).resolve().parents[1] / "bench/results/fault-injection-subset.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"summary": summary, "verdicts": [v.to_dict() for v in VERDICTS]}, indent=1) + "\n")
    if len(VERDICTS) < len(PAIRS):
        pytest.skip(f"only {len(VERDICTS)} of the {len(PAIRS)} pairs ran (a selection)")
    assert summary["false_passes"] == 0, summary["pairs_with_false_passes"]
    assert summary["pairs_tried"] >= len(PAIRS) - len(summary["not_asked"]) > 0
