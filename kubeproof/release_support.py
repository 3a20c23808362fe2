"""The Kubernetes release-support table shipped with kubeproof (kubeproof/data/kubernetes-support.json):
per minor version its release date and end-of-life date, with where they come from and when the table
was last brought up to date. Reading the file is the only I/O; kubeproof.checks.version_currency judges it."""

from __future__ import annotations

import json
from importlib import resources

TABLE = "kubernetes-support.json"


def load() -> dict:
    return json.loads(resources.files("kubeproof").joinpath("data", TABLE).read_text())
