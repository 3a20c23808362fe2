"""RBAC privileges that hand over the cluster (CIS 5.1.2, 5.1.4, 5.1.5, 5.1.7 to 5.1.13), judged per
binding: which subjects this binding lets read secrets, create pods, bind or impersonate, and so on.

The effective-permission engine (kubeproof.rbac_effective) decides what a binding grants; every
grant it finds is then put to the real authorizer as a SubjectAccessReview, and the review's answer
is the evidence. A review that denies what the engine found is not a pass: it is reported as a
disagreement between the two, for a person to look at.

Exempt: Kubernetes' own bootstrap bindings (label kubernetes.io/bootstrapping=rbac-defaults AND a
name starting with "system:") for the identities Kubernetes itself runs as; the default
cluster-admin binding for Group/system:masters; and cluster-admin bindings for subjects the
baseline's rbac.cluster_admin_subjects allows (the baseline already accepts them holding everything;
not for 5.1.7, which is about system:masters itself)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeproof.checks._shape import mapping
from kubeproof.checks.rbac import BOOTSTRAP_LABEL
from kubeproof.rbac_effective import (
    ANONYMOUS,
    AUTHENTICATED,
    MASTERS,
    SERVICE_ACCOUNTS,
    UNAUTHENTICATED,
    BindingView,
    Policy,
    Request,
    Subject,
    read_binding,
    split_service_account_user,
)
from kubeproof.results import Finding, NotVerified, ObjectRef

CLUSTER = "cluster"  # asked cluster-wide whatever the binding: the resource is cluster-scoped
BINDING = "binding"  # asked where the binding applies: its namespace, or cluster-wide


class AuthorizerDisagrees(Exception):
    """The engine found a grant the API server's authorizer refuses: a bug to look at, never a pass."""


@dataclass(frozen=True)
class Control:
    id: str
    permission: str  # what is held, in a phrase: "read secrets"
    requests: tuple[tuple[Request, str], ...] = ()  # (question, CLUSTER or BINDING)
    expected: str = ""
    remediation: str = ""


def _asks(scope: str, group: str, resources: tuple[str, ...], verbs: tuple[str, ...]) -> tuple:
    out = []
    for resource in resources:
        resource, _, subresource = resource.partition("/")
        out.extend((Request(verb, resource, group, subresource=subresource), scope) for verb in verbs)
    return tuple(out)


