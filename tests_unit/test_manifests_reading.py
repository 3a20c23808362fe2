"""How --manifests reads a file: PyYAML only splits the stream and finds kind, name, namespace and line;
every scalar stays text for the API server to read, so nothing kubectl accepts is refused here.
(What the server then stores is compared with kubectl in tests_e2e/test_yaml_differential.py.)"""

from __future__ import annotations

import pytest
import yaml

from kubeproof import manifests
from kubeproof.manifests import ManifestError, _documents


@pytest.fixture(autouse=True, params=["libyaml", "pure-python"])
def splitter(request, monkeypatch):
    """Both readers must split alike: libyaml where PyYAML was built with it, Python otherwise."""
    if request.param == "pure-python":
        monkeypatch.setattr(manifests, "_Splitter", manifests._PurePythonSplitter)
    elif not yaml.__with_libyaml__:
        pytest.skip("this PyYAML has no libyaml")

TRAPS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: routes.example.com
spec:
  enum: [=, "!=", =~]
  window: 1:30
  enabled: yes
  raw: !!binary aGVsbG8=
  custom: !vendor-tag {a: 1}
"""


def test_yaml_11_traps_are_not_refused_and_reach_the_server_as_written():
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(TRAPS)  # the reader --manifests used before refused this file
    [document] = _documents(TRAPS, "crd.yaml", "/repo/crd.yaml")
    assert document.key() == ("CustomResourceDefinition", None, "routes.example.com")
    assert document.text == TRAPS
    assert document.line == 1


def test_each_document_keeps_its_own_text_and_line():
    stream = "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\n" \
             "---\n---\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: indented\n"
    first, second = _documents(stream, "f.yaml", "f.yaml")
    assert (first.line, first.key()) == (3, ("ConfigMap", "n", "a"))
    assert first.text.startswith("apiVersion: v1\n") and "indented" not in first.text
    # An indented document keeps its indentation, so its lines still line up.
    assert second.line == 8 and yaml.safe_load(second.text)["metadata"]["name"] == "indented"


def test_list_items_are_documents_of_their_own():
    stream = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: s\n" \
             "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\n"
    secret, config_map = _documents(stream, "list.yaml", "list.yaml")
    assert (secret.line, secret.key()[0]) == (4, "Secret")
    assert (config_map.line, config_map.key()[2]) == (8, "c")
    assert yaml.safe_load(config_map.text)["kind"] == "ConfigMap"


def test_json_and_release_namespace():
    [document] = _documents('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}', "j.json",
                            "j.json", namespace="release")
    assert document.key() == ("ConfigMap", None, "j") and document.namespace == "release"


def test_a_scalar_document_is_kept_for_the_api_server_to_refuse():
    [document] = _documents("just text\n", "t.yaml", "t.yaml")
    assert not isinstance(document.body, dict)


def test_broken_syntax_names_file_and_line():
    with pytest.raises(ManifestError, match=r"/repo/bad.yaml:[45]: not valid YAML"):
        _documents("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n", "bad.yaml", "/repo/bad.yaml")


def test_a_byte_order_mark_does_not_shift_the_text_sent():
    [document] = _documents("\ufeffapiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 10}",
                            "bom.yaml", "bom.yaml")
    assert document.text.endswith("replicas: 10}") and document.text.startswith("apiVersion")
