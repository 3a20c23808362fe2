"""Audit logging: where kube-apiserver sends audit events (CIS 1.2.16-1.2.19), what its policy records
(CIS 3.2.1, 3.2.2), and, where the suite can read the log, proof that a request of its own landed in it.

An audit policy is evaluated rule by rule and the FIRST rule that matches a request decides its level:
a Metadata rule for secrets placed after a RequestResponse catch-all never applies. So the level a
resource gets is found by walking the rules in order, and a rule that matches only some requests
(some users, verbs, namespaces or names) is remembered and the walk goes on.

Pure: flags, file texts and audit events in, findings out. Policy text and log lines are parsed here
and never returned whole; only levels, rule positions and a few event fields leave this module."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from kubeproof.checks.control_plane import APISERVER, Control, FlagView, Problem, Rule, shown_value
from kubeproof.results import Finding, NotVerified, ObjectRef

PRACTICE = "Audit logging"

SINK_CONTROLS = ("1.2.16",)
MINIMAL_POLICY_CONTROLS = ("3.2.1",)
SENSITIVE_CONTROLS = ("3.2.2",)
PROOF_CONTROLS = ("1.2.16", "3.2.2")

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
PAYLOAD_LEVELS = ("Request", "RequestResponse")
POLICY_FLAG = "audit-policy-file"
LOG_FLAG = "audit-log-path"
WEBHOOK_FLAG = "audit-webhook-config-file"
STDOUT = "-"
_RESTRICTIONS = ("users", "userGroups", "verbs", "namespaces")


@dataclass(frozen=True)
class Resource:
    """A resource whose requests or responses carry credentials or other confidential data."""

    group: str
    resource: str
    subresource: str = ""

    def __str__(self) -> str:
        name = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.group}/{name}" if self.group else name


# Secret and ConfigMap bodies hold the data itself; a TokenRequest's response and a TokenReview's
# request hold a bearer token.
SENSITIVE = (
    Resource("", "secrets"),
    Resource("", "configmaps"),
    Resource("", "serviceaccounts", "token"),
    Resource("authentication.k8s.io", "tokenreviews"),
)

_APISERVER = ObjectRef("Component", APISERVER)
_REMEDIATE_SINK = (
    "Start kube-apiserver with --audit-log-path (a file on the control-plane node) or "
    "--audit-webhook-config-file, and an --audit-policy-file, so every request leaves a record."
)
_REMEDIATE_ROTATION = (
    "Set --audit-log-maxage (days, 30 or more), --audit-log-maxbackup (files, 10 or more) and "
    "--audit-log-maxsize (MB, 100 or more) explicitly; their defaults changed between Kubernetes versions."
)
_REMEDIATE_MINIMAL = (
    "Give kube-apiserver an --audit-policy-file whose last rule has no users, groups, verbs, resources, "
    "namespaces or URLs and a level of at least Metadata, so a request no earlier rule names is still recorded."
)
_REMEDIATE_SENSITIVE = (
    "Put a rule with level Metadata for secrets, configmaps, serviceaccounts/token and tokenreviews ABOVE any "
    "rule with level Request or RequestResponse that also matches them (the first matching rule wins), so "
    "access is recorded without the secret values or tokens themselves."
)


# -- where events go (CIS 1.2.16-1.2.19) -------------------------------------------------------------
class AuditSink(Rule):
    flags = (LOG_FLAG, WEBHOOK_FLAG)
    expected = "--audit-log-path or --audit-webhook-config-file set"

    def problems(self, view):
        if (view.get(LOG_FLAG) or "").strip() or (view.get(WEBHOOK_FLAG) or "").strip():
            return []
        return [Problem(f"--{LOG_FLAG}", "not set (and no --audit-webhook-config-file)", self.expected)]


@dataclass(frozen=True)
class Retention(Rule):
    """A rotation setting of the audit log file, which must be given explicitly: the pinned 1.37
    kube-apiserver defaults to 366 days / 100 files / 100 MB (its `--help`), earlier releases had other
    defaults, so an absent flag does not mean the same on every cluster. `zero_keeps_all`: 0 means no
    limit, which keeps at least as much as the minimum asks."""

    flag: str
    minimum: int
    zero_keeps_all: bool

    @property
    def flags(self):
        return (self.flag, LOG_FLAG)

    @property
    def expected(self):
        extra = " (or 0: no limit)" if self.zero_keeps_all else ""
        return f"--{self.flag} set to {self.minimum} or more{extra}"

    def problems(self, view):
        if not (view.get(LOG_FLAG) or "").strip():
            return [Problem(f"--{LOG_FLAG}", "not set: there is no audit log file to keep", f"--{LOG_FLAG} set")]
        value = view.get(self.flag)
        if value is None:
            return [Problem(f"--{self.flag}", shown_value(None, "a version-dependent value"), self.expected)]
        try:
            number = int(value)
        except ValueError:
            raise NotVerified(f"--{self.flag}={value!r} is not an integer") from None
        if number >= self.minimum or (number == 0 and self.zero_keeps_all):
            return []
        return [Problem(f"--{self.flag}", value, self.expected)]


ROWS: tuple[Control, ...] = (
    Control("1.2.16", APISERVER, AuditSink(), _REMEDIATE_SINK),
    Control("1.2.17", APISERVER, Retention("audit-log-maxage", 30, True), _REMEDIATE_ROTATION),
    Control("1.2.18", APISERVER, Retention("audit-log-maxbackup", 10, True), _REMEDIATE_ROTATION),
    Control("1.2.19", APISERVER, Retention("audit-log-maxsize", 100, False), _REMEDIATE_ROTATION),
)
RETENTION_IDS = ("1.2.17", "1.2.18", "1.2.19")
# The CIS ids each test of tests_cluster/test_audit_logging.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_audit_log_setting": tuple(row.id for row in ROWS),
    "test_audit_policy_records_every_request": MINIMAL_POLICY_CONTROLS,
    "test_audit_policy_keeps_secrets_and_tokens_out_of_the_log": SENSITIVE_CONTROLS,
    "test_own_request_is_found_in_the_audit_log": PROOF_CONTROLS,
}


def rotation_not_applicable(flags) -> str | None:
    """Why the rotation rows do not apply, or None when they do (or when there is no sink at all, which
    they report as a finding)."""
    view = FlagView(APISERVER, flags)
    path = (view.get(LOG_FLAG) or "").strip()
    if path == STDOUT:
        return "the audit log goes to standard output (--audit-log-path=-); its retention is the log collector's"
    if not path and (view.get(WEBHOOK_FLAG) or "").strip():
        return "audit events go to a webhook (--audit-webhook-config-file) and no log file is written"
    return None


# -- the policy (CIS 3.2.1, 3.2.2) -----------------------------------------------------------------
def policy_rules(flags, files, source: str = "") -> tuple[str, list[dict]] | None:
    """The audit policy's rules, checked for shape; None when no policy file is configured."""
    view = FlagView(APISERVER, flags, files)
    path = (view.get(POLICY_FLAG) or "").strip()
    if not path:
        return None
    text = view.file_text(path)
    if text is None:
        where = f" ({source})" if source else ""
        raise NotVerified(f"--{POLICY_FLAG}={path} is set{where}, but the file lives on the control-plane node and "
                          "is not readable from here")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        raise NotVerified(f"the audit policy {path} is not valid YAML") from None
    if not isinstance(document, dict) or document.get("kind", "Policy") != "Policy":
        raise NotVerified(f"{path} is not an audit Policy")
    rules = document.get("rules")
    if rules is None:
        rules = []
    if not isinstance(rules, list):
        raise NotVerified(f"{path}: rules is not a list")
    for index, rule in enumerate(rules):
        where = f"{path}: rules[{index}]"
        if not isinstance(rule, dict):
            raise NotVerified(f"{where} is not a mapping")
        if rule.get("level") not in LEVELS:
            raise NotVerified(f"{where}.level is not one of {', '.join(LEVELS)}")
        for key in (*_RESTRICTIONS, "resources", "nonResourceURLs"):
            if rule.get(key) is not None and not isinstance(rule[key], list):
                raise NotVerified(f"{where}.{key} is not a list")
        for position, entry in enumerate(rule.get("resources") or []):
            if not isinstance(entry, dict):
                raise NotVerified(f"{where}.resources[{position}] is not a mapping")
            for key in ("resources", "resourceNames"):
                if entry.get(key) is not None and not (
                        isinstance(entry[key], list) and all(isinstance(v, str) for v in entry[key])):
                    raise NotVerified(f"{where}.resources[{position}].{key} is not a list of names")
            if not isinstance(entry.get("group", ""), str):
                raise NotVerified(f"{where}.resources[{position}].group is not a string")
    return path, rules