_NOT_KUBERNETES = "no subject outside Kubernetes' own identities"
CONTROLS: dict[str, Control] = {c.id: c for c in (
    Control(
        "5.1.2", "read secrets",
        _asks(BINDING, "", ("secrets",), ("get", "list", "watch")),
        f"{_NOT_KUBERNETES} may get, list or watch secrets",
        "Narrow the role to the secrets this subject needs by resourceNames, or mount the secret into the "
        "workload instead of reading it through the API; list and watch hand over every secret's value.",
    ),
    Control(
        "5.1.4", "create pods",
        _asks(BINDING, "", ("pods", "replicationcontrollers"), ("create",))
        + _asks(BINDING, "apps", ("deployments", "replicasets", "statefulsets", "daemonsets"), ("create",))
        + _asks(BINDING, "batch", ("jobs", "cronjobs"), ("create",)),
        f"{_NOT_KUBERNETES} may create pods or the controllers that create them",
        "Whoever creates a pod can mount any secret and run as any service account of its namespace: grant "
        "create on pods and workload controllers only to deployment pipelines, through a binding the baseline names.",
    ),
    Control(
        "5.1.5", "use a default service account",
        (),
        "no binding grants anything to a namespace's default service account",
        "Create a dedicated service account for the workload that needs these permissions, bind the role to "
        "it and set spec.serviceAccountName; every pod that names no account runs as 'default'.",
    ),
    Control(
        "5.1.7", "act as system:masters",
        (),
        "no binding names the group system:masters other than Kubernetes' own cluster-admin binding",
        "Remove system:masters from this binding: members of that group pass every authorization check "
        "whatever RBAC says, so the binding hints at credentials issued for the group. Issue credentials for "
        "an ordinary group bound to the role it needs.",
    ),
    Control(
        "5.1.8", "bind, escalate or impersonate",
        _asks(BINDING, "rbac.authorization.k8s.io", ("roles", "clusterroles"), ("bind",))
        + _asks(BINDING, "rbac.authorization.k8s.io", ("roles",), ("escalate",))
        + _asks(CLUSTER, "rbac.authorization.k8s.io", ("clusterroles",), ("escalate",))
        + _asks(CLUSTER, "", ("users", "groups"), ("impersonate",))
        + _asks(BINDING, "", ("serviceaccounts",), ("impersonate",)),
        f"{_NOT_KUBERNETES} may bind or escalate roles, or impersonate users, groups or service accounts",
        "bind and escalate let a subject grant permissions it does not hold, impersonate lets it act as "
        "someone else: remove these verbs from the role, or keep them to a binding the baseline names.",
    ),
    Control(
        "5.1.9", "create persistent volumes",
        _asks(CLUSTER, "", ("persistentvolumes",), ("create",)),
        f"{_NOT_KUBERNETES} may create persistentvolumes",
        "A persistent volume can point at any path of a node (hostPath): let storage provisioners create them "
        "and give users persistentvolumeclaims instead.",
    ),
    Control(
        "5.1.10", "reach the kubelet through nodes/proxy",
        _asks(CLUSTER, "", ("nodes/proxy",), ("get", "create", "update", "patch", "delete")),
        f"{_NOT_KUBERNETES} may use the nodes/proxy subresource",
        "nodes/proxy reaches the kubelet's API, including running commands in any pod of the node: grant "
        "monitoring agents nodes/metrics or nodes/stats instead.",
    ),
    Control(
        "5.1.11", "approve certificate signing requests",
        _asks(CLUSTER, "certificates.k8s.io", ("certificatesigningrequests/approval",), ("update", "patch"))
        + _asks(CLUSTER, "certificates.k8s.io", ("signers",), ("approve",)),
        f"{_NOT_KUBERNETES} may approve certificate signing requests",
        "Whoever approves a CSR chooses the identity the cluster vouches for: keep approval with Kubernetes' "
        "own approver, or a binding the baseline names, limited by resourceNames to the signers it serves.",
    ),
    Control(
        "5.1.12", "change admission webhooks",
        _asks(CLUSTER, "admissionregistration.k8s.io",
              ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"),
              ("create", "update", "patch", "delete")),
        f"{_NOT_KUBERNETES} may create, change or delete admission webhook configurations",
        "An admission webhook sees, and a mutating one can rewrite, every object sent to the API server: "
        "keep these verbs with the operator that installs the webhook, through a binding the baseline names.",
    ),
    Control(
        "5.1.13", "create service account tokens",
        _asks(BINDING, "", ("serviceaccounts/token",), ("create",)),
        f"{_NOT_KUBERNETES} may create service account tokens",
        "A token request yields a credential of any service account in reach: remove create on "
        "serviceaccounts/token from the role, or limit it by resourceNames to the accounts the subject runs.",
    ),
)}
CONTROL_IDS = tuple(CONTROLS)
# The CIS ids each test of tests_cluster/test_rbac_privileges.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {"test_binding_grants_no_permission_that_hands_over_the_cluster": CONTROL_IDS}


def summarise(requests) -> list[str]:
    """Requests that differ only in their verb, written once: "get, list, watch secrets cluster-wide"."""
    verbs: dict[Request, list[str]] = {}
    for request in requests:
        verbs.setdefault(Request("", request.resource, request.group, request.namespace, request.subresource,
                                 request.name, request.path), []).append(request.verb)
    return [", ".join(v) + shape.describe() for shape, v in verbs.items()]


# -- who is exempt ---------------------------------------------------------------------------------
_BROAD_GROUPS = (AUTHENTICATED, UNAUTHENTICATED, SERVICE_ACCOUNTS)


def _labels(binding: dict) -> dict:
    return mapping(mapping(binding.get("metadata"), "binding metadata").get("labels"), "binding metadata.labels")


def is_bootstrap_binding(binding: dict, view: BindingView) -> bool:
    """Kubernetes' own: the bootstrapping label and a system: name. The label alone is not enough, a
    user's binding may copy it."""
    name = view.reference.rsplit("/", 1)[-1]
    return _labels(binding).get(BOOTSTRAP_LABEL) == "rbac-defaults" and name.startswith("system:")


