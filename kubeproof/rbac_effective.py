"""Effective RBAC permissions, computed from the RBAC objects the way the API server decides them.

Pure: the input is the snapshot's plain dicts (Roles, ClusterRoles, RoleBindings,
ClusterRoleBindings, ServiceAccounts), nothing is read from a cluster. The rules mirror upstream
Kubernetes (plugin/pkg/auth/authorizer/rbac and pkg/registry/rbac/validation, v1.37) and are checked
against the real authorizer by tests_e2e/test_rbac_differential.py:

* A ClusterRoleBinding applies everywhere. A RoleBinding applies only to resource requests in its
  own namespace; its roleRef names a Role in that namespace or a ClusterRole (whose rules are then
  confined to the namespace). Cluster-scoped and non-resource requests see ClusterRoleBindings only.
* A binding whose role does not exist grants nothing; neither does a roleRef kind other than Role
  or ClusterRole. The Policy keeps a note of each such binding for the evidence.
* Rules match as upstream's RuleAllows: `*` in verbs, apiGroups and resources matches anything
  (a resource `*` also matches every subresource); `*/sub` matches subresource `sub` of any
  resource; `pods/*` is NOT a pattern (it only matches a request for the literal subresource `*`);
  an empty resourceNames matches every name, a non-empty one never matches a request without a name
  (a list, a create, a question about "any name"); a nonResourceURL ending in `*` matches by prefix.
  Every comparison is exact and case-sensitive.
* Subjects: a User matches by name, a Group by membership, a ServiceAccount `ns/name` is the user
  `system:serviceaccount:ns:name` (a RoleBinding's ServiceAccount subject without a namespace means
  the binding's namespace; in a ClusterRoleBinding it matches nobody). Any other kind matches nobody.
* The API server allows everything to members of `system:masters` before any authorizer runs;
  `can()` models that. It does not model the Node authorizer (`system:nodes`), webhooks or ABAC,
  which can only add permissions in front of RBAC.

Aggregated ClusterRoles: the controller-manager's aggregation controller rewrites the `rules` of a
ClusterRole with an aggregationRule to the union of the rules of every other ClusterRole its label
selectors match. We judge such a role on its stored rules UNION the rules its selectors gather
(transitively), so a snapshot taken before the controller caught up is not judged on stale, smaller
rules: RBAC is additive, so the union is what the role grants now or will grant in a moment, and
for an audit erring towards more is failing closed. Where the two differ, `aggregation_lag()` says
so, and the e2e differential test waits until they agree before it compares with the authorizer.
The controller writes with a server-side apply, and when its selectors gather no rules it applies
none: the role then keeps the rules it was created with, which the union also keeps.

Malformed objects never crash and never shrink an answer silently: RBAC only ever adds permissions,
so an answer "allowed" found through readable objects stands, and an answer "not allowed" that an
unreadable object might have changed raises NotVerified."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeproof.checks._shape import listing, mapping
from kubeproof.results import NotVerified

RBAC_GROUP = "rbac.authorization.k8s.io"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SERVICE_ACCOUNTS = "system:serviceaccounts"
SERVICE_ACCOUNT_USER_PREFIX = "system:serviceaccount:"
MASTERS = "system:masters"
SUBJECT_KINDS = ("User", "Group", "ServiceAccount")
_LABEL_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def service_account_user(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}"


def split_service_account_user(user: str) -> tuple[str, str] | None:
    """(namespace, name) when `user` is a service account's user name, as the authenticator makes it."""
    if not user.startswith(SERVICE_ACCOUNT_USER_PREFIX):
        return None
    parts = user[len(SERVICE_ACCOUNT_USER_PREFIX):].split(":")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED)


# -- who asks --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """What the authorizer sees of a caller: a user name and groups. `user` may be empty for "some
    member of these groups" (a SubjectAccessReview accepts groups without a user)."""

    user: str
    groups: tuple[str, ...] = ()

    @property
    def superuser(self) -> bool:
        return MASTERS in self.groups

    def review_spec(self, request: Request) -> dict:
        """The spec of a SubjectAccessReview asking the real authorizer the same question."""
        spec: dict = {"groups": list(self.groups)} if self.groups else {}
        if self.user:
            spec["user"] = self.user
        spec.update(request.review_attributes())
        return spec