def _names(resource: str, target: Resource) -> bool:
    combined = f"{target.resource}/{target.subresource}" if target.subresource else target.resource
    if resource in (combined, "*"):
        return True
    if target.subresource and resource.startswith("*/") and resource[2:] == target.subresource:
        return True
    return resource.endswith("/*") and resource[:-2] == target.resource


def rule_scope(rule: dict, target: Resource) -> str | None:
    """'all' when the rule matches every request for the target, 'some' when it matches only some
    (restricted by user, group, verb, namespace or object name), None when it matches none."""
    if rule.get("nonResourceURLs"):
        return None  # such a rule matches only requests that are not for a resource
    scope = "all"
    groups = rule.get("resources") or []
    if groups:
        hit_all = hit_some = False
        for entry in groups:
            if entry.get("group", "") != target.group:
                continue
            resources = entry.get("resources") or []
            if not resources:
                hit_all = True  # the whole API group, whatever resourceNames says
            elif any(_names(r, target) for r in resources):
                if entry.get("resourceNames"):
                    hit_some = True
                else:
                    hit_all = True
        if not (hit_all or hit_some):
            return None
        scope = "all" if hit_all else "some"
    if any(rule.get(key) for key in _RESTRICTIONS):
        scope = "some"
    return scope


def levels_for(rules: list[dict], target: Resource) -> list[tuple[int | None, str, str]]:
    """(rule index, level, 'all' or 'some') for each rule that may decide the target's level, in
    order, ending with the first that decides it for every request; (None, 'None', 'all') when no rule
    does, because a request no rule matches is not recorded."""
    possible = []
    for index, rule in enumerate(rules):
        scope = rule_scope(rule, target)
        if scope is None:
            continue
        possible.append((index, rule["level"], scope))
        if scope == "all":
            return possible
    possible.append((None, "None", "all"))
    return possible