def is_default_cluster_admin_binding(binding: dict, view: BindingView) -> bool:
    return (view.reference == "ClusterRoleBinding/cluster-admin"
            and _labels(binding).get(BOOTSTRAP_LABEL) == "rbac-defaults"
            and (view.role_kind, view.role_name) == ("ClusterRole", "cluster-admin"))


def is_kubernetes_identity(subject: Subject) -> bool:
    """An identity Kubernetes' own components run as. The groups every caller of a kind is in are
    not: a bootstrap binding granting them something dangerous has been tampered with."""
    if subject.kind == "ServiceAccount":
        return subject.namespace == "kube-system"
    if not subject.name.startswith("system:"):
        return False
    if subject.kind == "User":
        account = split_service_account_user(subject.name)
        return subject.name != ANONYMOUS and (account is None or account[0] == "kube-system")
    return subject.name not in _BROAD_GROUPS and not subject.name.startswith(SERVICE_ACCOUNTS + ":")


def exemption(control: str, binding: dict, view: BindingView, subject: Subject, baseline) -> str | None:
    if is_default_cluster_admin_binding(binding, view) and subject == Subject("Group", MASTERS):
        return "Kubernetes' default cluster-admin binding of system:masters"
    if is_bootstrap_binding(binding, view) and is_kubernetes_identity(subject):
        return f"Kubernetes' own bootstrap binding, for Kubernetes' own identity {subject}"
    if (control != "5.1.7" and (view.role_kind, view.role_name) == ("ClusterRole", "cluster-admin")
            and baseline.cluster_admin_allowed(str(subject))):
        return f"the baseline's rbac.cluster_admin_subjects allows {subject} full control"
    return None


def is_default_service_account(subject: Subject) -> bool:
    if subject.kind == "ServiceAccount":
        return subject.name == "default"
    account = split_service_account_user(subject.name) if subject.kind == "User" else None
    return bool(account) and account[1] == "default"


# -- assessing one binding -------------------------------------------------------------------------
@dataclass
class Held:
    """A subject this binding gives the control's permission, with the requests that prove it."""

    index: int  # position in the binding's subjects
    subject: Subject
    requests: tuple[Request, ...]


@dataclass
class Assessment:
    control: Control
    object: ObjectRef
    reference: str
    role: str
    granted: list[Request] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    exempt: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def reviews(self) -> list[tuple[tuple[str, Request], dict]]:
        """The SubjectAccessReviews that confirm each grant: ((subject, request), spec)."""
        return [((str(h.subject), r), h.subject.identity().review_spec(r)) for h in self.held for r in h.requests]

    def exempt_reason(self) -> str | None:
        """Set when the binding grants the permission, but only to exempt subjects."""
        if self.held or not self.exempt:
            return None
        return (f"{self.reference} lets {', '.join(sorted(self.exempt))} {self.control.permission}: "
                + "; ".join(sorted(set(self.exempt.values()))))

    def facts(self) -> dict:
        facts = {"binding": self.reference, "role": self.role, "grants": summarise(self.granted),
                 "subjects_holding": {str(h.subject): summarise(h.requests) for h in self.held}}
        if self.exempt:
            facts["exempt_subjects"] = dict(self.exempt)
        if self.notes:
            facts["notes"] = list(self.notes)
        return facts


def _resource_names(policy: Policy, view: BindingView) -> list[str]:
    resolved = policy.resolve(view)
    return sorted({n for rule in resolved.rules.rules for n in rule.resource_names})


def _scoped(request: Request, scope: str, view: BindingView) -> Request:
    return view.scoped(request) if scope == BINDING else request.in_namespace("")


def _concrete(rule, view: BindingView) -> Request | None:
    """One request a rule of the binding's role allows, in the binding's scope: the evidence that a
    binding to a default service account is in use. None if the rule cannot take effect there."""
    if not rule.verbs:
        return None
    if rule.non_resource_urls:
        request = Request(rule.verbs[0], path=rule.non_resource_urls[0])
    elif rule.api_groups and rule.resources:
        resource, _, subresource = rule.resources[0].partition("/")
        request = Request(rule.verbs[0], resource, rule.api_groups[0], subresource=subresource,
                          name=rule.resource_names[0] if rule.resource_names else "")
        request = view.scoped(request)
    else:
        return None
    return request if view.scope_of(request) and rule.allows(request) else None


