"""The effective-permission engine against the API server's own authorizer: hypothesis generates
Roles, ClusterRoles (aggregated ones among them), RoleBindings and ClusterRoleBindings for users,
groups and service accounts, writes them into one hardened embedded cluster, and for generated
questions compares `Policy.allows` with a SubjectAccessReview. Zero disagreements allowed.

Each example's objects carry names and aggregation labels of their own and are deleted afterwards.
The authorizer reads RBAC objects from informer caches, so before comparing, each example writes
sentinel grants last and waits until the authorizer allows them: by then every earlier write and
deletion of the same kinds has reached it. Aggregated roles are waited for too (the controller
fills their rules), so the engine's "stored rules plus what the selectors gather" equals the
stored rules the authorizer uses."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kubeproof.backends.http import KubeHttp
from kubeproof.controlplane import EmbeddedCluster
from kubeproof.rbac_effective import Policy, Request, Subject

RBAC = "/apis/rbac.authorization.k8s.io/v1"
API_GROUP = "rbac.authorization.k8s.io"
NAMESPACES = ("kp-a", "kp-b")
MARK = "kubeproof-differential"  # label on every object an example writes, to tell them apart
AGGREGATE = "kubeproof-aggregate"  # the only label key generated selectors use
SENTINEL_USER = "kubeproof-sentinel"
EXAMPLES = int(os.environ.get("KUBEPROOF_RBAC_EXAMPLES", "100"))
QUERIES_PER_EXAMPLE = 24
STATS = {"attempts": 0, "examples": 0, "queries": 0, "allowed": 0, "disagreements": 0}

# -- what is generated -----------------------------------------------------------------------------
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "bind", "escalate", "impersonate",
         "approve", "*")
GROUPS = ("", "apps", API_GROUP, "certificates.k8s.io", "*")
RULE_RESOURCES = ("pods", "secrets", "deployments", "pods/exec", "pods/log", "*/scale", "deployments/scale", "*",
                  "pods/*", "roles", "clusterroles", "users", "groups", "serviceaccounts", "serviceaccounts/token",
                  "nodes/proxy", "persistentvolumes", "signers", "certificatesigningrequests/approval", "*/*")
QUERY_RESOURCES = ("pods", "secrets", "deployments", "roles", "clusterroles", "users", "serviceaccounts", "nodes",
                   "persistentvolumes", "signers", "certificatesigningrequests", "*")
SUBRESOURCES = ("", "", "", "exec", "log", "scale", "token", "proxy", "approval", "*")
NAMES = ("x", "y")
URLS = ("/healthz", "/logs/*", "/metrics", "*", "/api*", "/custom/path", "/version")
PATHS = ("/healthz", "/logs/app", "/logs", "/metrics", "/api", "/apis/x", "/custom/path", "/custom", "/version",
         "/livez")
LABELS = ("a", "b")
BOOTSTRAP_ROLES = ("view", "edit", "admin", "system:basic-user", "cluster-admin")
# Callers the queries ask about. System:nodes is left out on purpose: the Node authorizer, which
# the engine does not model, answers for it ahead of RBAC.
POOL = (
    Subject("User", "alice"), Subject("User", "bob"), Subject("User", "system:serviceaccount:kp-a:robot"),
    Subject("User", "system:anonymous"),
    Subject("Group", "devs"), Subject("Group", "ops"), Subject("Group", "system:authenticated"),
    Subject("Group", "system:unauthenticated"), Subject("Group", "system:serviceaccounts"),
    Subject("Group", "system:serviceaccounts:kp-a"), Subject("Group", "system:masters"),
    Subject("ServiceAccount", "robot", "kp-a"), Subject("ServiceAccount", "default", "kp-a"),
    Subject("ServiceAccount", "default", "kp-b"),
)


def _some(elements, min_size=1, max_size=3):
    return st.lists(st.sampled_from(elements), min_size=min_size, max_size=max_size, unique=True)


@st.composite
def resource_rules(draw):
    rule = {"verbs": draw(_some(VERBS)), "apiGroups": draw(_some(GROUPS, max_size=2)),
            "resources": draw(_some(RULE_RESOURCES))}
    names = draw(_some(NAMES, min_size=0, max_size=2))
    if names:
        rule["resourceNames"] = names
    return rule


@st.composite
def url_rules(draw):
    return {"verbs": draw(_some(("get", "post", "*"))), "nonResourceURLs": draw(_some(URLS, max_size=2))}


@st.composite
def selectors(draw):
    kind = draw(st.sampled_from(("labels", "In", "NotIn", "Exists", "DoesNotExist")))
    if kind == "labels":
        return {"matchLabels": {AGGREGATE: draw(st.sampled_from(LABELS))}}
    expression = {"key": AGGREGATE, "operator": kind}
    if kind in ("In", "NotIn"):
        expression["values"] = draw(_some(LABELS, max_size=2))
    return {"matchExpressions": [expression]}


@st.composite
def subjects(draw, namespaced: bool):
    chosen = []
    for _ in range(draw(st.integers(1, 3))):
        subject = draw(st.sampled_from(POOL))
        if subject.kind == "ServiceAccount":
            entry = {"kind": "ServiceAccount", "name": subject.name, "namespace": subject.namespace}
            if namespaced and draw(st.booleans()):
                del entry["namespace"]  # a RoleBinding's own namespace is meant
        else:
            entry = {"kind": subject.kind, "name": subject.name, "apiGroup": API_GROUP}
        if entry not in chosen:
            chosen.append(entry)
    return chosen


@st.composite
def scenarios(draw):
    clusterroles = []
    for index in range(draw(st.integers(0, 4))):
        role = {"name": f"c{index}", "rules": draw(st.lists(st.one_of(resource_rules(), url_rules()), max_size=3))}
        if draw(st.booleans()):
            role["labels"] = {AGGREGATE: draw(st.sampled_from(LABELS))}
        if draw(st.integers(0, 3)) == 0:
            role["selectors"] = draw(st.lists(selectors(), min_size=1, max_size=2))
        clusterroles.append(role)
    roles = [{"namespace": draw(st.sampled_from(NAMESPACES)), "name": f"r{index}",
              "rules": draw(st.lists(resource_rules(), min_size=1, max_size=3))}
             for index in range(draw(st.integers(0, 3)))]
    cluster_role_names = [r["name"] for r in clusterroles] + list(BOOTSTRAP_ROLES) + ["missing"]
    bindings = []
    for index in range(draw(st.integers(1, 5))):
        namespace = draw(st.sampled_from((None,) + NAMESPACES))
        if namespace and draw(st.booleans()):
            role_kind, role_name = "Role", draw(st.sampled_from([r["name"] for r in roles] + ["missing"]))
        else:
            role_kind, role_name = "ClusterRole", draw(st.sampled_from(cluster_role_names))
        bindings.append({"namespace": namespace, "name": f"b{index}", "role_kind": role_kind,
                         "role_name": role_name, "subjects": draw(subjects(namespace is not None))})
    queries = draw(st.lists(queries_for(clusterroles + roles, bindings), min_size=QUERIES_PER_EXAMPLE,
                            max_size=QUERIES_PER_EXAMPLE))
    return {"clusterroles": clusterroles, "roles": roles, "bindings": bindings, "queries": queries}


def queries_for(roles, bindings):
    """Half the questions aim at what the generated rules and bindings grant, half anywhere."""
    rules = [rule for role in roles for rule in role["rules"]]
    bound = [Subject.parse(_reference(s, b["namespace"])) for b in bindings for s in b["subjects"]]
    subject = st.sampled_from(POOL) if not bound else st.one_of(st.sampled_from(POOL), st.sampled_from(bound))
    anywhere = st.builds(
        Request, verb=st.sampled_from(VERBS), resource=st.sampled_from(QUERY_RESOURCES),
        group=st.sampled_from(GROUPS), namespace=st.sampled_from(("",) + NAMESPACES),
        subresource=st.sampled_from(SUBRESOURCES), name=st.sampled_from(("", "") + NAMES + ("z",)))
    url = st.builds(lambda verb, path: Request(verb, path=path), st.sampled_from(("get", "post", "*")),
                    st.sampled_from(PATHS))
    options = [anywhere, url]
    if rules:
        options.append(st.builds(_aimed_at, st.sampled_from(rules), st.sampled_from(("",) + NAMESPACES),
                                 st.integers(0, 2**16)))
    return st.tuples(subject, st.one_of(*options))


def _aimed_at(rule: dict, namespace: str, pick: int) -> Request:
    verb = rule["verbs"][pick % len(rule["verbs"])]
    if "nonResourceURLs" in rule:
        url = rule["nonResourceURLs"][pick % len(rule["nonResourceURLs"])]
        if url == "*":
            return Request(verb, path="/anything")
        return Request(verb, path=url.rstrip("*") + ("sub" if url.endswith("*") and pick % 2 else ""))
    group = rule["apiGroups"][pick % len(rule["apiGroups"])]
    resource, _, subresource = rule["resources"][pick % len(rule["resources"])].partition("/")
    if resource == "*" and pick % 3:
        resource = "pods"
    names = rule.get("resourceNames") or [""]
    return Request(verb, resource, "" if group == "*" else group, namespace, subresource, names[pick % len(names)])


def _reference(entry: dict, namespace: str | None) -> str:
    if entry["kind"] == "ServiceAccount":
        return f"ServiceAccount/{entry.get('namespace') or namespace}/{entry['name']}"
    return f"{entry['kind']}/{entry['name']}"


# -- writing an example into the cluster -----------------------------------------------------------
def _bodies(scenario: dict, prefix: str) -> list[tuple[str, dict]]:
    """(collection path, body) for every object, with this example's own names and label values."""
    own = {r["name"] for r in scenario["clusterroles"]} | {r["name"] for r in scenario["roles"]} | {"missing"}

    def name(local: str) -> str:
        return f"{prefix}-{local}" if local in own else local

    def label(value: str) -> str:
        return f"{prefix}-{value}"

    def selector(raw: dict) -> dict:
        if "matchLabels" in raw:
            return {"matchLabels": {k: label(v) for k, v in raw["matchLabels"].items()}}
        return {"matchExpressions": [dict(e, **({"values": [label(v) for v in e["values"]]} if "values" in e else {}))
                                     for e in raw["matchExpressions"]]}

    out = []
    for role in scenario["clusterroles"]:
        labels = {MARK: "1", **{k: label(v) for k, v in role.get("labels", {}).items()}}
        body = {"metadata": {"name": name(role["name"]), "labels": labels}, "rules": role["rules"]}
        if role.get("selectors"):
            body["aggregationRule"] = {"clusterRoleSelectors": [selector(s) for s in role["selectors"]]}
        out.append((f"{RBAC}/clusterroles", body))
    for role in scenario["roles"]:
        out.append((f"{RBAC}/namespaces/{role['namespace']}/roles",
                    {"metadata": {"name": name(role["name"]), "labels": {MARK: "1"}}, "rules": role["rules"]}))
    for binding in scenario["bindings"]:
        body = {"metadata": {"name": f"{prefix}-{binding['name']}", "labels": {MARK: "1"}},
                "roleRef": {"apiGroup": API_GROUP, "kind": binding["role_kind"], "name": name(binding["role_name"])},
                "subjects": binding["subjects"]}
        path = (f"{RBAC}/namespaces/{binding['namespace']}/rolebindings" if binding["namespace"]
                else f"{RBAC}/clusterrolebindings")
        out.append((path, body))
    return out