@dataclass(frozen=True, order=True)
class Subject:
    """A subject as bindings name it: User, Group or ServiceAccount (with its namespace)."""

    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @classmethod
    def parse(cls, reference: str) -> Subject:
        """'User/alice', 'Group/devs', 'ServiceAccount/ns/name' (as rbac.subject_reference writes them)."""
        kind, _, rest = reference.partition("/")
        if kind == "ServiceAccount":
            namespace, _, name = rest.partition("/")
            if namespace and name:
                return cls(kind, name, namespace)
        elif kind in ("User", "Group") and rest:
            return cls(kind, rest)
        raise ValueError(f"not a subject reference: {reference!r}")

    def identity(self) -> Identity:
        """The identity of a representative caller this subject stands for: the user itself for a
        User or ServiceAccount, some member for a Group. Every authenticated caller is also in
        system:authenticated, and a service account in system:serviceaccounts and
        system:serviceaccounts:<namespace>; other groups a user may have come from the authenticator
        and cannot be seen in RBAC objects."""
        if self.kind == "ServiceAccount":
            return Identity(service_account_user(self.namespace or "", self.name),
                            service_account_groups(self.namespace or ""))
        if self.kind == "User":
            if self.name == ANONYMOUS:
                return Identity(self.name, (UNAUTHENTICATED,))
            account = split_service_account_user(self.name)
            if account:
                return Identity(self.name, service_account_groups(account[0]))
            return Identity(self.name, (AUTHENTICATED,))
        if self.kind == "Group":
            if self.name == UNAUTHENTICATED:
                return Identity(ANONYMOUS, (UNAUTHENTICATED,))
            if self.name == AUTHENTICATED:
                return Identity("", (AUTHENTICATED,))
            if self.name == SERVICE_ACCOUNTS:
                return Identity("", (SERVICE_ACCOUNTS, AUTHENTICATED))
            if self.name.startswith(SERVICE_ACCOUNTS + ":"):
                return Identity("", (self.name, SERVICE_ACCOUNTS, AUTHENTICATED))
            return Identity("", (self.name, AUTHENTICATED))
        raise ValueError(f"{self.kind} is not a subject kind RBAC knows")

    def matches(self, identity: Identity, binding_namespace: str | None) -> bool:
        """Whether a binding naming this subject applies to the caller (upstream appliesToUser)."""
        if self.kind == "User":
            return identity.user == self.name
        if self.kind == "Group":
            return self.name in identity.groups
        if self.kind == "ServiceAccount":
            namespace = self.namespace or binding_namespace
            return bool(namespace) and identity.user == service_account_user(namespace, self.name)
        return False


# -- what is asked ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One authorization question. `namespace` empty: cluster-wide (for a namespaced resource, "in
    every namespace"). `path` set: a non-resource request (/healthz, /metrics, ...)."""

    verb: str
    resource: str = ""
    group: str = ""
    namespace: str = ""
    subresource: str = ""
    name: str = ""
    path: str | None = None

    @property
    def is_resource_request(self) -> bool:
        return self.path is None

    def review_attributes(self) -> dict:
        if not self.is_resource_request:
            return {"nonResourceAttributes": {"path": self.path, "verb": self.verb}}
        attributes = {"verb": self.verb, "group": self.group, "resource": self.resource}
        for key, value in (("namespace", self.namespace), ("subresource", self.subresource), ("name", self.name)):
            if value:
                attributes[key] = value
        return {"resourceAttributes": attributes}

    def describe(self) -> str:
        if not self.is_resource_request:
            return f"{self.verb} {self.path}"
        resource = self.resource + (f"/{self.subresource}" if self.subresource else "")
        if self.group:
            resource += f".{self.group}"
        named = f" named {self.name!r}" if self.name else ""
        where = f"in namespace {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.verb} {resource}{named} {where}"

    def in_namespace(self, namespace: str) -> Request:
        return Request(self.verb, self.resource, self.group, namespace, self.subresource, self.name, self.path)

    def named(self, name: str) -> Request:
        return Request(self.verb, self.resource, self.group, self.namespace, self.subresource, name, self.path)


