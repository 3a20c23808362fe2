"""--manifests stores what kubectl stores: documents full of YAML 1.1 traps (`=`, `yes`, `1:30`, `0o17`,
`~`, dates, quoted and plain), applied through kubeproof and through
`kubectl apply --server-side --dry-run=server` (kubectl of the API server's own release), give the
same objects, and the same documents are refused by both.

Scalars go where their type matters: ConfigMap data (strings only, so a scalar read as a boolean or a
number is refused), annotations, and the spec of a custom resource that keeps whatever it is given
(its schema preserves unknown fields), as values, list items and keys."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kubeproof import manifests
from kubeproof.controlplane.build import pinned

GROUP = "probes.kubeproof.test"
PROBE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"yamlprobes.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"plural": "yamlprobes", "singular": "yamlprobe", "kind": "YamlProbe"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {"spec": {"type": "object",
                                                           "x-kubernetes-preserve-unknown-fields": True}}}}}]},
}

# Scalars whose meaning differs between YAML 1.1 (PyYAML), YAML 1.2 and Go's YAML readers.
TRAPS = ("=", "!=", "=~", "!~", "1:30", "190:20:30", "12:30:45", "yes", "no", "Yes", "NO", "on", "off", "On",
         "y", "n", "Y", "N", "true", "False", "TRUE", "~", "null", "Null", "NULL", "0o17", "017", "0x1F",
         "0b101", "1_000", "+12", "-0", ".5", "1.", "1e3", "1E3", "6.8523015e+5", "685.230_15e+03", ".inf",
         "-.Inf", ".NaN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2002-12-14 21:59:43.10 -5",
         "08", "09", "1,000", "<<", "0.", "3", "-7", "12e", "a=b", "k8s", "x:y", "=>", "1:2:3:4")
# A plain scalar may not start with an indicator, hold ": " or " #", or end in ":" or a space.
PLAIN = re.compile(r"^(?![-?:,\[\]{}#&*!|>'\"%@`~ ])(?!.*(: | #|:$| $))[^\n\t]*$")
EXPECTED_CASES = 1000
BATCH = 40


def _scalars():
    generated = st.text(alphabet="abyYnNoO019=~.:+-_e, ", max_size=8)
    return st.one_of(st.sampled_from(TRAPS), generated)


@st.composite
def _written(draw, flow: bool = False) -> str:
    """One scalar, written plain where YAML allows it (inside [] or {} no flow indicator or colon
    either), else single- or double-quoted."""
    return _styled(draw, draw(_scalars()), flow)


def _styled(draw, value: str, flow: bool = False) -> str:
    plain = bool(value) and PLAIN.match(value) and not (flow and re.search(r"[,\[\]{}:]", value))
    styles = ["single", "double"] + (["plain", "plain"] if plain else [])
    style = draw(st.sampled_from(styles))
    if style == "plain":
        return value
    if style == "single":
        return "'" + value.replace("'", "''") + "'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def _document(draw, name: str) -> str:
    if draw(st.booleans()):
        data = "".join(f"  k{i}: {draw(_written())}\n" for i in range(draw(st.integers(1, 3))))
        return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
                f"  annotations:\n    note: {draw(_written())}\ndata:\n{data}")
    # Distinct texts: a duplicate key makes kubectl drop the whole stream, which only costs time.
    keys = [_styled(draw, key) for key in draw(st.lists(_scalars(), min_size=1, max_size=3, unique=True))]
    body = "".join(f"  {key}: {draw(_written())}\n" for key in keys)
    items = "".join(f"  - {draw(_written())}\n" for _ in range(draw(st.integers(0, 3))))
    listed = f"  list:\n{items}" if items else "  list: []\n"
    flow = ", ".join(draw(st.lists(_written(flow=True), max_size=3)))
    return (f"apiVersion: {GROUP}/v1\nkind: YamlProbe\nmetadata:\n  name: {name}\nspec:\n{body}"
            f"{listed}  flow: [{flow}]\n  nested: {{v: {draw(_written(flow=True))}}}\n")


@st.composite
def _batch(draw) -> list[str]:
    return [draw(_document(f"probe-{i}")) for i in range(BATCH)]


VOLATILE = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")


def _comparable(obj: dict) -> dict:
    metadata = {k: v for k, v in obj["metadata"].items() if k not in VOLATILE}
    return {**obj, "metadata": metadata}


def _kubectl_dry_run(cluster, namespace: str, texts: list[str]) -> dict[str, dict]:
    """name -> object kubectl's server-side dry-run would store; refused documents are absent."""
    def run(stream: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(pinned().kubectl), f"--kubeconfig={cluster.kubeconfig}", "-n", namespace, "apply",
                               "--server-side", "--dry-run=server", "--field-manager=reference", "-o", "json",
                               "-f", "-"], input=stream, capture_output=True, text=True, timeout=120)

    done = run("---\n".join(texts))
    if done.returncode != 0:
        # A refusal anywhere leaves kubectl's -o json output empty for the whole stream (the server
        # refusing one document, or kubectl's own reader refusing one, a duplicate key, say): ask one
        # document at a time.
        outputs = [run(text) for text in texts]
    else:
        outputs = [done]
    stored: dict[str, dict] = {}
    for output in outputs:
        for chunk in _json_values(output.stdout):
            for obj in chunk.get("items", [chunk]) if chunk.get("kind") == "List" else [chunk]:
                stored[obj["metadata"]["name"]] = obj
    return stored