def _sentinels(prefix: str) -> list[tuple[str, dict]]:
    """Written last: once the authorizer allows both, it has seen everything written before them."""
    def role(resource_name):
        return [{"verbs": ["get"], "apiGroups": ["kubeproof.test"], "resources": ["sentinels"],
                 "resourceNames": [resource_name]}]

    subject = [{"kind": "User", "name": SENTINEL_USER, "apiGroup": API_GROUP}]
    meta = {"name": f"{prefix}-sentinel", "labels": {MARK: "1", AGGREGATE: "sentinel"}}
    return [
        (f"{RBAC}/clusterroles", {"metadata": meta, "rules": role(f"{prefix}-cluster")}),
        (f"{RBAC}/clusterrolebindings", {"metadata": meta, "subjects": subject,
                                         "roleRef": {"apiGroup": API_GROUP, "kind": "ClusterRole", "name": meta["name"]}}),
        (f"{RBAC}/namespaces/{NAMESPACES[0]}/roles", {"metadata": meta, "rules": role(f"{prefix}-namespaced")}),
        (f"{RBAC}/namespaces/{NAMESPACES[0]}/rolebindings", {"metadata": meta, "subjects": subject,
                                                            "roleRef": {"apiGroup": API_GROUP, "kind": "Role", "name": meta["name"]}}),
    ]