# -- rules -----------------------------------------------------------------------------------------
def _strings(value, where: str) -> tuple[str, ...]:
    values = listing(value, where)
    if any(not isinstance(v, str) for v in values):
        raise NotVerified(f"{where} holds a value that is not a string")
    return tuple(values)


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw, where: str) -> Rule:
        if not isinstance(raw, dict):
            raise NotVerified(f"{where} is a {type(raw).__name__}, not a rule")
        return cls(
            _strings(raw.get("verbs"), f"{where}.verbs"),
            _strings(raw.get("apiGroups"), f"{where}.apiGroups"),
            _strings(raw.get("resources"), f"{where}.resources"),
            _strings(raw.get("resourceNames"), f"{where}.resourceNames"),
            _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs"),
        )

    def to_dict(self) -> dict:
        out = {"verbs": list(self.verbs)}
        for key, values in (("apiGroups", self.api_groups), ("resources", self.resources),
                            ("resourceNames", self.resource_names), ("nonResourceURLs", self.non_resource_urls)):
            if values:
                out[key] = list(values)
        return out

    def allows(self, request: Request) -> bool:
        if not ("*" in self.verbs or request.verb in self.verbs):
            return False
        if not request.is_resource_request:
            return any(_url_matches(url, request.path) for url in self.non_resource_urls)
        if not ("*" in self.api_groups or request.group in self.api_groups):
            return False
        combined = f"{request.resource}/{request.subresource}" if request.subresource else request.resource
        if not any(_resource_matches(r, combined, request.subresource) for r in self.resources):
            return False
        return not self.resource_names or request.name in self.resource_names


def _resource_matches(rule_resource: str, combined: str, subresource: str) -> bool:
    if rule_resource == "*" or rule_resource == combined:
        return True
    # "*/sub" stands for subresource "sub" of every resource; nothing else is a pattern.
    return bool(subresource) and rule_resource == f"*/{subresource}"


def _url_matches(rule_url: str, path: str) -> bool:
    if rule_url == "*" or rule_url == path:
        return True
    # Upstream trims every trailing '*' and compares prefixes.
    return rule_url.endswith("*") and path.startswith(rule_url.rstrip("*"))


@dataclass(frozen=True)
class RuleSet:
    """The rules a role grants, and why part of them could not be read (never silently dropped)."""

    rules: tuple[Rule, ...] = ()
    unreadable: tuple[str, ...] = ()

    def allowing(self, request: Request) -> Rule | None:
        """The first rule allowing the request; NotVerified when none does but an unreadable part might."""
        for rule in self.rules:
            if rule.allows(request):
                return rule
        if self.unreadable:
            raise NotVerified("; ".join(self.unreadable))
        return None

    def union(self, other: RuleSet) -> RuleSet:
        rules = self.rules + tuple(r for r in other.rules if r not in self.rules)
        unreadable = self.unreadable + tuple(u for u in other.unreadable if u not in self.unreadable)
        return RuleSet(rules, unreadable)


def parse_rules(raw_rules, where: str) -> RuleSet:
    try:
        items = listing(raw_rules, f"{where} rules")
    except NotVerified as error:
        return RuleSet((), (error.reason,))
    rules, unreadable = [], []
    for index, raw in enumerate(items):
        try:
            rule = Rule.parse(raw, f"{where} rules[{index}]")
        except NotVerified as error:
            unreadable.append(error.reason)
        else:
            if rule not in rules:
                rules.append(rule)
    return RuleSet(tuple(rules), tuple(unreadable))