def assess(control_id: str, binding, policy: Policy, baseline, view: BindingView | None = None) -> Assessment:
    """`view`: the binding already read, when several controls judge it."""
    control = CONTROLS[control_id]
    view = view or read_binding(binding)
    if view.unreadable:
        raise NotVerified("; ".join(view.unreadable))
    kind = view.reference.split("/", 1)[0]
    assessment = Assessment(control, ObjectRef.of(binding, kind), view.reference, view.role_reference)
    resolved = policy.resolve(view)
    if resolved.note:
        assessment.notes.append(resolved.note)
    assessment.notes.extend(view.matches_nobody)
    lag = policy.aggregation_lag().get(view.role_name or "") if view.role_kind == "ClusterRole" else None
    if lag:
        assessment.notes.append(f"{view.role_reference}: {lag}")

    if control_id == "5.1.7":
        everything = view.scoped(Request("*", "*", "*"))
        candidates = {s: (everything,) for s in view.subjects if s == Subject("Group", MASTERS)}
        granted = [everything] if candidates else []
    else:
        granted = _granted(control, policy, view, assessment)
        holders = view.subjects
        if control_id == "5.1.5":
            holders = tuple(s for s in view.subjects if is_default_service_account(s))
            granted = granted if holders else []
        candidates = {s: tuple(granted) for s in holders} if granted else {}
    assessment.granted = granted
    for index, subject in enumerate(view.subjects):
        if subject not in candidates:
            continue
        reason = exemption(control_id, binding, view, subject, baseline)
        if reason:
            assessment.exempt[str(subject)] = reason
        elif not any(h.subject == subject for h in assessment.held):
            # The engine's answer for the subject as a whole, not only through this binding: the two
            # must agree, and the review that follows must agree with both.
            requests = tuple(r for r in candidates[subject] if policy.allows(subject, r))
            if requests != candidates[subject]:
                raise AuthorizerDisagrees(
                    f"engine inconsistency: {view.reference} grants {subject} "
                    f"{', '.join(r.describe() for r in candidates[subject])} but the engine's answer for the "
                    "subject does not include it")
            assessment.held.append(Held(index, subject, requests))
    return assessment


def _granted(control: Control, policy: Policy, view: BindingView, assessment: Assessment) -> list[Request]:
    granted, doubts = [], []
    if control.id == "5.1.5":
        rules = policy.resolve(view).rules
        doubts.extend(rules.unreadable)
        for rule in rules.rules:
            request = _concrete(rule, view)
            if request and request not in granted:
                granted.append(request)
    else:
        names = _resource_names(policy, view)
        for template, scope in control.requests:
            request = _scoped(template, scope, view)
            # A rule limited by resourceNames never matches a request without a name, so ask again
            # for each name the role lists: access to one named secret is still access to secrets.
            for candidate in [request] + [request.named(n) for n in names]:
                try:
                    grant = policy.binding_allows(view, candidate)
                except NotVerified as error:
                    doubts.append(error.reason)
                    continue
                if grant:
                    granted.append(candidate)
                    break
    if doubts:
        if not granted:
            raise NotVerified(f"what {view.reference} grants could not be read: " + "; ".join(sorted(set(doubts))))
        assessment.notes.append("part of the role could not be read: " + "; ".join(sorted(set(doubts))))
    return granted


# -- confirming with the authorizer ----------------------------------------------------------------
def review_outcome(status: int, body, message: str = "") -> dict:
    """A SubjectAccessReview's answer, kept for the evidence; NotVerified when there is none."""
    if not isinstance(status, int) or not 200 <= status < 300:
        raise NotVerified(f"the SubjectAccessReview could not be made: HTTP {status} {message[:200]}".rstrip())
    answer = body.get("status") if isinstance(body, dict) else None
    if not isinstance(answer, dict) or not isinstance(answer.get("allowed", False), bool):
        raise NotVerified("the SubjectAccessReview answered without a readable status")
    outcome = {"allowed": answer.get("allowed", False), "denied": bool(answer.get("denied", False))}
    for key in ("reason", "evaluationError"):
        if isinstance(answer.get(key), str) and answer[key]:
            outcome[key] = answer[key][:500]
    return outcome