def _json_values(text: str):
    decoder, position = json.JSONDecoder(), 0
    while (position := _skip_space(text, position)) < len(text):
        value, position = decoder.raw_decode(text, position)
        yield value


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


@pytest.fixture(scope="module")
def probe_cluster(hardened_cluster):
    status, answer = hardened_cluster.api_request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                                  PROBE_CRD)
    assert status in (201, 409), answer
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _ = hardened_cluster.api_request("GET", f"/apis/{GROUP}/v1/yamlprobes")
        if status == 200:
            return hardened_cluster
        time.sleep(0.2)
    pytest.fail("the YamlProbe resource was never served")


def test_kubeproof_stores_what_kubectl_stores(probe_cluster):
    counter = itertools.count()
    cases = []

    # No shrinking: a batch takes seconds and the failing document is named in the message anyway.
    @settings(max_examples=EXPECTED_CASES // BATCH, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(_batch())
    def same_objects(texts):
        namespace = f"yaml-differential-{next(counter)}"
        status, answer = probe_cluster.api_request("POST", "/api/v1/namespaces",
                                                   {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": namespace}})
        assert status == 201, answer
        reference = _kubectl_dry_run(probe_cluster, namespace, texts)
        documents = manifests._documents("---\n".join(texts), "generated.yaml", "generated.yaml", namespace)
        assert len(documents) == len(texts), "kubeproof split the stream differently from the texts it was built from"
        manifests.apply(probe_cluster, documents)
        for document, text in zip(documents, texts, strict=True):
            _, _, name = document.key()
            assert (document.outcome == "applied") == (name in reference), (
                f"kubectl {'stored' if name in reference else 'refused'} what kubeproof "
                f"{document.outcome}:\n{text}\n{document.answer}")
            if name in reference:
                plural = "configmaps" if document.body["kind"] == "ConfigMap" else "yamlprobes"
                base = "/api/v1" if plural == "configmaps" else f"/apis/{GROUP}/v1"
                status, stored = probe_cluster.api_request("GET", f"{base}/namespaces/{namespace}/{plural}/{name}")
                assert status == 200, stored
                assert _comparable(stored) == _comparable(reference[name]), text
            cases.append(document.outcome)
        probe_cluster.api_request("DELETE", f"/api/v1/namespaces/{namespace}")

    same_objects()
    assert len(cases) >= EXPECTED_CASES
    # Both verdicts must be exercised, or the property proves nothing about refusals.
    assert cases.count("applied") > 100 and cases.count("rejected") > 100, (cases.count("applied"),
                                                                          cases.count("rejected"))