# -- label selectors (aggregation) -----------------------------------------------------------------
def _selector_matches(selector, labels: dict, where: str) -> bool:
    selector = mapping(selector, where)
    for key, value in mapping(selector.get("matchLabels"), f"{where}.matchLabels").items():
        if not isinstance(value, str):
            raise NotVerified(f"{where}.matchLabels[{key!r}] is not a string")
        if labels.get(key) != value:
            return False
    for index, expression in enumerate(listing(selector.get("matchExpressions"), f"{where}.matchExpressions")):
        here = f"{where}.matchExpressions[{index}]"
        expression = mapping(expression, here)
        key, operator = expression.get("key"), expression.get("operator")
        values = _strings(expression.get("values"), f"{here}.values")
        if not isinstance(key, str) or operator not in _LABEL_OPERATORS:
            raise NotVerified(f"{here} has no readable key or operator")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


# -- bindings --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BindingView:
    """A binding as the authorizer reads it."""

    reference: str  # ClusterRoleBinding/NAME or RoleBinding/NAMESPACE/NAME
    namespace: str | None  # None for a ClusterRoleBinding
    role_kind: str | None
    role_name: str | None
    subjects: tuple[Subject, ...] = ()
    matches_nobody: tuple[str, ...] = ()  # subjects the authorizer never applies, with why
    unreadable: tuple[str, ...] = ()  # why part of the binding could not be read
    unreadable_subjects: tuple[str, ...] = ()  # the part of `unreadable` about whom it applies to

    @property
    def role_reference(self) -> str:
        if self.role_kind == "Role":
            return f"Role/{self.namespace}/{self.role_name}"
        return f"{self.role_kind}/{self.role_name}"

    def scope_of(self, request: Request) -> bool:
        """Whether this binding takes part in deciding the request at all."""
        if self.namespace is None:
            return True
        return request.is_resource_request and request.namespace == self.namespace

    def scoped(self, request: Request) -> Request:
        """The request as this binding can grant it: a RoleBinding only within its namespace."""
        return request.in_namespace(self.namespace) if self.namespace is not None else request


def read_binding(binding) -> BindingView:
    """Never raises: what cannot be read is kept in `unreadable`, for the question to decide whether
    it matters. Only a binding without a readable name raises NotVerified."""
    if not isinstance(binding, dict):
        raise NotVerified(f"the binding is a {type(binding).__name__}, not an object")
    meta = binding.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        raise NotVerified("a binding has no readable metadata.name")
    name, namespace = meta["name"], meta.get("namespace")
    unreadable: list[str] = []
    unreadable_subjects: list[str] = []
    namespaced = binding.get("kind") == "RoleBinding" or namespace not in (None, "")
    if namespaced and not (isinstance(namespace, str) and namespace):
        raise NotVerified(f"RoleBinding {name} has no readable metadata.namespace")
    reference = f"RoleBinding/{namespace}/{name}" if namespaced else f"ClusterRoleBinding/{name}"
    namespace = namespace if namespaced else None
    role_kind = role_name = None
    ref = binding.get("roleRef")
    if isinstance(ref, dict) and isinstance(ref.get("kind"), str) and isinstance(ref.get("name"), str) and ref["name"]:
        role_kind, role_name = ref["kind"], ref["name"]
    else:
        unreadable.append(f"{reference} has no readable roleRef")
    subjects: list[Subject] = []
    nobody: list[str] = []
    raw_subjects = binding.get("subjects")
    if raw_subjects is not None and not isinstance(raw_subjects, list):
        unreadable_subjects.append(f"{reference} subjects is not a list")
        raw_subjects = []
    for index, raw in enumerate(raw_subjects or []):
        where = f"{reference} subjects[{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("kind"), str) or not isinstance(raw.get("name"), str):
            unreadable_subjects.append(f"{where} has no readable kind and name")
            continue
        kind, subject_name = raw["kind"], raw["name"]
        subject_namespace = raw.get("namespace")
        if subject_namespace is not None and not isinstance(subject_namespace, str):
            unreadable_subjects.append(f"{where}.namespace is not a string")
            continue
        if kind not in SUBJECT_KINDS:
            nobody.append(f"{where}: kind {kind!r} matches nobody")
        elif not subject_name:
            nobody.append(f"{where}: an empty name matches nobody")
        elif kind == "ServiceAccount":
            subject_namespace = subject_namespace or namespace
            if not subject_namespace:
                nobody.append(f"{where}: ServiceAccount {subject_name} without a namespace matches nobody")
            else:
                subjects.append(Subject(kind, subject_name, subject_namespace))
        else:
            subjects.append(Subject(kind, subject_name))
    return BindingView(reference, namespace, role_kind, role_name, tuple(subjects), tuple(nobody),
                       tuple(unreadable + unreadable_subjects), tuple(unreadable_subjects))


