"""Helm charts rendered for --manifests (kubeproof/helm.py), with helm built from tools/helm.

The chart in data/helm/shop has a template of two documents that helm emits in the other order, a
document behind a condition, a range loop, a test hook, a subchart in charts/ and two CRDs in one
crds/ file. The first test builds helm when the cache has none (minutes, once per machine)."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from kubeproof import helm
from kubeproof.controlplane.build import pinned

DATA = Path(__file__).parent / "data" / "helm"
SHOP = DATA / "shop"


def where(documents: list[helm.Rendered]) -> dict[tuple[str, str], tuple[str, int]]:
    found = {}
    for document in documents:
        body = yaml.safe_load(document.text)
        found[(body["kind"], body["metadata"]["name"])] = (document.source, document.line)
    return found


def pod_spec(documents: list[helm.Rendered], kind: str) -> dict:
    bodies = [yaml.safe_load(d.text) for d in documents]
    return next(b for b in bodies if b["kind"] == kind)["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def shop() -> list[helm.Rendered]:
    return helm.render(SHOP)


def test_a_folder_with_chart_yaml_is_a_chart(tmp_path):
    assert helm.is_chart(SHOP)
    assert helm.is_chart(SHOP / "charts" / "cache")
    assert not helm.is_chart(SHOP / "templates")
    assert not helm.is_chart(tmp_path)


def test_every_document_names_its_file_and_the_line_it_starts_at(shop):
    assert where(shop) == {
        ("CustomResourceDefinition", "widgets.shop.example.com"): ("crds/widgets.yaml", 2),
        ("CustomResourceDefinition", "gadgets.shop.example.com"): ("crds/widgets.yaml", 18),
        # Two documents of one template: helm emits the Service first, each keeps its own line.
        ("Deployment", "shop-web"): ("templates/app.yaml", 2),
        ("Service", "shop-web"): ("templates/app.yaml", 29),
        # The document after a `---` inside a false condition, and a range loop's every document.
        ("ConfigMap", "queue-index"): ("templates/queues.yaml", 8),
        ("ConfigMap", "queue-orders"): ("templates/queues.yaml", 16),
        ("ConfigMap", "queue-invoices"): ("templates/queues.yaml", 16),
        ("StatefulSet", "shop-cache"): ("charts/cache/templates/statefulset.yaml", 1),
    }
    for document in shop:
        lines = (SHOP / document.source).read_text().splitlines()
        assert lines[document.line - 1].startswith("apiVersion:"), document.where


def test_the_release_is_named_after_the_chart_and_installs_into_a_namespace_of_that_name(shop):
    assert {d.namespace for d in shop} == {"shop"}
    assert helm.release_name(SHOP) == "shop"
    named = helm.render(SHOP, namespace="store", release="front")
    assert {d.namespace for d in named} == {"store"}
    assert ("Deployment", "front-web") in where(named)


def test_test_hooks_are_left_out_and_no_marker_is_left_in_the_text(shop):
    assert not any(d.source.startswith("templates/tests/") for d in shop)
    assert not any("kubeproof-template" in d.text or "# Source:" in d.text for d in shop)


def test_chart_defaults_apply_and_values_files_override_them_in_order(shop, tmp_path):
    assert "securityContext" not in pod_spec(shop, "Deployment")["containers"][0]
    assert yaml.safe_load(next(d.text for d in shop if "StatefulSet" in d.text))["spec"]["replicas"] == 1

    hardened = helm.render(SHOP, [DATA / "hardened.yaml"])
    context = pod_spec(hardened, "Deployment")["containers"][0]["securityContext"]
    assert context == {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}

    later = tmp_path / "later.yaml"
    later.write_text("hardened: false\ndebug: true\nqueues: [refunds]\n")
    documents = helm.render(SHOP, [DATA / "hardened.yaml", later])
    assert "securityContext" not in pod_spec(documents, "Deployment")["containers"][0]
    rendered = where(documents)
    assert rendered[("ConfigMap", "debug")] == ("templates/queues.yaml", 2)
    assert rendered[("ConfigMap", "queue-index")] == ("templates/queues.yaml", 8)
    assert rendered[("ConfigMap", "queue-refunds")] == ("templates/queues.yaml", 16)
    assert ("ConfigMap", "queue-orders") not in rendered


def test_a_packaged_subchart_points_into_its_archive(tmp_path):
    chart = tmp_path / "shop"
    shutil.copytree(SHOP, chart)
    with tarfile.open(chart / "charts" / "cache-0.1.0.tgz", "w:gz") as archive:
        archive.add(chart / "charts" / "cache", arcname="cache")
    shutil.rmtree(chart / "charts" / "cache")
    found = where(helm.render(chart))
    assert found[("StatefulSet", "shop-cache")] == ("charts/cache-0.1.0.tgz/cache/templates/statefulset.yaml", 1)
    assert (chart / "charts" / "cache-0.1.0.tgz").is_file()  # the user's chart is never changed


def test_an_aliased_subchart_maps_to_its_folder(tmp_path):
    chart = tmp_path / "shop"
    shutil.copytree(SHOP, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["dependencies"] = [{"name": "cache", "version": "0.1.0", "alias": "sessions"}]
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    found = where(helm.render(chart))
    assert found[("StatefulSet", "shop-cache")] == ("charts/cache/templates/statefulset.yaml", 1)


def test_a_missing_dependency_names_the_chart_and_the_dependency(tmp_path):
    chart = tmp_path / "shop"
    shutil.copytree(SHOP, chart)
    shutil.rmtree(chart / "charts" / "cache")
    with pytest.raises(helm.HelmError) as raised:
        helm.render(chart)
    assert str(chart) in str(raised.value)
    assert "cache" in str(raised.value).removeprefix(str(chart))


def test_a_values_file_that_is_missing_or_not_yaml_is_named(tmp_path):
    missing = tmp_path / "absent.yaml"
    with pytest.raises(helm.HelmError, match=f"{missing}: values file does not exist"):
        helm.render(SHOP, [missing])
    broken = tmp_path / "broken.yaml"
    broken.write_text("hardened: true\nqueues: [orders\n")
    with pytest.raises(helm.HelmError, match=f"{broken}:3: values file is not valid YAML"):
        helm.render(SHOP, [broken])
    listed = tmp_path / "list.yaml"
    listed.write_text("- hardened\n")
    with pytest.raises(helm.HelmError, match=f"{listed}: a values file must be a mapping"):
        helm.render(SHOP, [listed])


def test_a_template_helm_refuses_names_the_chart_and_helms_reason(tmp_path):
    chart = tmp_path / "shop"
    shutil.copytree(SHOP, chart)
    (chart / "templates" / "broken.yaml").write_text("kind: ConfigMap\nname: {{ .Values.missing.deeper }}\n")
    with pytest.raises(helm.HelmError) as raised:
        helm.render(chart)
    message = str(raised.value)
    assert message.startswith(f"{chart}: helm could not render the chart")
    assert "templates/broken.yaml:2" in message  # the marker moved no line
    assert "kubeproof-helm-" not in message


def test_a_value_helm_quotes_in_its_refusal_is_withheld(tmp_path):
    # A chart's own `fail` quotes what it refuses; here a token from a values file and a password
    # from the chart's defaults. Neither may reach the error a user, a log or CI sees.
    chart = tmp_path / "shop"
    shutil.copytree(SHOP, chart)
    with open(chart / "values.yaml", "a") as defaults:
        defaults.write("\ndatabasePassword: 'chart-default-pw-31'\n")
    (chart / "templates" / "refuse.yaml").write_text(
        "kind: ConfigMap\n"
        "{{ fail (printf \"token %s and password %s are refused\" .Values.token .Values.databasePassword) }}\n")
    values = tmp_path / "prod.yaml"
    values.write_text("token: kp-s3cr3t-9f2d\n")
    with pytest.raises(helm.HelmError) as raised:
        helm.render(chart, [values])
    message = str(raised.value)
    assert message.startswith(f"{chart}: helm could not render the chart")
    assert "kp-s3cr3t-9f2d" not in message and "chart-default-pw-31" not in message
    assert message.count(helm.WITHHELD) == 2 and "are refused" in message
    assert "templates/refuse.yaml:2" in message


def test_charts_are_rendered_for_the_embedded_clusters_kubernetes_version(tmp_path):
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "seen.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seen}\ndata: {kube: {{ .Capabilities.KubeVersion.Version | quote }}}\n")
    (document,) = helm.render(chart)
    assert yaml.safe_load(document.text)["data"]["kube"] == pinned().kubernetes_version
    assert document.namespace == "probe"


def test_a_folder_without_chart_yaml_is_refused(tmp_path):
    with pytest.raises(helm.HelmError, match=f"{tmp_path}: not a Helm chart"):
        helm.render(tmp_path)


def test_document_starts_skip_template_only_lines_and_multi_line_actions():
    text = "{{/*\n---\nnot yaml\n*/}}\n{{- if .a -}}kind: A\n---\n# note\n\n{{- range .b }}\nkind: B\n---\n{{- end }}\n"
    assert helm._document_starts(text) == [(5, 13), (10, 0), (12, 0)]
