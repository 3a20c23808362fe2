"""The API-server side of the Pod Security differential: namespaces labelled per level and
version, server-side dry-runs, reading PodSecurity's answer, and comparing it with
`kubeproof.pod_security.evaluate`. Shared by tests_e2e/test_pod_security_differential.py and
bench/psa_differential.py.

How PodSecurity answers, and so what is compared:
* Pods are evaluated in enforce mode: a dry-run create is refused with 403 "violates PodSecurity"
  or accepted (201).
* Workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) are never refused by
  PodSecurity: upstream evaluates their pod template in warn and audit mode only. So each namespace
  carries warn labels equal to its enforce labels, and a workload's answer is the
  `would violate PodSecurity` Warning header of its dry-run create (none = allowed). Evaluating the
  template as it stands in the workload (its own metadata, with the annotations there) is what
  upstream does. Wrapping the template into a Pod would take another path: enforce mode, after
  the pod-only mutations (ServiceAccount token volume, AppArmor annotation copied into the field)
  that a template never gets.
* Ephemeral containers cannot be set on create. They are added to an existing pod through the
  pods/ephemeralcontainers subresource, which PodSecurity evaluates as a significant update of the
  whole pod in enforce mode: a dry-run patch answers 200 or 403.

Every object first goes to an unlabelled (privileged) namespace: a 422 there means the API
server's own validation refused it, so the example is discarded; a success returns the object as
the admission chain sees it (defaulted and mutated, e.g. hostPort defaulted from containerPort
under hostNetwork), which is what the evaluator is given, as it would be on a live cluster.
The raw generated object must reach the same allow/deny verdict too.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field

import psa_strategies

from kubeproof.backends import LocalBackend
from kubeproof.pod_security import evaluate

LEVELS = ("baseline", "restricted")
# Versions every example is checked at. Each example is also checked at one version it draws from
# ALL_VERSIONS, and on both sides of every upstream policy boundary that could change its verdict
# (`boundary_versions`): an evaluator is most likely wrong by one version exactly there.
PINNED_VERSIONS = ("v1.24", "v1.28", "v1.31", "v1.35", "latest")
ALL_VERSIONS = tuple(f"v1.{minor}" for minor in range(0, 38))
# The minor versions at which an upstream check changes behaviour (the MinimumVersion of every
# VersionedCheck in k8s.io/pod-security-admission v0.37.2 policy/check_*.go), read from upstream
# on purpose rather than from kubeproof's table, so a boundary kubeproof lacks is still tested.
UPSTREAM_BOUNDARIES = (8, 19, 22, 23, 25, 27, 29, 31, 32, 34, 35, 37)
PRIVILEGED_NAMESPACE = "psa-privileged"
LABEL_PREFIX = "pod-security.kubernetes.io/"

RESOURCE_PATHS = {
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs",
}

# PodSecurity's reason phrases (k8s.io/pod-security-admission/policy, ForbiddenReason) -> check id.
# Two phrases are shared by a baseline check and its restricted replacement; `_check_for_reason`
# resolves them by level and version, which is unambiguous because upstream runs only one of the
# two at any level and version.
REASON_CHECKS = {
    "host namespaces": "hostNamespaces",
    "privileged": "privileged",
    "non-default capabilities": "capabilities_baseline",
    "hostPath volumes": "hostPathVolumes",
    "hostPort": "hostPorts",
    "forbidden AppArmor profile": "appArmorProfile",
    "forbidden AppArmor profiles": "appArmorProfile",
    "seLinuxOptions": "seLinuxOptions",
    "procMount": "procMount",
    "seccompProfile": "seccompProfile_baseline",
    "forbidden sysctls": "sysctls",
    "hostProcess": "windowsHostProcess",
    "probe or lifecycle host": "hostProbesAndHostLifecycle",
    "restricted volume types": "restrictedVolumes",
    "allowPrivilegeEscalation != false": "allowPrivilegeEscalation",
    "runAsNonRoot != true": "runAsNonRoot",
    "runAsUser=0": "runAsUser",
    "unrestricted capabilities": "capabilities_restricted",
}
# Upstream restricted checks that replace a baseline check from a policy version on
# (OverrideCheckIDs): baseline id -> (restricted id, first minor). kubeproof keeps both, so its
# set is reduced the same way before the sets are compared.
OVERRIDES = {
    "hostPathVolumes": ("restrictedVolumes", 0),
    "seccompProfile_baseline": ("seccompProfile_restricted", 19),
    "capabilities_baseline": ("capabilities_restricted", 22),
    "procMount": ("procMount_restricted", 35),
}


def namespace_for(level: str, version: str) -> str:
    return f"psa-{level}-{version.replace('.', '-')}"


class UnexpectedAnswer(AssertionError):
    """The API server answered neither allow, deny nor a validation error: the harness is wrong."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    check_ids: frozenset[str]
    detail: str = ""


