"""The real-world corpus (tests_e2e/corpus.py): each published configuration set, fetched through the
Go module proxy at its pinned version, is audited with `--manifests` the way a user would run it. It
must run to completion: exit 0 or 1 (findings are expected, these are other people's defaults), never
2 (kubeproof refused input that kubectl or Helm accepts) or 3. Its documents must reach the API
server, and the findings are printed (and kept in junit.xml) for a person to judge."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from corpus import HELM, SETS, fetch
from suite_runs import object_name, run_suite

ACCEPTED = "test_manifest_is_accepted_by_the_api_server"
SHOWN_PER_TEST = 2  # findings printed per failing test, enough to judge them
# Where a chart's finding may point: the template (or CRD file) and line it was written at, or the
# Chart.yaml of the release whose namespace the install creates.
CHART_SOURCE = re.compile(r"^(?:[^/]+/)*(?:(?:templates|crds)/.+\.(?:ya?ml|tpl|json)|Chart\.yaml):\d+$")


def _finding_lines(records: list[dict]) -> list[str]:
    lines, shown = [], Counter()
    for record in records:
        if shown[record["test"]] >= SHOWN_PER_TEST:
            continue
        shown[record["test"]] += 1
        where = (record.get("object") or {}).get("source") or ""
        for finding in (record.get("findings") or [])[:1]:
            lines.append(f"  {record['test']}: {object_name(record.get('object'))} ({where}) "
                         f"{finding.get('path')} is {finding.get('observed')!r}; expected {finding.get('expected')}"[:400])
    return lines


def _chart_defaults(chart) -> set[tuple[str, str]]:
    """(kind, name) of what the chart installs with no values file of ours."""
    from kubeproof import manifests

    return {(d.key()[0], d.key()[2]) for d in manifests.load(chart)}


@pytest.mark.parametrize("config_set", SETS, ids=[s.name for s in SETS])
def test_published_config_set_is_audited(config_set, tmp_path, record_property):
    folder = fetch(config_set, tmp_path / "sets")
    args = [f"--manifests={folder}"]
    if config_set.values_file:
        args.append(f"--helm-values={config_set.values_file}")
    run = run_suite(tmp_path / "reports", *args)
    assert run.returncode in (0, 1), f"{config_set.pin} {config_set.subfolder}: exit {run.returncode}\n{run.output[-3000:]}"

    documents = [r for r in run.records() if r["test"] == ACCEPTED]
    applied = [r for r in documents if r["status"] == "passed"]
    rejected = [r for r in documents if r["status"] != "passed"]
    assert applied, f"{config_set.name}: no document reached the API server\n{run.output[-3000:]}"
    if config_set.documents:
        assert len(documents) == config_set.documents, f"{config_set.name}: {len(documents)} documents read"
    if config_set.traps:
        # A scalar misread by YAML 1.1 rules would change the object or have it refused.
        assert not rejected, [(r["object"], r["findings"]) for r in rejected]

    failed = run.records("failed")
    if config_set.kind == HELM:
        sources = {(r.get("object") or {}).get("source") for r in failed if (r.get("object") or {}).get("source")}
        assert sources and all(CHART_SOURCE.match(source) for source in sources), sorted(sources)
    if config_set.values_file:
        # The values file reached the render: the suite installed other objects than the defaults make.
        installed = {(r["object"]["kind"], r["object"]["name"]) for r in documents}
        assert installed != _chart_defaults(folder), sorted(installed)
    by_test = Counter(r["test"] for r in failed)
    report = [f"{config_set.name} ({config_set.pin} {config_set.subfolder}, {config_set.kind}): exit {run.returncode}, "
              f"{len(documents)} documents, {len(applied)} applied, {len(rejected)} rejected, "
              f"{len(failed)} failed results",
              *(f"  {count:4d} x {test}" for test, count in by_test.most_common()),
              *_finding_lines(failed)]
    print("\n".join(report))
    record_property("corpus", "\n".join(report))
