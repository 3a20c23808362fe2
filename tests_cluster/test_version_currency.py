"""The API server and every kubelet run a Kubernetes minor version that still receives patches, and
each kubelet is within the supported skew of the API server.

Dates come from kubeproof's support table (kubeproof/data/kubernetes-support.json, with its source
and as_of date in the evidence) and today's date. A version whose end of life is 60 days away or less
passes with a warning: in the evidence ("warning") and as a pytest warning (SupportEndingSoon)."""

import datetime
import warnings

import pytest

from kubeproof import release_support
from kubeproof.checks import version_currency
from kubeproof.results import ObjectRef

pytestmark = [pytest.mark.version_currency, pytest.mark.nsa("Upgrading and application security practices")]


@pytest.fixture(scope="module")
def support():
    document = release_support.load()
    return version_currency.parse_table(document), {"table as of": document.get("as_of"), "table source": document.get("source")}


def judge(subject: ObjectRef, what: str, version: str, support, verdict) -> None:
    table, about = support
    today = datetime.date.today()
    verdict.observe(version=version, today=str(today), **about)
    status = version_currency.currency(version_currency.minor_of(version), table, today)
    verdict.observe(**status.evidence())
    warning = version_currency.warning_text(str(subject), status)
    if warning:
        verdict.observe(warning=warning)
        warnings.warn(version_currency.SupportEndingSoon(warning), stacklevel=2)
    verdict(version_currency.currency_findings(subject, what, version, status))


def test_api_server_version_is_supported(server_version, support, verdict):
    minor = version_currency.server_minor(server_version)
    shown = server_version.get("gitVersion") if isinstance(server_version.get("gitVersion"), str) else minor
    judge(ObjectRef("Component", "kube-apiserver"), "/version", shown, support, verdict)


def test_kubelet_version_is_supported(node, support, verdict):
    judge(ObjectRef.of(node, "Node"), "status.nodeInfo.kubeletVersion", version_currency.kubelet_version(node), support, verdict)


def test_kubelet_is_within_skew_of_the_api_server(node, server_version, verdict):
    kubelet = version_currency.kubelet_version(node)
    apiserver = version_currency.server_minor(server_version)
    verdict.observe(kubelet=kubelet, api_server=apiserver, allowed_lag=version_currency.MAX_KUBELET_LAG)
    verdict(version_currency.skew_findings(ObjectRef.of(node, "Node"), version_currency.minor_of(kubelet), apiserver))