@dataclass
class Stats:
    examples: int = 0
    discards: int = 0
    comparisons: int = 0
    denied: int = 0
    disagreements: int = 0
    discard_reasons: Counter = field(default_factory=Counter)
    checks_seen: Counter = field(default_factory=Counter)  # check ids PodSecurity reported
    failures: list = field(default_factory=list)

    @property
    def discard_rate(self) -> float:
        drawn = self.examples + self.discards
        return self.discards / drawn if drawn else 0.0

    def summary(self) -> dict:
        return {"examples": self.examples, "discards": self.discards,
                "discard_rate": round(self.discard_rate, 4), "comparisons": self.comparisons,
                "denied": self.denied, "disagreements": self.disagreements,
                "checks_seen": dict(sorted(self.checks_seen.items())),
                "discard_reasons": dict(self.discard_reasons.most_common(10))}


class Discard(Exception):
    """The API server's validation refused the object (422): not a PodSecurity answer."""


# -- reading PodSecurity's answer -------------------------------------------------------------------


def split_reasons(detail: str) -> list[str]:
    """'a (x, y), b, c (z)' -> ['a', 'b', 'c']: reasons are joined with ', ' outside parentheses."""
    reasons, depth, current, in_quote = [], 0, [], False
    index = 0
    while index < len(detail):
        char = detail[index]
        if char == '"' and (index == 0 or detail[index - 1] != "\\"):
            in_quote = not in_quote
        elif not in_quote and char == "(":
            depth += 1
        elif not in_quote and char == ")":
            depth -= 1
        if depth == 0 and not in_quote and detail.startswith(", ", index):
            reasons.append("".join(current))
            current = []
            index += 2
            continue
        current.append(char)
        index += 1
    reasons.append("".join(current))
    return [reason.split(" (", 1)[0].strip() for reason in reasons if reason.strip()]


def minor_of(version: str, latest_minor: int) -> int:
    return latest_minor if version == "latest" else min(int(version.removeprefix("v1.")), latest_minor)


def _check_for_reason(reason: str, level: str, minor: int) -> str:
    if reason not in REASON_CHECKS:
        raise UnexpectedAnswer(f"PodSecurity reason {reason!r} is not mapped to a check id")
    check_id = REASON_CHECKS[reason]
    if level == "restricted":
        replacement = OVERRIDES.get(check_id)
        if replacement and minor >= replacement[1]:
            check_id = replacement[0]
    return check_id


def _policy_label(level: str, version: str) -> str:
    return f"{level}:{version}"


def read_violation(text: str, prefix: str, level: str, version: str, minor: int) -> Verdict:
    expected = f'{prefix} "{_policy_label(level, version)}": '
    start = text.find(expected)
    if start < 0:
        raise UnexpectedAnswer(f"expected {expected!r} in {text!r}")
    detail = text[start + len(expected):]
    ids = frozenset(_check_for_reason(reason, level, minor) for reason in split_reasons(detail))
    return Verdict(False, ids, detail)