def confirmed_findings(assessment: Assessment, outcomes: dict[tuple[str, Request], dict]) -> list[Finding]:
    """One finding per subject holding the permission, once the authorizer confirmed every request.
    A missing review is NotVerified; a denied one means the engine and the authorizer disagree."""
    findings = []
    for held in assessment.held:
        for request in held.requests:
            outcome = outcomes.get((str(held.subject), request))
            if outcome is None:
                raise NotVerified(f"no SubjectAccessReview confirms that {held.subject} may {request.describe()}")
            if not outcome.get("allowed"):
                raise AuthorizerDisagrees(
                    f"engine and authorizer disagree: the RBAC engine finds that {assessment.reference} lets "
                    f"{held.subject} {request.describe()}, but the API server's SubjectAccessReview did not allow "
                    f"it ({outcome.get('reason') or outcome.get('evaluationError') or 'no reason given'})")
        observed = f"{held.subject} may " + "; ".join(summarise(held.requests))
        findings.append(Finding((assessment.control.id,), assessment.object, f"subjects[{held.index}]", observed,
                                assessment.control.expected, assessment.control.remediation))
    return findings


# -- every control at once, as the suite runs them: one result per binding --------------------------
@dataclass
class BindingAssessment:
    """Every control's assessment of one binding. A person fixes a binding, not a control: one result
    per binding, whose findings each carry the control they break."""

    reference: str
    role: str
    assessments: dict[str, Assessment] = field(default_factory=dict)
    not_verified: dict[str, str] = field(default_factory=dict)  # control -> why it could not be judged

    def reviews(self) -> list[tuple[tuple[str, Request], dict]]:
        """The SubjectAccessReviews every control needs, each question once."""
        wanted: dict[tuple[str, Request], dict] = {}
        for assessment in self.assessments.values():
            for key, spec in assessment.reviews():
                wanted.setdefault(key, spec)
        return list(wanted.items())

    def exempt_reason(self) -> str | None:
        """Set when every permission found was held only by exempt subjects."""
        if any(a.held for a in self.assessments.values()) or self.not_verified:
            return None
        reasons = [a.exempt_reason() for a in self.assessments.values()]
        reasons = [f"{control}: {reason}" for control, reason in zip(self.assessments, reasons, strict=True) if reason]
        return " | ".join(reasons) or None

    def facts(self) -> dict:
        """What the binding grants under each control it touches; controls it grants nothing under are
        listed together, so the evidence says each was judged."""
        facts: dict = {"binding": self.reference, "role": self.role, "controls": {}, "nothing_granted_under": []}
        notes: list[str] = []
        for control, assessment in self.assessments.items():
            judged = assessment.facts()
            notes.extend(n for n in judged.pop("notes", []) if n not in notes)
            judged.pop("binding"), judged.pop("role")
            if judged["grants"] or judged.get("exempt_subjects"):
                facts["controls"][control] = judged
            else:
                facts["nothing_granted_under"].append(control)
        if self.not_verified:
            facts["not_verified"] = dict(self.not_verified)
        if notes:
            facts["notes"] = notes
        return facts


def assess_binding(binding, policy: Policy, baseline) -> BindingAssessment:
    """Every control's assessment of `binding`. A control that cannot be judged is recorded as not
    verified, never as a pass; a binding that cannot be read at all is NotVerified."""
    view = read_binding(binding)
    if view.unreadable:
        raise NotVerified("; ".join(view.unreadable))
    judged = BindingAssessment(view.reference, view.role_reference)
    for control in CONTROLS:
        try:
            judged.assessments[control] = assess(control, binding, policy, baseline, view)
        except NotVerified as error:
            judged.not_verified[control] = error.reason
    return judged


def confirmed_binding_findings(judged: BindingAssessment, outcomes: dict[tuple[str, Request], dict]) -> list[Finding]:
    """Every control's confirmed findings. Where none is found but some control could not be judged,
    the binding is NotVerified: a control nobody could evaluate is not a pass."""
    findings = [f for assessment in judged.assessments.values() for f in confirmed_findings(assessment, outcomes)]
    if not findings and judged.not_verified:
        raise NotVerified("; ".join(f"CIS {control}: {reason}" for control, reason in judged.not_verified.items()))
    return findings