def catch_all_index(rules: list[dict]) -> int | None:
    for index, rule in enumerate(rules):
        if not any(rule.get(key) for key in (*_RESTRICTIONS, "resources", "nonResourceURLs")):
            return index
    return None


def minimal_policy_findings(flags, files, source: str = "") -> list[Finding]:
    read = policy_rules(flags, files, source)
    if read is None:
        return [Finding(MINIMAL_POLICY_CONTROLS, _APISERVER, f"--{POLICY_FLAG}", "not set (no event is recorded)",
                        "an audit policy", _REMEDIATE_MINIMAL)]
    path, rules = read
    index = catch_all_index(rules)
    if index is None:
        return [Finding(MINIMAL_POLICY_CONTROLS, _APISERVER, f"{path}: rules", "no rule matches every request",
                        "a last rule without restrictions, level Metadata or higher", _REMEDIATE_MINIMAL)]
    if rules[index]["level"] == "None":
        return [Finding(MINIMAL_POLICY_CONTROLS, _APISERVER, f"{path}: rules[{index}].level",
                        "None (requests no earlier rule names are not recorded)",
                        "Metadata or higher", _REMEDIATE_MINIMAL)]
    return []


def sensitive_findings(flags, files, source: str = "") -> list[Finding]:
    read = policy_rules(flags, files, source)
    if read is None:
        return [Finding(SENSITIVE_CONTROLS, _APISERVER, f"--{POLICY_FLAG}", "not set (no event is recorded)",
                        "secrets, configmaps and tokens recorded at Metadata", _REMEDIATE_SENSITIVE)]
    path, rules = read
    found = []
    for target in SENSITIVE:
        for index, level, scope in levels_for(rules, target):
            who = "every request" if scope == "all" else "some requests"
            if level in PAYLOAD_LEVELS:
                found.append(Finding(SENSITIVE_CONTROLS, _APISERVER, f"{path}: rules[{index}]",
                                     f"{target} recorded at {level} for {who} (with the payload)",
                                     f"{target} at Metadata", _REMEDIATE_SENSITIVE))
            elif level == "None" and scope == "all":
                where = f"{path}: rules[{index}]" if index is not None else f"{path}: rules"
                found.append(Finding(SENSITIVE_CONTROLS, _APISERVER, where, f"{target} not recorded",
                                     f"{target} at Metadata", _REMEDIATE_SENSITIVE))
    return found