def evaluator_verdict(obj: dict, level: str, version: str, minor: int) -> Verdict:
    violations = evaluate(obj, level, version)
    ids = {violation.check_id for violation in violations}
    if level == "restricted":
        ids -= {baseline for baseline, (_, since) in OVERRIDES.items() if minor >= since}
    return Verdict(not violations, frozenset(ids), "; ".join(f"{v.check_id}: {v.detail}" for v in violations))


# -- the cluster ------------------------------------------------------------------------------------


class Lab:
    """Namespaces per (level, version) on one embedded cluster, and the three kinds of dry-run."""

    def __init__(self, cluster, levels=LEVELS, versions=ALL_VERSIONS + ("latest",)):
        self.cluster = cluster
        self.backend = LocalBackend(cluster)
        self.levels = levels
        self.versions = versions
        self.latest_minor = 0
        self.stats = {level: {"Pod": Stats(), "workload": Stats(), "ephemeral": Stats()} for level in levels}

    # set-up
    def prepare(self) -> Lab:
        version = self._admin("GET", "/version")
        self.latest_minor = int(re.match(r"\d+", version["minor"]).group())
        names = [PRIVILEGED_NAMESPACE] + [namespace_for(lv, v) for lv in self.levels for v in self.versions]
        for name in names:
            self._admin("POST", "/api/v1/namespaces", {"metadata": {"name": name}}, (201,))
        self._wait_for_service_accounts(names)
        # Base pods for the ephemeral-container cases exist before the labels: PodSecurity only
        # warns about existing pods when a namespace's level changes.
        # Measured, not explained: in a namespace a few seconds old the first real pod create took
        # ~100 ms unless a dry-run create came first; the warm-up keeps set-up to a few seconds.
        for name in names:
            self.backend.dry_run("POST", f"/api/v1/namespaces/{name}/pods", psa_strategies.base_pod("bare"))
        for name in names:
            for base in psa_strategies.BASE_PODS:
                self._admin("POST", f"/api/v1/namespaces/{name}/pods", psa_strategies.base_pod(base), (201,))
        for level in self.levels:
            for version in self.versions:
                labels = {}
                for mode in ("enforce", "warn"):
                    labels[f"{LABEL_PREFIX}{mode}"] = level
                    labels[f"{LABEL_PREFIX}{mode}-version"] = version
                self._admin("PATCH", f"/api/v1/namespaces/{namespace_for(level, version)}",
                            {"metadata": {"labels": labels}}, (200,))
        return self

    def _admin(self, method: str, path: str, body: dict | None = None, expected: tuple[int, ...] = (200,)):
        # Through the backend's pooled connection: set-up writes a few hundred objects, and
        # cluster.api_request opens a new TLS connection per call.
        content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
        answer = self.backend.request(method, path, body=body, content_type=content_type)
        if answer.status not in expected:
            raise UnexpectedAnswer(f"{method} {path} answered {answer.status}: {answer.message}")
        return answer.body

    def _wait_for_service_accounts(self, names: list[str], timeout: float = 60.0) -> None:
        # ServiceAccount admission refuses pods (dry-runs too) until the namespace's default
        # ServiceAccount exists; the controller-manager makes it shortly after the namespace.
        deadline = time.monotonic() + timeout
        missing = set(names)
        while missing and time.monotonic() < deadline:
            listing = self.backend.request("GET", "/api/v1/serviceaccounts",
                                           query={"fieldSelector": "metadata.name=default"})
            if listing.status == 200:
                missing -= {item["metadata"]["namespace"] for item in listing.body.get("items", [])}
            if missing:
                time.sleep(0.2)
        if missing:
            raise UnexpectedAnswer(f"no default ServiceAccount after {timeout:.0f} s in {sorted(missing)[:5]}")

    # dry-runs
    def _create(self, namespace: str, obj: dict):
        path = RESOURCE_PATHS[obj["kind"]].format(ns=namespace)
        return self.backend.dry_run("POST", path, obj)

    def _add_ephemeral(self, namespace: str, base: str, containers: list[dict]):
        path = f"/api/v1/namespaces/{namespace}/pods/base-{base}/ephemeralcontainers"
        return self.backend.dry_run("PATCH", path, {"spec": {"ephemeralContainers": containers}},
                                    content_type="application/strategic-merge-patch+json")

    def admitted_form(self, obj: dict) -> dict:
        """The object as the admission chain sees it; raises Discard on a validation error."""
        return self._admitted(self._create(PRIVILEGED_NAMESPACE, obj), (201,))

    def admitted_ephemeral_form(self, base: str, containers: list[dict]) -> dict:
        return self._admitted(self._add_ephemeral(PRIVILEGED_NAMESPACE, base, containers), (200,))

    @staticmethod
    def _admitted(answer, ok: tuple[int, ...]) -> dict:
        if answer.status in ok and isinstance(answer.body, dict):
            return answer.body
        if answer.status == 422:
            raise Discard(answer.message)
        raise UnexpectedAnswer(f"{answer.method} {answer.path} in the privileged namespace answered "
                               f"{answer.status}: {answer.message}")

    def server_verdict(self, obj: dict, level: str, version: str) -> Verdict:
        namespace = namespace_for(level, version)
        answer = self._create(namespace, obj)
        minor = minor_of(version, self.latest_minor)
        if obj["kind"] == "Pod":
            return self._enforce_verdict(answer, (201,), level, version, minor)
        if answer.status != 201:
            raise UnexpectedAnswer(f"dry-run create of a {obj['kind']} in {namespace} answered "
                                   f"{answer.status}: {answer.message}")
        found = [w for w in answer.warnings if w.startswith("would violate PodSecurity ")]
        if len(found) > 1:
            raise UnexpectedAnswer(f"more than one PodSecurity warning: {found}")
        if not found:
            return Verdict(True, frozenset())
        return read_violation(found[0], "would violate PodSecurity", level, version, minor)

    def server_ephemeral_verdict(self, base: str, containers: list[dict], level: str, version: str) -> Verdict:
        answer = self._add_ephemeral(namespace_for(level, version), base, containers)
        return self._enforce_verdict(answer, (200,), level, version, minor_of(version, self.latest_minor))

    def _enforce_verdict(self, answer, ok, level, version, minor) -> Verdict:
        if answer.status in ok:
            return Verdict(True, frozenset())
        if answer.status == 403 and "violates PodSecurity" in answer.message:
            return read_violation(answer.message, "violates PodSecurity", level, version, minor)
        raise UnexpectedAnswer(f"{answer.method} {answer.path} answered {answer.status}: {answer.message}")

    # the comparison
    @staticmethod
    def versions_for(admitted: dict, drawn_version: str) -> list[str]:
        return list(dict.fromkeys(PINNED_VERSIONS + (drawn_version,) + boundary_versions(admitted)))

    def compare(self, obj: dict, level: str, drawn_version: str) -> list[dict]:
        """Disagreements between PodSecurity and the evaluator for a Pod or a workload."""
        stats = self.stats[level]["Pod" if obj["kind"] == "Pod" else "workload"]
        try:
            admitted = self.admitted_form(obj)
        except Discard as discard:
            stats.discards += 1
            stats.discard_reasons[_reason_key(str(discard))] += 1
            raise
        stats.examples += 1
        return self._compare_all(stats, obj, admitted, level, self.versions_for(admitted, drawn_version),
                                 lambda version: self.server_verdict(obj, level, version))

    def compare_ephemeral(self, base: str, containers: list[dict], level: str, drawn_version: str) -> list[dict]:
        stats = self.stats[level]["ephemeral"]
        try:
            admitted = self.admitted_ephemeral_form(base, containers)
        except Discard as discard:
            stats.discards += 1
            stats.discard_reasons[_reason_key(str(discard))] += 1
            raise
        stats.examples += 1
        raw = psa_strategies.base_pod(base)
        raw["spec"]["ephemeralContainers"] = containers
        return self._compare_all(stats, raw, admitted, level, self.versions_for(admitted, drawn_version),
                                 lambda version: self.server_ephemeral_verdict(base, containers, level, version))

    def _compare_all(self, stats: Stats, raw: dict, admitted: dict, level: str, versions: list[str],
                     ask_server) -> list[dict]:
        disagreements = []
        for version in versions:
            minor = minor_of(version, self.latest_minor)
            server = ask_server(version)
            ours = evaluator_verdict(admitted, level, version, minor)
            raw_allowed = not evaluate(raw, level, version)
            stats.comparisons += 1
            stats.denied += not server.allowed
            stats.checks_seen.update(server.check_ids)
            problems = []
            if ours.allowed != server.allowed:
                problems.append("allow/deny")
            elif ours.check_ids != server.check_ids:
                problems.append("check ids")
            if raw_allowed != server.allowed:
                problems.append("allow/deny of the object as generated")
            if problems:
                stats.disagreements += 1
                disagreements.append({
                    "kind": raw.get("kind"), "level": level, "version": version, "problems": problems,
                    "server": {"allowed": server.allowed, "checks": sorted(server.check_ids), "detail": server.detail},
                    "kubeproof": {"allowed": ours.allowed, "checks": sorted(ours.check_ids), "detail": ours.detail},
                })
        if disagreements:
            stats.failures.append({"object": raw, "disagreements": disagreements})
        return disagreements


