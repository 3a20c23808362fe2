"""Many clusters in one run: a kubeconfig with a hardened cluster, an insecure one and one nobody
answers for, audited with --cluster='fleet-*'. Each reachable cluster gets a run folder of its own,
the unreachable one is reported with its endpoint without stopping the others, the fleet folder counts
each run as its results.json does, and the run exits 3, the worst of its clusters' statuses."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import yaml
from suite_runs import run_suite


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fleet_kubeconfig(path: Path, members: dict, unreachable: str) -> Path:
    """One context per embedded cluster, with the identity the suite audits it as, and one context
    whose API server is a loopback port nothing listens on."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "fleet-hardened",
              "clusters": [], "users": [], "contexts": []}
    for name, cluster in members.items():
        own = yaml.safe_load(cluster.suite_kubeconfig.read_text())
        config["clusters"].append({"name": name, "cluster": own["clusters"][0]["cluster"]})
        config["users"].append({"name": name, "user": own["users"][0]["user"]})
        config["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})
    config["clusters"].append({"name": "gone", "cluster": {"server": unreachable, "insecure-skip-tls-verify": True}})
    config["users"].append({"name": "gone", "user": {"token": "not-a-real-token"}})
    config["contexts"].append({"name": "fleet-unreachable", "context": {"cluster": "gone", "user": "gone"}})
    config["contexts"].append({"name": "elsewhere", "context": {"cluster": "gone", "user": "gone"}})
    path.write_text(yaml.safe_dump(config))
    return path


def test_three_clusters_in_one_run(tmp_path, hardened_cluster, insecure_cluster):
    endpoint = f"https://127.0.0.1:{_closed_port()}"
    kubeconfig = _fleet_kubeconfig(tmp_path / "config", {"fleet-hardened": hardened_cluster,
                                                          "fleet-insecure": insecure_cluster}, endpoint)
    # A baseline folder: the hardened cluster has its own file there, the others take default.yaml.
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    default = Path(__file__).resolve().parents[1] / "baselines" / "default.yaml"
    (baselines / "default.yaml").write_text(default.read_text())
    (baselines / "fleet-hardened.yaml").write_text(default.read_text() + "\n# the hardened cluster's own\n")
    reports = tmp_path / "reports"

    run = run_suite(reports, f"--kubeconfig={kubeconfig}", "--cluster=fleet-*", f"--baseline={baselines}", timeout=1200)

    assert run.returncode == 3, run.output[-4000:]
    assert f"cannot reach the API server {endpoint}" in run.output
    # Each folder by what it holds: the fleet's summary, or the run of the cluster its evidence names.
    folders = {"fleet" if (p / "fleet.json").exists() else json.loads((p / "results.json").read_text())["environment"]["cluster"]: p
               for p in reports.iterdir()}
    assert set(folders) == {"fleet-hardened", "fleet-insecure", "fleet"}, sorted(p.name for p in reports.iterdir())
    for folder in folders.values():
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder, check=True)
    summary = json.loads((folders["fleet"] / "fleet.json").read_text())
    assert summary["exit_status"] == 3
    by_name = {c["cluster"]: c for c in summary["clusters"]}
    assert list(by_name) == ["fleet-hardened", "fleet-insecure", "fleet-unreachable"]  # 'elsewhere' not matched

    gone = by_name["fleet-unreachable"]
    assert (gone["exit_status"], gone["verdict"], gone["run_folder"], gone["endpoint"]) == (3, "unreachable", None, endpoint)
    assert endpoint in gone["reason"]
    assert by_name["fleet-insecure"]["exit_status"] == 1 and by_name["fleet-insecure"]["verdict"] == "fail"
    assert by_name["fleet-hardened"]["baseline"] == str(baselines / "fleet-hardened.yaml")
    assert by_name["fleet-insecure"]["baseline"] == str(baselines / "default.yaml")

    # The fleet counts each run as its own results.json does, control by control.
    for name in ("fleet-hardened", "fleet-insecure"):
        entry = by_name[name]
        assert entry["run_folder"] == folders[name].name
        results = json.loads((folders[name] / "results.json").read_text())
        assert entry["results"] == results["counts"]
        assert entry["fingerprint"] == results["environment"]["cluster fingerprint"]
        for control, counts in results["summary_by_control"].items():
            assert summary["controls"][control][name]["counts"] == counts
            status = summary["controls"][control][name]["status"]
            assert (status == "failed") == bool(counts.get("failed") or counts.get("error")), (name, control, counts)
            assert status != "proved" or set(counts) <= {"passed", "skipped"}
        assert sum(entry["controls"].values()) == len(summary["controls"])
    assert all(row["fleet-unreachable"]["status"] == "not verified" for row in summary["controls"].values())
    # The insecure cluster fails controls the hardened one proves.
    differ = [c for c, row in summary["controls"].items()
              if row["fleet-insecure"]["status"] == "failed" and row["fleet-hardened"]["status"] == "proved"]
    assert differ, "no control told the two clusters apart"

    markdown = (folders["fleet"] / "fleet.md").read_text()
    page = (folders["fleet"] / "fleet.html").read_text()
    for name in by_name:
        assert name in markdown and name in page
    assert f"| {differ[0]} | proved | failed | not verified |" in markdown
    assert f'href="../{folders["fleet-insecure"].name}/{folders["fleet-insecure"].name}.html"' in page
    assert "not-a-real-token" not in markdown + page + run.output
