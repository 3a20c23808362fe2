"""A corpus of real configuration sets: the deploy manifests, Kustomize folders and Helm charts that
widely used projects publish, each pinned to one version of the project's Go module and fetched
through the Go module proxy into the Go module cache (the only cache this fills).

tests_e2e/test_real_world_corpus.py audits each set with `--manifests`; bench/ may import this file
too (with tests_e2e on sys.path) to run other tools over the very same folders.

A module zip leaves out every subfolder that holds a go.mod of its own, so each set below was checked
to be present in its module at the pinned version. Versions were looked up with
`go list -m -versions MODULE` before pinning; ingress-nginx publishes no tagged Go module versions, so
it is pinned by the pseudo-version of one commit (the commit that ships controller v1.11.0 and chart
4.11.0)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "corpus"

PLAIN, KUSTOMIZE, HELM = "plain", "kustomize", "helm"


class CorpusError(Exception):
    """A set could not be fetched or arranged (no Go, the proxy refused the version, a path moved)."""


@dataclass(frozen=True)
class ConfigSet:
    name: str          # short id, also the test id
    project: str       # what a reader calls the project
    module: str        # Go module that carries the files
    version: str       # exact version (a tag, or a pseudo-version where the project tags none)
    subfolder: str     # folder inside the module that is copied ("." for the module root)
    kind: str          # plain | kustomize | helm
    files: tuple[str, ...] = ()  # plain: only these files of the subfolder (empty: all of it)
    entry: str = ""    # kustomize: the folder inside the copy handed to --manifests (its bases sit beside it)
    values: str = ""   # helm: a values file of ours under tests_e2e/data/corpus/, passed as --helm-values
    traps: str = ""    # YAML 1.1 traps the set holds, which a YAML 1.1 reader would misread or refuse
    documents: int = 0  # objects the set holds at this version (0: not counted yet, a chart not yet rendered)
    note: str = ""

    @property
    def pin(self) -> str:
        return f"{self.module}@{self.version}"

    @property
    def values_file(self) -> Path | None:
        return DATA / self.values if self.values else None


SETS: tuple[ConfigSet, ...] = (
    ConfigSet(
        "prometheus-operator-bundle", "Prometheus Operator", "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0", ".", PLAIN, files=("bundle.yaml",),
        traps="bare `=` next to `!=` and `=~` in the matchType enums of the AlertmanagerConfig CRD "
              "(YAML 1.1 reads `=` as the value tag)",
        documents=15, note="the operator and all its CRDs in one multi-document file"),
    ConfigSet(
        "gatekeeper-deploy", "OPA Gatekeeper", "github.com/open-policy-agent/gatekeeper/v3",
        "v3.23.1", "deploy", PLAIN, files=("gatekeeper.yaml",),
        documents=31, note="CRDs, admission webhooks, controller and audit deployments"),
    ConfigSet(
        "ingress-nginx-cloud", "ingress-nginx", "k8s.io/ingress-nginx",
        "v0.0.0-20240708192948-52c50467d67d", "deploy/static/provider/cloud", PLAIN, files=("deploy.yaml",),
        documents=19, note="the published static manifest for cloud providers (controller v1.11.0)"),
    ConfigSet(
        "metrics-server-release", "metrics-server", "sigs.k8s.io/metrics-server",
        "v0.8.0", "manifests", KUSTOMIZE, entry="overlays/release",
        documents=9, note="the release overlay: a base plus a Kustomize component, all local"),
    ConfigSet(
        "metrics-server-chart", "metrics-server", "sigs.k8s.io/metrics-server",
        "v0.8.0", "charts/metrics-server", HELM,
        note="chart 3.12.2 with its own defaults (helm template: 9 objects)"),
    ConfigSet(
        "ingress-nginx-chart", "ingress-nginx", "k8s.io/ingress-nginx",
        "v0.0.0-20240708192948-52c50467d67d", "charts/ingress-nginx", HELM,
        note="chart 4.11.0 with its own defaults, to set beside the hardened values below "
             "(helm template: 18 objects, 6 of them the admission webhook's hooks)"),
    ConfigSet(
        "ingress-nginx-chart-hardened", "ingress-nginx", "k8s.io/ingress-nginx",
        "v0.0.0-20240708192948-52c50467d67d", "charts/ingress-nginx", HELM,
        values="ingress-nginx-hardened.yaml",
        note="chart 4.11.0 with our values file: no admission webhook, a NetworkPolicy, a pod securityContext "
             "(helm template: 10 objects)"),
)

BY_NAME = {s.name: s for s in SETS}


def go_env() -> dict[str, str]:
    # The local toolchain only, modules resolved as go.mod-free downloads; the module cache is Go's own.
    return dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local")


def module_dir(config_set: ConfigSet) -> Path:
    """Downloads the set's module (once; the Go module cache keeps it) and returns its extracted folder,
    which is read-only."""
    go = shutil.which("go")
    if not go:
        raise CorpusError("the corpus is fetched with the go command, which is not on PATH")
    with tempfile.TemporaryDirectory(prefix="kubeproof-corpus-") as neutral:
        # Run outside any module, so no go.mod around the caller takes part.
        done = subprocess.run([go, "mod", "download", "-json", config_set.pin], cwd=neutral, env=go_env(),
                              capture_output=True, text=True, timeout=600)
    try:
        answer = json.loads(done.stdout) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        answer = {}
    if answer.get("Error") or done.returncode != 0 or not answer.get("Dir"):
        raise CorpusError(f"go mod download {config_set.pin}: {answer.get('Error') or done.stderr.strip()[-600:]}")
    return Path(answer["Dir"])


def fetch(config_set: ConfigSet, into: Path | None = None) -> Path:
    """The set as a folder ready for --manifests: a writable copy under `into` (a new temporary folder
    when None), holding only the set's files. For a Kustomize overlay the whole subfolder is copied, so
    the bases and components it names resolve, and the overlay's own folder is returned."""
    source = module_dir(config_set) / config_set.subfolder
    if not source.is_dir():
        raise CorpusError(f"{config_set.pin}: no folder {config_set.subfolder} (a subfolder with a go.mod "
                          "of its own is left out of the module zip)")
    base = Path(into) if into is not None else Path(tempfile.mkdtemp(prefix="kubeproof-corpus-"))
    target = base / config_set.name
    if target.exists():
        _writable(target)
        shutil.rmtree(target)
    if config_set.files:
        target.mkdir(parents=True)
        for name in config_set.files:
            if not (source / name).is_file():
                raise CorpusError(f"{config_set.pin}: no file {config_set.subfolder}/{name}")
            shutil.copyfile(source / name, target / name)
    else:
        shutil.copytree(source, target, copy_function=shutil.copyfile)
    _writable(target)
    folder = target / config_set.entry if config_set.entry else target
    if not folder.is_dir():
        raise CorpusError(f"{config_set.pin}: no folder {config_set.subfolder}/{config_set.entry}")
    return folder


def _writable(folder: Path) -> None:
    # copytree keeps the module cache's read-only folder modes; the copy is ours to change and delete.
    for directory, _, files in os.walk(folder):
        os.chmod(directory, os.stat(directory).st_mode | stat.S_IWUSR | stat.S_IXUSR | stat.S_IRUSR)
        for name in files:
            path = os.path.join(directory, name)
            os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR | stat.S_IRUSR)


if __name__ == "__main__":
    # python tests_e2e/corpus.py [NAME ...]: fetch sets and print where each landed.
    import sys

    wanted = sys.argv[1:] or [s.name for s in SETS]
    for name in wanted:
        print(name, fetch(BY_NAME[name]))