class Cluster:
    """The embedded cluster as the test uses it: pooled connections as the admin."""

    def __init__(self, embedded: EmbeddedCluster):
        self.embedded = embedded
        self.http = KubeHttp.from_kubeconfig(str(embedded.kubeconfig), "local")
        self.written: list[str] = []

    def request(self, method: str, path: str, body=None, query=None):
        answer = self.http.request(method, path, body=body, query=query)
        return answer.status, answer.body if isinstance(answer.body, dict) else {}

    def create(self, path: str, body: dict) -> None:
        status, answer = self.request("POST", path, body)
        assert status == 201, (path, body, status, answer.get("message"))
        self.written.append(f"{path}/{body['metadata']['name']}")

    def review(self, spec: dict) -> dict:
        status, answer = self.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                      {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                                       "spec": spec})
        assert status == 201, (spec, status, answer.get("message"))
        return answer["status"]

    def items(self, path: str) -> list[dict]:
        status, answer = self.request("GET", path)
        assert status == 200, (path, status)
        return answer["items"]

    def policy(self) -> Policy:
        kinds = {"roles": "Role", "clusterroles": "ClusterRole", "rolebindings": "RoleBinding",
                 "clusterrolebindings": "ClusterRoleBinding"}
        lists = {name: [dict(item, kind=kind) for item in self.items(f"{RBAC}/{name}")] for name, kind in kinds.items()}
        return Policy(serviceaccounts=self.items("/api/v1/serviceaccounts"), **lists)

    def clean(self) -> None:
        """Deletes what the example wrote, one by one (quicker than a deletecollection per kind)."""
        while self.written:
            path = self.written.pop()
            status, answer = self.request("DELETE", path)
            assert status in (200, 404), (path, status, answer.get("message"))

    def wait(self, what: str, done, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while True:
            result = done()
            if result:
                return result
            assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f} s"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def rbac_cluster():
    with EmbeddedCluster(profile="hardened") as embedded:
        target = Cluster(embedded)
        for namespace in NAMESPACES:
            target.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
        target.written.clear()  # the namespaces stay for every example
        # The service account controller creates each namespace's default account.
        for namespace in NAMESPACES:
            target.wait(f"ServiceAccount {namespace}/default",
                        lambda ns=namespace: target.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")[0] == 200)
        yield target
    print(f"\nRBAC differential: {STATS}")


def _settle(cluster: Cluster, prefix: str, aggregated: bool) -> Policy:
    if aggregated:
        def converged():
            # Only ClusterRoles take part in aggregation: list just those while waiting.
            roles = Policy(clusterroles=[dict(r, kind="ClusterRole") for r in cluster.items(f"{RBAC}/clusterroles")])
            return not any(name.startswith(prefix) for name in roles.aggregation_lag())
        cluster.wait("aggregation of the generated ClusterRoles", converged)
    for path, body in _sentinels(prefix):
        cluster.create(path, body)
    sentinel = Subject("User", SENTINEL_USER).identity()
    for name, namespace in ((f"{prefix}-cluster", ""), (f"{prefix}-namespaced", NAMESPACES[0])):
        request = Request("get", "sentinels", "kubeproof.test", namespace, name=name)
        cluster.wait(f"the authorizer to see sentinel {name}",
                     lambda r=request: cluster.review(sentinel.review_spec(r)).get("allowed"))
    return cluster.policy()


def _compare(cluster: Cluster, scenario: dict, prefix: str) -> list[str]:
    try:
        for path, body in _bodies(scenario, prefix):
            cluster.create(path, body)
        policy = _settle(cluster, prefix, aggregated=any(r.get("selectors") for r in scenario["clusterroles"]))
        disagreements = []
        for subject, request in scenario["queries"]:
            engine = policy.allows(subject, request)
            answer = cluster.review(subject.identity().review_spec(request))
            STATS["queries"] += 1
            STATS["allowed"] += bool(answer.get("allowed"))
            if engine != bool(answer.get("allowed")):
                grants = [g.to_dict() for g in policy.explain(subject, request)] if engine else []
                disagreements.append(f"{subject} {request.describe()}: engine {engine}, authorizer {answer} {grants}")
    finally:
        # Never leave an example's grants behind for the next one (the sentinels of the next
        # example prove the authorizer has seen these deletions too).
        cluster.clean()
    STATS["examples"] += 1
    STATS["disagreements"] += len(disagreements)
    return disagreements


def _q(subject: str, verb: str, resource: str = "", group: str = "", namespace: str = "", subresource: str = "",
       name: str = "", path: str | None = None):
    return (Subject.parse(subject), Request(verb, resource, group, namespace, subresource, name, path))


def _rule(verbs, groups=None, resources=None, names=None, urls=None) -> dict:
    rule = {"verbs": verbs}
    if urls:
        return {**rule, "nonResourceURLs": urls}
    rule.update({"apiGroups": groups, "resources": resources})
    return {**rule, "resourceNames": names} if names else rule


def _user(name):
    return {"kind": "User", "name": name, "apiGroup": API_GROUP}


# Semantics checked against the real authorizer on purpose, beside whatever hypothesis draws.
SEMANTICS = {
    "clusterroles": [
        {"name": "c0", "rules": [_rule(["get"], ["apps"], ["*/scale"]), _rule(["get"], [""], ["pods/*"]),
                                 _rule(["list"], [""], ["secrets"], names=["x"]),
                                 _rule(["get"], urls=["/logs/*", "/api*"])],
         "labels": {AGGREGATE: "a"}},
        {"name": "c1", "rules": [_rule(["create"], [""], ["persistentvolumes"])],
         "selectors": [{"matchExpressions": [{"key": AGGREGATE, "operator": "In", "values": ["a"]}]}]},
        {"name": "c2", "rules": [_rule(["get"], urls=["/metrics"])]},
        {"name": "c3", "rules": [_rule(["create"], [""], ["persistentvolumes"])]},
    ],
    "roles": [{"namespace": "kp-a", "name": "r0", "rules": [_rule(["impersonate"], [""], ["serviceaccounts"])]}],
    "bindings": [
        {"namespace": None, "name": "b0", "role_kind": "ClusterRole", "role_name": "c1", "subjects": [_user("alice")]},
        # A RoleBinding confines a ClusterRole to its namespace and drops its non-resource URLs.
        {"namespace": "kp-a", "name": "b1", "role_kind": "ClusterRole", "role_name": "c2",
         "subjects": [{"kind": "ServiceAccount", "name": "robot"}]},
        {"namespace": "kp-a", "name": "b2", "role_kind": "Role", "role_name": "r0",
         "subjects": [{"kind": "Group", "name": "system:serviceaccounts:kp-a", "apiGroup": API_GROUP}]},
        {"namespace": "kp-b", "name": "b3", "role_kind": "ClusterRole", "role_name": "c3", "subjects": [_user("bob")]},
        {"namespace": None, "name": "b4", "role_kind": "ClusterRole", "role_name": "missing", "subjects": [_user("bob")]},
    ],
    "queries": [
        _q("User/alice", "get", "deployments", "apps", "kp-a", "scale"),  # */scale via aggregation
        _q("User/alice", "get", "pods", "", "kp-a", "scale"),  # */scale is per group: not in ""
        _q("User/alice", "get", "pods", "", "kp-a", "log"),  # pods/* is not a pattern
        _q("User/alice", "get", "pods", "", "kp-a", "*"),  # ... it matches the literal subresource *
        _q("User/alice", "list", "secrets", "", "kp-b"),  # resourceNames never match an unnamed request
        _q("User/alice", "list", "secrets", "", "kp-b", name="x"),
        _q("User/alice", "get", path="/logs/app"), _q("User/alice", "get", path="/logs"),
        _q("User/alice", "get", path="/apis/x"), _q("User/alice", "get", path="/api"),
        _q("User/alice", "create", "persistentvolumes"),  # an aggregated role's own rules are replaced
        _q("ServiceAccount/kp-a/robot", "get", path="/metrics"),  # not through a RoleBinding
        _q("User/system:serviceaccount:kp-a:robot", "impersonate", "serviceaccounts", "", "kp-a"),
        _q("ServiceAccount/kp-a/default", "impersonate", "serviceaccounts", "", "kp-b"),
        _q("User/bob", "create", "persistentvolumes", "", "kp-b"),  # asked in the namespace: RBAC says yes
        _q("User/bob", "create", "persistentvolumes"),  # cluster-wide: the RoleBinding does not count
        _q("Group/system:masters", "escalate", "clusterroles", API_GROUP),
        _q("User/system:anonymous", "get", path="/healthz"),
        _q("Group/system:unauthenticated", "get", path="/version"),
        _q("Group/devs", "create", "selfsubjectaccessreviews", "authorization.k8s.io"),
    ],
}


# Found while writing this test (the wait for aggregation never ended): an aggregated ClusterRole whose
# selectors match nothing keeps the rules it was created with; the controller applies no rules then.
AGGREGATION_SELECTS_NOTHING = {
    "clusterroles": [{"name": "c0", "rules": [_rule(["get"], urls=["/healthz", "/logs/*"])],
                      "selectors": [{"matchLabels": {AGGREGATE: "a"}}]}],
    "roles": [],
    "bindings": [{"namespace": None, "name": "b0", "role_kind": "ClusterRole", "role_name": "c0",
                  "subjects": [_user("alice")]}],
    "queries": [_q("User/alice", "get", path="/logs/app"), _q("User/alice", "*", path="/logs/app"),
                _q("User/alice", "get", "pods")],
}


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@example(scenario=SEMANTICS)
@example(scenario=AGGREGATION_SELECTS_NOTHING)
@given(scenario=scenarios())
def test_engine_agrees_with_the_authorizer(rbac_cluster, scenario):
    STATS["attempts"] += 1
    prefix = f"e{STATS['attempts']}"
    disagreements = _compare(rbac_cluster, scenario, prefix)
    assert not disagreements, "engine and authorizer disagree:\n" + "\n".join(disagreements)


def test_enough_questions_were_compared(rbac_cluster):
    # Runs after the property in file order: proves the comparison was not vacuous.
    assert STATS["examples"] >= EXAMPLES and STATS["queries"] >= EXAMPLES * QUERIES_PER_EXAMPLE, STATS
    assert 0 < STATS["allowed"] < STATS["queries"], STATS
    assert STATS["disagreements"] == 0, STATS
