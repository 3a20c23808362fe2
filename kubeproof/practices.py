"""The practices kubeproof proves and the frameworks its control ids come from. Test modules mark
themselves with one practice; tests carry framework markers with control ids.

A practice is declared where it is judged: a check module in kubeproof/checks/ that sets `PRACTICE`
(its title in reports) names the practice after itself, or after its `MARKER` when several modules
share one (pod_security_admission and pod_security_workloads are both `pod_security`). Adding a
practice therefore adds no line here."""

from __future__ import annotations

import importlib
import pkgutil

import kubeproof.checks

FRAMEWORKS = {
    "cis": "CIS Kubernetes Benchmark 1.12 control id(s)",
    "nsa": "NSA/CISA Kubernetes Hardening Guide section(s)",
    "pss": "Pod Security Standards check id(s)",
}


def _declared() -> dict[str, str]:
    found: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(kubeproof.checks.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue  # shared helpers judge no practice of their own
        module = importlib.import_module(f"kubeproof.checks.{info.name}")
        title = getattr(module, "PRACTICE", None)
        if isinstance(title, str):
            found.setdefault(getattr(module, "MARKER", info.name), title)
    return found


# marker -> title, for every practice a check module declares
PRACTICES = _declared()