# -- which boundaries matter to an object ----------------------------------------------------------

_TEMPLATE_PATHS = {"Pod": (), "CronJob": ("spec", "jobTemplate", "spec", "template")}


def _pod_parts(obj: dict) -> tuple[dict, dict]:
    holder = obj
    for key in _TEMPLATE_PATHS.get(obj["kind"], ("spec", "template")):
        holder = holder.get(key) or {}
    return holder.get("metadata") or {}, holder.get("spec") or {}


def boundary_versions(admitted: dict) -> tuple[str, ...]:
    """Both sides of each upstream boundary at which the verdict on this object could change.

    Which fields each boundary concerns is read from the upstream checks: 1.8 (allowPrivilegeEscalation),
    1.19 (seccomp from annotations to fields, restricted seccomp) and 1.22 (restricted capabilities)
    concern every pod; 1.23 (runAsUser=0) pods setting runAsUser; 1.25 (Windows exemptions)
    Windows pods; 1.27, 1.29, 1.32 and 1.37 (safe sysctls) pods with sysctls; 1.31
    (container_engine_t) pods with seLinuxOptions; 1.34 (probe and lifecycle hosts) containers with
    probes or hooks; 1.35 (user namespaces, restricted procMount) pods with hostUsers=false or a
    procMount.
    """
    _, spec = _pod_parts(admitted)
    pod_context = spec.get("securityContext") or {}
    containers = [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]
    contexts = [pod_context] + [c.get("securityContext") or {} for c in containers]
    boundaries = [8, 19, 22]
    if any("runAsUser" in context for context in contexts):
        boundaries.append(23)
    if (spec.get("os") or {}).get("name") == "windows":
        boundaries.append(25)
    if pod_context.get("sysctls"):
        boundaries += [27, 29, 32, 37]
    if any("seLinuxOptions" in context for context in contexts):
        boundaries.append(31)
    if any(c.get(key) for c in containers for key in ("livenessProbe", "readinessProbe", "startupProbe", "lifecycle")):
        boundaries.append(34)
    if spec.get("hostUsers") is False or any("procMount" in context for context in contexts):
        boundaries.append(35)
    assert set(boundaries) <= set(UPSTREAM_BOUNDARIES)
    return tuple(f"v1.{minor}" for boundary in boundaries for minor in (boundary - 1, boundary))


def _reason_key(message: str) -> str:
    # "Pod "psa" is invalid: spec.containers[0].x: Invalid value: ...": keep the field and complaint.
    text = message.split(" is invalid: ", 1)[-1]
    text = re.sub(r"\[\d+\]", "[*]", text)
    return text[:160]