@dataclass(frozen=True)
class Grant:
    """Why a request is allowed: the binding, its role, the rule, and the subject it names."""

    binding: str
    role: str
    rule: Rule
    subject: Subject | None = None

    def to_dict(self) -> dict:
        return {"binding": self.binding, "role": self.role, "rule": self.rule.to_dict(),
                **({"subject": str(self.subject)} if self.subject else {})}


# -- the policy ------------------------------------------------------------------------------------
@dataclass
class _Resolved:
    rules: RuleSet
    found: bool
    note: str | None = None


@dataclass(repr=False)
class Policy:
    """Every RBAC object of a cluster, and the questions asked of them."""

    roles: list = field(default_factory=list)
    clusterroles: list = field(default_factory=list)
    rolebindings: list = field(default_factory=list)
    clusterrolebindings: list = field(default_factory=list)
    serviceaccounts: list = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("roles", "clusterroles", "rolebindings", "clusterrolebindings", "serviceaccounts"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise NotVerified(f"the {name} are a {type(value).__name__}, not a list")
        self.notes: list[str] = []  # for the evidence: unreadable objects, dangling role references
        self._roles: dict[tuple[str, str], RuleSet] = {}
        # A role whose name cannot be read might be the one a binding refers to: "it does not
        # exist" then becomes "cannot tell", never "grants nothing".
        self._unreadable_roles: list[str] = []
        self._unreadable_clusterroles: list[str] = []
        for role in self.roles:
            key = _object_key(role, namespaced=True, notes=self._unreadable_roles, kind="Role")
            if key:
                self._roles[key] = parse_rules(role.get("rules"), f"Role/{key[0]}/{key[1]}")
        self._stored: dict[str, RuleSet] = {}
        self._labels: dict[str, dict | None] = {}
        self._selectors: dict[str, list | str] = {}  # aggregated role -> selectors, or why unreadable
        for role in self.clusterroles:
            key = _object_key(role, namespaced=False, notes=self._unreadable_clusterroles, kind="ClusterRole")
            if not key:
                continue
            name = key[1]
            self._stored[name] = parse_rules(role.get("rules"), f"ClusterRole/{name}")
            labels = role["metadata"].get("labels")
            self._labels[name] = labels if isinstance(labels, dict) and all(
                isinstance(v, str) for v in labels.values()) else (None if labels is not None else {})
            aggregation = role.get("aggregationRule")
            if aggregation is not None:
                if isinstance(aggregation, dict) and isinstance(aggregation.get("clusterRoleSelectors"), list):
                    self._selectors[name] = aggregation["clusterRoleSelectors"]
                else:
                    self._selectors[name] = f"ClusterRole/{name} aggregationRule is not readable"
        self.notes.extend(self._unreadable_roles + self._unreadable_clusterroles)
        self._selected = {name: self._select(name) for name in self._selectors}
        self._lag: dict[str, str] | None = None
        self._clusterroles = self._aggregate()
        self._bindings: list[BindingView] = []
        self._unreadable_bindings: list[str] = []
        for binding, kind in [(b, "ClusterRoleBinding") for b in self.clusterrolebindings] + \
                             [(b, "RoleBinding") for b in self.rolebindings]:
            try:
                view = read_binding(binding if not isinstance(binding, dict) else {"kind": kind, **binding})
            except NotVerified as error:
                self._unreadable_bindings.append(error.reason)
                self.notes.append(error.reason)
                continue
            self._bindings.append(view)
            self.notes.extend(view.unreadable)
            resolved = self.resolve(view)
            if resolved.note:
                self.notes.append(resolved.note)
        self._by_namespace: dict[str | None, list[BindingView]] = {}
        for view in self._bindings:
            self._by_namespace.setdefault(view.namespace, []).append(view)

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(getattr(self, n))} {n}" for n in
                           ("roles", "clusterroles", "rolebindings", "clusterrolebindings", "serviceaccounts"))
        return f"Policy({counts})"

    # -- aggregation -------------------------------------------------------------------------------
    def _select(self, name: str) -> tuple[list[str], list[str]]:
        """The ClusterRoles an aggregated role's selectors match (itself excluded), and what could
        not be judged."""
        selectors = self._selectors[name]
        if isinstance(selectors, str):
            return [], [selectors]
        chosen, unsure = [], []
        for other in sorted(self._stored):
            if other == name:
                continue
            labels = self._labels[other]
            for index, selector in enumerate(selectors):
                where = f"ClusterRole/{name} aggregationRule.clusterRoleSelectors[{index}]"
                if labels is None:
                    unsure.append(f"ClusterRole/{other} has unreadable labels; {where} may select it")
                    break
                try:
                    if _selector_matches(selector, labels, where):
                        chosen.append(other)
                        break
                except NotVerified as error:
                    unsure.append(error.reason)
                    break
        # A ClusterRole without a readable name may carry labels these selectors match.
        unsure.extend(self._unreadable_clusterroles)
        return chosen, sorted(set(unsure))

    def _aggregate(self) -> dict[str, RuleSet]:
        effective = dict(self._stored)
        # A fixpoint: an aggregated role may select another aggregated role.
        for _ in range(len(self._selectors) + 1):
            changed = False
            for name, (chosen, unsure) in self._selected.items():
                merged = self._stored[name].union(RuleSet((), tuple(unsure)))
                for other in chosen:
                    merged = merged.union(effective[other])
                before = effective[name]
                if set(merged.rules) != set(before.rules) or set(merged.unreadable) != set(before.unreadable):
                    effective[name], changed = merged, True
            if not changed:
                break
        return effective

    def aggregation_lag(self) -> dict[str, str]:
        """Aggregated ClusterRoles whose stored rules are not (yet) what the aggregation controller
        would write from the rules stored in the roles their selectors match."""
        if self._lag is not None:
            return dict(self._lag)
        lagging = {}
        for name, (chosen, unsure) in self._selected.items():
            target: list[Rule] = []
            for other in chosen:
                target.extend(r for r in self._stored[other].rules if r not in target)
            stored = set(self._stored[name].rules)
            if unsure:
                lagging[name] = "; ".join(unsure)
            elif not target:
                # The controller writes its union with a server-side apply; an empty union applies no
                # rules at all, so whatever rules the role holds stay (seen on a v1.37 cluster).
                continue
            elif stored != set(target):
                missing = len(set(target) - stored)
                extra = len(stored - set(target))
                lagging[name] = (f"stored rules differ from what its selectors gather ({missing} missing, "
                                 f"{extra} not selected); judged on the union")
        self._lag = lagging
        return dict(lagging)

    # -- resolving bindings --------------------------------------------------------------------------
    def role_rules(self, kind: str, name: str, namespace: str | None = None) -> RuleSet | None:
        """A role's effective rules (aggregation included); None when it does not exist."""
        if kind == "ClusterRole":
            return self._clusterroles.get(name)
        if kind == "Role" and namespace:
            return self._roles.get((namespace, name))
        return None

    def resolve(self, view: BindingView) -> _Resolved:
        if view.role_kind is None:
            return _Resolved(RuleSet((), view.unreadable), True)
        if view.role_kind not in ("Role", "ClusterRole"):
            return _Resolved(RuleSet(), False,
                             f"{view.reference} refers to a {view.role_kind!r}, which is not a role kind: it grants nothing")
        if view.role_kind == "Role" and view.namespace is None:
            return _Resolved(RuleSet(), False,
                             f"{view.reference} refers to Role {view.role_name} but has no namespace: it grants nothing")
        rules = self.role_rules(view.role_kind, view.role_name, view.namespace)
        unreadable = self._unreadable_clusterroles if view.role_kind == "ClusterRole" else self._unreadable_roles
        if rules is None and unreadable:
            return _Resolved(RuleSet((), tuple(unreadable)), False,
                             f"{view.reference} refers to {view.role_reference}, which was not found among the "
                             "readable roles; an unreadable one might be it")
        if rules is None:
            return _Resolved(RuleSet(), False,
                             f"{view.reference} refers to {view.role_reference}, which does not exist: it grants "
                             "nothing until a role of that name is created")
        return _Resolved(rules, True)

    def binding(self, binding: dict) -> BindingView:
        return read_binding(binding)

    def binding_allows(self, binding, request: Request) -> Grant | None:
        """Whether this binding grants the request (scoped to its namespace if a RoleBinding) to the
        subjects it names: the grant, None, or NotVerified if an unreadable part might grant it."""
        view = binding if isinstance(binding, BindingView) else read_binding(binding)
        if not view.scope_of(request):
            return None
        resolved = self.resolve(view)
        rule = resolved.rules.allowing(request)
        return Grant(view.reference, view.role_reference, rule) if rule else None

    # -- questions -------------------------------------------------------------------------------------
    def explain(self, who, request: Request) -> list[Grant]:
        """Every grant allowing the request to `who` (a Subject or Identity). Empty: not allowed by RBAC.
        NotVerified: no readable grant, but an unreadable object might grant it."""
        identity = who.identity() if isinstance(who, Subject) else who
        grants: list[Grant] = []
        doubts: list[str] = list(self._unreadable_bindings)
        candidates = list(self._by_namespace.get(None, []))
        if request.is_resource_request and request.namespace:
            candidates += self._by_namespace.get(request.namespace, [])
        for view in candidates:
            subject = next((s for s in view.subjects if s.matches(identity, view.namespace)), None)
            if subject is None:
                # Whom an unreadable subject names is unknown: it might be this caller.
                doubts.extend(view.unreadable_subjects)
                continue
            resolved = self.resolve(view)
            try:
                rule = resolved.rules.allowing(request)
            except NotVerified as error:
                doubts.append(error.reason)
                continue
            if rule:
                grants.append(Grant(view.reference, view.role_reference, rule, subject))
        if not grants and doubts:
            raise NotVerified("whether RBAC allows it depends on objects that could not be read: "
                              + "; ".join(sorted(set(doubts))[:5]))
        return grants

    def can(self, subject, verb: str, resource: str = "", group: str = "", namespace: str | None = None,
            subresource: str = "", name: str = "", path: str | None = None) -> bool:
        """Whether the subject (Subject or Identity) may do this, as the API server decides it with
        RBAC: the system:masters superuser short cut, then every binding that applies."""
        request = Request(verb, resource, group, namespace or "", subresource, name, path)
        return self.allows(subject, request)

    def allows(self, subject, request: Request) -> bool:
        identity = subject.identity() if isinstance(subject, Subject) else subject
        if identity.superuser:
            return True
        return bool(self.explain(identity, request))

    def subjects(self) -> list[Subject]:
        """Every subject some binding names, and every ServiceAccount that exists."""
        found = {s for view in self._bindings for s in view.subjects}
        for account in self.serviceaccounts:
            meta = account.get("metadata") if isinstance(account, dict) else None
            if isinstance(meta, dict) and isinstance(meta.get("name"), str) and isinstance(meta.get("namespace"), str):
                found.add(Subject("ServiceAccount", meta["name"], meta["namespace"]))
        return sorted(found)

    def who_can(self, verb: str, resource: str, group: str = "", namespace: str | None = None,
                subresource: str = "", name: str = "") -> list[Subject]:
        """The subjects (named in bindings, or existing ServiceAccounts) that may do this."""
        request = Request(verb, resource, group, namespace or "", subresource, name)
        return [s for s in self.subjects() if self.allows(s, request)]


def _object_key(obj, namespaced: bool, notes: list[str], kind: str) -> tuple[str, str] | None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        notes.append(f"a {kind} without a readable metadata.name was left out")
        return None
    if not namespaced:
        return ("", name)
    namespace = meta.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        notes.append(f"{kind} {name} without a readable namespace was left out")
        return None
    return (namespace, name)