def policy_evidence(flags, files, source: str = "") -> dict:
    """Rule positions and levels only: the policy text itself stays out of the report."""
    read = policy_rules(flags, files, source)
    if read is None:
        return {"policy": "not set"}
    path, rules = read
    return {
        "policy": path,
        "rules": len(rules),
        "catch-all rule": catch_all_index(rules),
        "levels": {str(t): [f"rules[{i}] {level} ({scope})" if i is not None else "no rule: None"
                            for i, level, scope in levels_for(rules, t)] for t in SENSITIVE},
    }


# -- proof from the log itself ---------------------------------------------------------------------
def proof_summary(event: dict) -> dict:
    """The fields of one audit event that prove it was recorded, and at what level; never its bodies."""
    status = event.get("responseStatus") if isinstance(event.get("responseStatus"), dict) else {}
    user = event.get("user") if isinstance(event.get("user"), dict) else {}
    return {
        "auditID": event.get("auditID"),
        "stage": event.get("stage"),
        "level": event.get("level"),
        "verb": event.get("verb"),
        "requestURI": event.get("requestURI"),
        "status": status.get("code"),
        "user": user.get("username"),
        "request body recorded": "requestObject" in event,
        "response body recorded": "responseObject" in event,
    }


def proof_findings(events: list, marker_path: str, target: Resource) -> list[Finding]:
    """`events` are the audit events whose requestURI holds the suite's own request (`marker_path`).
    It must be there, recorded at Metadata, without request or response bodies."""
    if not isinstance(events, list):
        raise NotVerified("the audit events could not be read")
    mine = [e for e in events if isinstance(e, dict) and isinstance(e.get("requestURI"), str)
            and e["requestURI"].split("?")[0] == marker_path]
    if not mine:
        return [Finding(("1.2.16",), _APISERVER, "audit log", f"no event for GET {marker_path}",
                        "the suite's own request recorded", _REMEDIATE_SINK)]
    found = []
    for event in mine:
        if event.get("level") != "Metadata" or "requestObject" in event or "responseObject" in event:
            found.append(Finding(SENSITIVE_CONTROLS, _APISERVER, f"audit event {event.get('auditID')}",
                                 f"{target} recorded at {event.get('level')}"
                                 + (" with bodies" if "requestObject" in event or "responseObject" in event else ""),
                                 f"{target} at Metadata, without bodies", _REMEDIATE_SENSITIVE))
    return found

