"""Fills an embedded cluster with a realistic shape at scale, with a known share of violations.

    .venv/bin/python bench/generate.py --size small                 # start a hardened cluster, fill it, keep it
                                                                    # running until Ctrl-C (prints its workdir)
    .venv/bin/python bench/generate.py --size large --attach DIR    # fill a running embedded cluster and exit
    .venv/bin/python bench/generate.py --compare-clients            # which parallel client fills faster here

Sizes: `large` is 1,000 namespaces, 1,000 Deployments of 10 replicas (the controller-manager makes the
ReplicaSets and 10,000 pods, which stay Pending: there is no scheduler or kubelet), 2,000 Secrets,
2,000 ConfigMaps, 3,000 Roles, 3,000 RoleBindings, 300 ClusterRoles, 300 ClusterRoleBindings and 1,000
NetworkPolicies; `small` is a tenth of each (replicas stay 10). Every namespace also gets what a real
tenant namespace has (its app's ServiceAccount, usually a ResourceQuota, a LimitRange and a default
ServiceAccount that mounts no token), so compliant objects really pass and every failure is a seeded
one.

Violations are chosen by index, so their share is exact and the same on every run; they are written
to `<workdir>/bench-manifest.json` (and bench/results/) as expectations: for each test of the suite,
the objects it must fail. bench/benchmark.py compares an audit's results with it.

Writes go through a thread pool; 429s (the hardened profile's EventRateLimit, API priority and
fairness) and transient 5xx are retried with the server's Retry-After."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubeproof.controlplane import EmbeddedCluster  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MANIFEST = "bench-manifest.json"

SIZES = {
    "large": {"namespaces": 1000, "replicas": 10, "clusterroles": 300, "clusterrolebindings": 300},
    "small": {"namespaces": 100, "replicas": 10, "clusterroles": 30, "clusterrolebindings": 30},
}
# Per namespace: 1 Deployment, 2 Secrets, 2 ConfigMaps, 3 Roles, 3 RoleBindings, 1 NetworkPolicy.
SECRETS_PER_NAMESPACE, CONFIGMAPS_PER_NAMESPACE, ROLES_PER_NAMESPACE = 2, 2, 3

RBAC = "/apis/rbac.authorization.k8s.io/v1"
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
NAMESPACE_PREFIX = "bench-"


# -- the violations, by index ------------------------------------------------------------------------
# Namespace i. Shares are exact when the count of namespaces is a multiple of 50.
def unlabelled(i: int) -> bool:  # 10%: no Pod Security labels; the only place privileged pods are admitted
    return i % 10 == 9


def no_resource_quota(i: int) -> bool:  # 5%
    return i % 20 == 2


def no_limit_range(i: int) -> bool:  # 5%
    return i % 20 == 3


def default_account_mounts_token(i: int) -> bool:  # 5%: the controller-manager's default ServiceAccount, untouched
    return i % 20 == 5


def ingress_only_policy(i: int) -> bool:  # 5%: denies ingress by default, not egress
    return i % 20 == 7


# The namespace's Deployment.
def privileged(i: int) -> bool:  # 10%, all in unlabelled namespaces (restricted ones refuse their pods)
    return unlabelled(i)


def latest_tag(i: int) -> bool:  # 10%
    return i % 10 == 4


def pulled_if_not_present(i: int) -> bool:  # 5%: a tag, not a digest, and IfNotPresent
    return i % 20 == 6


def secret_in_env(i: int) -> bool:  # 5%
    return i % 20 == 8


def literal_credential_in_env(i: int) -> bool:  # 2%
    return i % 50 == 11


def uses_default_account(i: int) -> bool:  # 5%
    return i % 20 == 10


def token_secret(i: int) -> bool:  # 4% of namespaces, 2% of secrets: a long-lived service-account token
    return i % 25 == 23


# Role r = 3 * namespace + k.
def wildcard_role(r: int) -> bool:  # 5%
    return r % 20 == 14


def secret_reading_role(r: int) -> bool:  # 2%, never a wildcard one (r odd here, even there)
    return r % 50 == 27


# ClusterRole / ClusterRoleBinding k.
def wildcard_clusterrole(k: int) -> bool:  # 5%
    return k % 20 == 14


def cluster_admin_binding(k: int) -> bool:  # 1 in 30
    return k % 30 == 17


def unauthenticated_binding(k: int) -> bool:  # 1 in 30
    return k % 30 == 23


# -- the objects -------------------------------------------------------------------------------------
def namespace_name(i: int) -> str:
    return f"{NAMESPACE_PREFIX}team-{i:04d}"


def _labels(i: int, app: str = "shop") -> dict:
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": f"product-{i % 25}",
            "team": f"team-{i % 20}", "environment": ("prod", "staging", "dev")[i % 3]}


def _restricted_container(i: int) -> dict:
    image = (f"registry.example.com/shop/service-{i % 40}:latest" if latest_tag(i)
             else f"registry.example.com/shop/service-{i % 40}:1.{i % 9}.{i % 5}")
    container = {
        "name": "app", "image": image,
        "imagePullPolicy": "IfNotPresent" if pulled_if_not_present(i) else "Always",
        "ports": [{"containerPort": 8080, "name": "http"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "CONFIG_PATH", "value": "/etc/app/config.properties"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True},
                         {"name": "db", "mountPath": "/var/run/secrets/db", "readOnly": True}],
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if privileged(i):
        container["securityContext"] = {"privileged": True, "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}}
    if secret_in_env(i):
        container["env"].append({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-db", "key": "password"}}})
    if literal_credential_in_env(i):
        # A made-up value, never a real credential; the suite must name it without quoting it.
        container["env"].append({"name": "API_TOKEN", "value": f"bench-literal-{i:04d}-5f2b9c0d7e1a"})
    return container


def deployment(i: int, replicas: int) -> dict:
    labels = {**_labels(i), "app": "shop"}
    spec = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 10001},
        "containers": [_restricted_container(i)],
        "volumes": [{"name": "config", "configMap": {"name": "app-config"}},
                    {"name": "db", "secret": {"secretName": "app-db"}}],
    }
    if privileged(i):
        spec["securityContext"] = {}
        spec["hostNetwork"] = True
    if uses_default_account(i):
        # Running as the default account only counts when its token is mounted.
        spec["automountServiceAccountToken"] = True
    else:
        spec["serviceAccountName"] = "app"
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "labels": labels, "annotations": {"owner": f"team-{i % 20}@example.com"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "shop"}},
                 "template": {"metadata": {"labels": labels}, "spec": spec}},
    }


def _config_text(i: int) -> str:
    lines = [f"service.name=service-{i % 40}", "service.port=8080", f"team=team-{i % 20}"]
    lines += [f"feature.flag.{n}={'true' if (i + n) % 3 else 'false'}" for n in range(40)]
    lines += [f"upstream.{n}.url=http://upstream-{n}.{namespace_name((i + n) % 7)}.svc:8080" for n in range(12)]
    return "\n".join(lines) + "\n"


def _role_rules(k: int) -> list[dict]:
    return [
        [{"apiGroups": [""], "resources": ["configmaps", "services", "endpoints"], "verbs": ["get", "list", "watch"]}],
        [{"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list", "watch"]},
         {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get"]}],
        [{"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list", "watch"]},
         {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}],
    ][k]


ROLE_NAMES = ("app-reader", "app-release-viewer", "app-jobs-viewer")


def role(i: int, k: int) -> dict:
    r = ROLES_PER_NAMESPACE * i + k
    rules = _role_rules(k)
    if wildcard_role(r):
        rules = [{**rules[0], "verbs": ["*"]}] + rules[1:]
    if secret_reading_role(r):
        rules = rules + [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": ROLE_NAMES[k], "labels": _labels(i)}, "rules": rules}


def role_binding(i: int, k: int) -> dict:
    subject = [
        {"kind": "ServiceAccount", "name": "app", "namespace": namespace_name(i)},
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": f"team-{i % 20}"},
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"dev-{i % 100}@example.com"},
    ][k]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{ROLE_NAMES[k]}-binding", "labels": _labels(i)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAMES[k]},
            "subjects": [subject]}


def clusterrole(k: int) -> dict:
    resources = [["configmaps", "services"], ["deployments", "statefulsets"], ["jobs", "cronjobs"],
                 ["ingresses", "networkpolicies"], ["events"]][k % 5]
    group = ["", "apps", "batch", "networking.k8s.io", ""][k % 5]
    verbs = ["*"] if wildcard_clusterrole(k) else ["get", "list", "watch"]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"bench-viewer-{k:03d}", "labels": {"app.kubernetes.io/part-of": f"product-{k % 25}"}},
            "rules": [{"apiGroups": [group], "resources": resources, "verbs": verbs}]}


def clusterrole_binding(k: int) -> dict:
    role_name, subject = f"bench-viewer-{k:03d}", {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": f"org-{k % 40}"}
    if cluster_admin_binding(k):
        role_name, subject = "cluster-admin", {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": f"contractor-{k}@example.com"}
    elif unauthenticated_binding(k):
        subject = {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:unauthenticated"}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": f"bench-viewer-{k:03d}-binding"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": [subject]}


def _fake_pem(kind: str, i: int) -> str:
    body = "\n".join((f"{kind}{i:04d}" * 8)[:64] for _ in range(12))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


def secrets_of(i: int) -> list[dict]:
    db = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "app-db", "labels": _labels(i)},
          "stringData": {"username": f"svc_{i:04d}", "password": f"bench-not-a-secret-{i:04d}",
                         "url": f"postgres://db.{namespace_name(i)}.svc:5432/app"}}
    if token_secret(i):
        second = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                  "metadata": {"name": "app-token", "annotations": {"kubernetes.io/service-account.name": "app"}}}
    else:
        second = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": "app-tls"},
                  "stringData": {"tls.crt": _fake_pem("CERTIFICATE", i), "tls.key": _fake_pem("PRIVATE KEY", i)}}
    return [db, second]


def configmaps_of(i: int) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config", "labels": _labels(i)},
         "data": {"config.properties": _config_text(i)}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-features"},
         "data": {"features.json": json.dumps({f"flag{n}": (i * n) % 2 == 0 for n in range(20)})}},
    ]


def network_policies_of(i: int) -> list[dict]:
    types = ["Ingress"] if ingress_only_policy(i) else ["Ingress", "Egress"]
    return [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny"},
             "spec": {"podSelector": {}, "policyTypes": types}}]


# -- the plan: phases of writes, each waiting for the one before --------------------------------------
@dataclass
class Write:
    method: str
    path: str
    body: dict
    kind: str


@dataclass
class Plan:
    size: str
    namespaces: int
    replicas: int
    phases: list[list[Write]] = field(default_factory=list)
    expected_pods: int = 0

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for phase in self.phases:
            for write in phase:
                counted[write.kind] = counted.get(write.kind, 0) + 1
        return counted


def make_plan(size: str) -> Plan:
    shape = SIZES[size]
    n, replicas = shape["namespaces"], shape["replicas"]
    plan = Plan(size, n, replicas)
    namespaces, tenancy, bindings = [], [], []
    for i in range(n):
        name = namespace_name(i)
        labels = {**_labels(i), **({} if unlabelled(i) else RESTRICTED)}
        namespaces.append(Write("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                               "metadata": {"name": name, "labels": labels}}, "Namespace"))
        core, ns = f"/api/v1/namespaces/{name}", name
        tenancy.append(Write("POST", f"{core}/serviceaccounts", {"metadata": {"name": "app", "labels": _labels(i)},
                                                                  "automountServiceAccountToken": False}, "ServiceAccount"))
        if not default_account_mounts_token(i):
            # Created before the controller-manager's, which then leaves it alone (a 409 is patched below).
            tenancy.append(Write("POST", f"{core}/serviceaccounts", {"metadata": {"name": "default"},
                                                                      "automountServiceAccountToken": False}, "ServiceAccount(default)"))
        if not no_resource_quota(i):
            tenancy.append(Write("POST", f"{core}/resourcequotas", {"metadata": {"name": "compute"}, "spec": {"hard": {
                "pods": "30", "requests.cpu": "4", "requests.memory": "4Gi", "limits.cpu": "8", "limits.memory": "8Gi"}}},
                "ResourceQuota"))
        if not no_limit_range(i):
            tenancy.append(Write("POST", f"{core}/limitranges", {"metadata": {"name": "defaults"}, "spec": {"limits": [{
                "type": "Container", "default": {"cpu": "200m", "memory": "128Mi"},
                "defaultRequest": {"cpu": "50m", "memory": "64Mi"}, "max": {"cpu": "2", "memory": "2Gi"}}]}},
                "LimitRange"))
        for policy in network_policies_of(i):
            tenancy.append(Write("POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", policy, "NetworkPolicy"))
        for cm in configmaps_of(i):
            tenancy.append(Write("POST", f"{core}/configmaps", cm, "ConfigMap"))
        for k in range(ROLES_PER_NAMESPACE):
            tenancy.append(Write("POST", f"{RBAC}/namespaces/{ns}/roles", role(i, k), "Role"))
            bindings.append(Write("POST", f"{RBAC}/namespaces/{ns}/rolebindings", role_binding(i, k), "RoleBinding"))
        db, second = secrets_of(i)
        tenancy.append(Write("POST", f"{core}/secrets", db, "Secret"))
        # A token secret needs its ServiceAccount first, or the token controller deletes it.
        (bindings if token_secret(i) else tenancy).append(Write("POST", f"{core}/secrets", second, "Secret"))
        bindings.append(Write("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment(i, replicas), "Deployment"))
    for k in range(shape["clusterroles"]):
        tenancy.append(Write("POST", f"{RBAC}/clusterroles", clusterrole(k), "ClusterRole"))
    for k in range(shape["clusterrolebindings"]):
        bindings.append(Write("POST", f"{RBAC}/clusterrolebindings", clusterrole_binding(k), "ClusterRoleBinding"))
    # Deployments last, so the controller-manager's pod creation does not compete with the fill.
    bindings.sort(key=lambda w: w.kind == "Deployment")
    plan.phases = [namespaces, tenancy, bindings]
    plan.expected_pods = n * replicas
    return plan


# -- expectations ------------------------------------------------------------------------------------
# An unlabelled namespace also holds its privileged Deployment's pods, which the label dry-run names.
PSS_TESTS = ("test_namespace_enforces_required_level", "test_admission_rejects_a_privileged_pod",
             "test_existing_pods_meet_the_required_level")
# One result per binding; an expectation names the control its finding must carry: "test#control".
RBAC_PRIVILEGES = "test_binding_grants_no_permission_that_hands_over_the_cluster"
RBAC_PRIVILEGE_CONTROLS = ("5.1.2", "5.1.4", "5.1.5", "5.1.7", "5.1.8", "5.1.9", "5.1.10", "5.1.11", "5.1.12", "5.1.13")


# Namespace i's violation, and the test that must fail on the namespace (or on its Deployment).
NAMESPACE_VIOLATIONS = (
    (no_resource_quota, "test_namespace_has_a_resource_quota"),
    (no_limit_range, "test_namespace_has_a_limit_range"),
    (default_account_mounts_token, "test_default_service_account_does_not_mount_its_token"),
    (ingress_only_policy, "test_namespace_denies_traffic_by_default"),
)
DEPLOYMENT_VIOLATIONS = (
    (privileged, "test_workload_meets_the_required_pod_security_level"),
    (latest_tag, "test_images_are_not_latest_or_untagged"),
    (pulled_if_not_present, "test_mutable_images_are_always_pulled"),
    (secret_in_env, "test_secrets_are_not_passed_as_environment_variables"),
    (literal_credential_in_env, "test_no_credential_is_written_into_environment_variables"),
    (uses_default_account, "test_workload_does_not_use_the_default_service_account"),
)


def expectations(size: str) -> dict:
    """For each test, the objects it must fail ("Kind/namespace/name"); every other result of a
    generated object must pass (or be exempt). A test judging several controls at once is named
    "test#control" for each control its finding must carry. Built from the same predicates as the
    objects."""
    shape = SIZES[size]
    n = shape["namespaces"]
    failing: dict[str, set[str]] = {}

    def expect(test: str, obj: str) -> None:
        failing.setdefault(test, set()).add(obj)

    for i in range(n):
        name = namespace_name(i)
        ns, dep = f"Namespace/{name}", f"Deployment/{name}/app"
        if unlabelled(i):
            for test in PSS_TESTS:
                expect(test, ns)
        for violated, test in NAMESPACE_VIOLATIONS:
            if violated(i):
                expect(test, ns)
        for violated, test in DEPLOYMENT_VIOLATIONS:
            if violated(i):
                expect(test, dep)
        if token_secret(i):
            expect("test_no_long_lived_service_account_token_is_stored", f"Secret/{name}/app-token")
        for k in range(ROLES_PER_NAMESPACE):
            r = ROLES_PER_NAMESPACE * i + k
            if wildcard_role(r):
                expect("test_role_grants_no_wildcards", f"Role/{name}/{ROLE_NAMES[k]}")
                if k in (1, 2):  # every verb on Deployments or Jobs includes create: pods by proxy
                    expect(f"{RBAC_PRIVILEGES}#5.1.4", f"RoleBinding/{name}/{ROLE_NAMES[k]}-binding")
            if secret_reading_role(r):
                expect(f"{RBAC_PRIVILEGES}#5.1.2", f"RoleBinding/{name}/{ROLE_NAMES[k]}-binding")
    for k in range(shape["clusterroles"]):
        if wildcard_clusterrole(k):
            expect("test_role_grants_no_wildcards", f"ClusterRole/bench-viewer-{k:03d}")
    for k in range(shape["clusterrolebindings"]):
        binding = f"ClusterRoleBinding/bench-viewer-{k:03d}-binding"
        if cluster_admin_binding(k):
            expect("test_cluster_admin_is_bound_only_to_allowed_subjects", binding)
            for control in RBAC_PRIVILEGE_CONTROLS:
                if control not in ("5.1.5", "5.1.7"):  # a person, not a default account or system:masters
                    expect(f"{RBAC_PRIVILEGES}#{control}", binding)
        if unauthenticated_binding(k):
            expect("test_binding_grants_nothing_to_unauthenticated_users", binding)
    return {test: sorted(objects) for test, objects in sorted(failing.items())}


def manifest(plan: Plan) -> dict:
    shape = SIZES[plan.size]
    n = plan.namespaces
    share = lambda predicate, total: {"count": sum(predicate(x) for x in range(total)), "of": total}  # noqa: E731
    return {
        "size": plan.size,
        "namespace_prefix": NAMESPACE_PREFIX,
        "objects": plan.counts(),
        "expected_pods": plan.expected_pods,
        "violations": {
            "namespace unlabelled (no Pod Security labels)": share(unlabelled, n),
            "namespace without ResourceQuota": share(no_resource_quota, n),
            "namespace without LimitRange": share(no_limit_range, n),
            "namespace whose default ServiceAccount mounts its token": share(default_account_mounts_token, n),
            "namespace NetworkPolicy ingress-only (no egress default-deny)": share(ingress_only_policy, n),
            "deployment privileged (hostNetwork, privileged, added capabilities)": share(privileged, n),
            "deployment image :latest": share(latest_tag, n),
            "deployment tag pulled IfNotPresent": share(pulled_if_not_present, n),
            "deployment secret in env (secretKeyRef)": share(secret_in_env, n),
            "deployment literal credential in env": share(literal_credential_in_env, n),
            "deployment on the default ServiceAccount": share(uses_default_account, n),
            "secret long-lived service-account token": share(token_secret, n * SECRETS_PER_NAMESPACE),
            "role with a wildcard verb": share(wildcard_role, n * ROLES_PER_NAMESPACE),
            "role (bound) that reads secrets": share(secret_reading_role, n * ROLES_PER_NAMESPACE),
            "clusterrole with a wildcard verb": share(wildcard_clusterrole, shape["clusterroles"]),
            "clusterrolebinding of cluster-admin to a user": share(cluster_admin_binding, shape["clusterrolebindings"]),
            "clusterrolebinding to system:unauthenticated": share(unauthenticated_binding, shape["clusterrolebindings"]),
        },
        "expected_failures": expectations(plan.size),
    }


# -- the clients -------------------------------------------------------------------------------------
RETRIED = (429, 500, 502, 503, 504)
ATTEMPTS = 8


class ApiRequestClient:
    """The embedded cluster's own admin request (urllib: a new TLS connection per request)."""

    name = "api_request"

    def __init__(self, cluster: EmbeddedCluster, workers: int):
        self.cluster = cluster

    def send(self, method: str, path: str, body: dict | None) -> tuple[int, dict, float | None]:
        status, answer = self.cluster.api_request(method, path, body)
        retry_after = (answer.get("details") or {}).get("retryAfterSeconds") if status == 429 else None
        return status, answer, retry_after


class PooledClient:
    """urllib3 with keep-alive: one TLS handshake per worker, not per request."""

    name = "urllib3"

    def __init__(self, cluster: EmbeddedCluster, workers: int):
        self.server = cluster.server
        self.pool = urllib3.PoolManager(
            num_pools=2, maxsize=workers, block=True, retries=False, timeout=urllib3.Timeout(connect=5, read=60),
            cert_reqs="CERT_REQUIRED", ca_certs=str(cluster.ca.cert),
            cert_file=str(cluster.admin.cert), key_file=str(cluster.admin.key),
        )

    def send(self, method: str, path: str, body: dict | None) -> tuple[int, dict, float | None]:
        headers = {"Content-Type": "application/merge-patch+json" if method == "PATCH" else "application/json",
                   "Accept": "application/json"}
        response = self.pool.request(method, self.server + path, body=json.dumps(body).encode() if body is not None else None,
                                     headers=headers)
        try:
            answer = json.loads(response.data or b"{}")
        except ValueError:
            answer = {"message": response.data[:300].decode(errors="replace")}
        retry_after = response.headers.get("Retry-After") if response.status == 429 else None
        return response.status, answer if isinstance(answer, dict) else {}, float(retry_after) if retry_after else None


CLIENTS = {"urllib3": PooledClient, "api_request": ApiRequestClient}


@dataclass
class Tally:
    created: int = 0
    existed: int = 0
    retries: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _write(client, write: Write, tally: Tally) -> None:
    delay = 0.2
    for _ in range(ATTEMPTS):
        try:
            status, answer, retry_after = client.send(write.method, write.path, write.body)
        except (OSError, urllib3.exceptions.HTTPError) as error:
            status, answer, retry_after = 0, {"message": str(error)}, None
        if status in (200, 201):
            with tally.lock:
                tally.created += 1
            return
        if status == 409 and write.kind == "ServiceAccount(default)":
            # The controller-manager made it first: turn its token off the other way.
            write = Write("PATCH", f"{write.path}/default", {"automountServiceAccountToken": False}, write.kind)
            continue
        if status == 409:
            with tally.lock:
                tally.existed += 1
            return
        if status in RETRIED or status == 0:
            with tally.lock:
                tally.retries[status] = tally.retries.get(status, 0) + 1
            time.sleep(retry_after if retry_after else delay)
            delay = min(delay * 2, 5.0)
            continue
        break
    with tally.lock:
        tally.errors.append(f"{write.method} {write.path} {write.body.get('metadata', {}).get('name')}: "
                            f"{status} {str(answer.get('message'))[:200]}")


def run_phases(client, phases: list[list[Write]], workers: int, progress=print) -> tuple[Tally, list[float]]:
    tally, seconds = Tally(), []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for number, phase in enumerate(phases, 1):
            began = time.monotonic()
            list(pool.map(lambda w: _write(client, w, tally), phase))
            seconds.append(time.monotonic() - began)
            progress(f"phase {number}: {len(phase)} writes in {seconds[-1]:.1f} s "
                     f"({len(phase) / max(seconds[-1], 1e-9):.0f}/s); retries {tally.retries or 'none'}")
    return tally, seconds


def count_pods(client) -> int:
    """All pods (the generated ones are the only pods: nothing else runs without a kubelet), from one
    page of one item and the server's count of the rest, so polling costs the API server nothing."""
    response = client.pool.request("GET", client.server + "/api/v1/pods?limit=1", headers={
        "Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"})
    body = json.loads(response.data)
    return len(body.get("items") or []) + int((body.get("metadata") or {}).get("remainingItemCount") or 0)


def wait_for_pods(cluster: EmbeddedCluster, expected: int, timeout: float, progress=print) -> dict:
    client = PooledClient(cluster, 2)
    began, last, seen = time.monotonic(), 0.0, 0
    while time.monotonic() - began < timeout:
        seen = count_pods(client)
        if seen >= expected:
            break
        if time.monotonic() - last > 30:
            last = time.monotonic()
            progress(f"pods: {seen}/{expected} after {last - began:.0f} s")
        time.sleep(3)
    elapsed = time.monotonic() - began
    progress(f"pods: {seen}/{expected} after {elapsed:.0f} s")
    return {"pods": seen, "expected": expected, "seconds": round(elapsed, 1), "complete": seen >= expected}


def fill(cluster: EmbeddedCluster, size: str, client: str = "urllib3", workers: int = 8,
         wait_pods: bool = True, pods_timeout: float = 3600, progress=print) -> dict:
    """Writes the plan for `size` into the cluster; returns timings and the manifest (also saved in
    the cluster's workdir)."""
    plan = make_plan(size)
    writer = CLIENTS[client](cluster, workers)
    began = time.monotonic()
    tally, phase_seconds = run_phases(writer, plan.phases, workers, progress)
    fill_seconds = time.monotonic() - began
    if tally.errors:
        raise RuntimeError(f"{len(tally.errors)} writes failed, e.g.:\n" + "\n".join(tally.errors[:10]))
    writes = sum(len(p) for p in plan.phases)
    progress(f"filled ({size}) with {writes} writes in {fill_seconds:.1f} s ({writes / fill_seconds:.0f}/s) "
             f"using {client} x {workers}")
    result = {"size": size, "client": client, "workers": workers, "writes": writes, "created": tally.created,
              "existed": tally.existed, "retries": {str(k): v for k, v in tally.retries.items()},
              "fill_seconds": round(fill_seconds, 2), "phase_seconds": [round(s, 2) for s in phase_seconds]}
    if wait_pods:
        result["pods"] = wait_for_pods(cluster, plan.expected_pods, pods_timeout, progress)
    document = manifest(plan)
    document["fill"] = result
    (Path(cluster.workdir) / MANIFEST).write_text(json.dumps(document, indent=1))
    return document


def compare_clients(cluster: EmbeddedCluster, count: int, worker_counts: list[int], progress=print) -> list[dict]:
    """Creates `count` ConfigMaps (the fill's typical write) per client and worker count, each in a
    namespace of its own, and times them."""
    rows = []
    for client_name in CLIENTS:
        for workers in worker_counts:
            namespace = f"clients-{client_name.replace('_', '-')}-{workers}"
            writer = CLIENTS[client_name](cluster, workers)
            _write(writer, Write("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}}, "Namespace"), Tally())
            writes = [Write("POST", f"/api/v1/namespaces/{namespace}/configmaps", {**configmaps_of(i)[0], "metadata": {
                "name": f"cm-{i:05d}"}}, "ConfigMap") for i in range(count)]
            tally, seconds = run_phases(writer, [writes], workers, progress=lambda _: None)
            row = {"client": client_name, "workers": workers, "writes": count, "seconds": round(seconds[0], 2),
                   "per_second": round(count / seconds[0]), "errors": len(tally.errors)}
            progress(json.dumps(row))
            rows.append(row)
            cluster.api_request("DELETE", f"/api/v1/namespaces/{namespace}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--attach", metavar="WORKDIR", help="fill this running embedded cluster and exit")
    parser.add_argument("--client", choices=CLIENTS, default="urllib3")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-wait-pods", action="store_true", help="do not wait for the controller-manager's pods")
    parser.add_argument("--compare-clients", action="store_true", help="time the clients on ConfigMap creates instead")
    parser.add_argument("--compare-count", type=int, default=1000)
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    # No nodes and no scheduler: the figures are the audit's at scale, not a scheduler retrying 10,000
    # pods no node can take (that kept the API server at 85% of a core); nodes at scale are bench/nodes.py's.
    cluster = EmbeddedCluster.attach(args.attach) if args.attach else EmbeddedCluster(profile="hardened", node_count=0, scheduler=False).start()
    try:
        if args.compare_clients:
            rows = compare_clients(cluster, args.compare_count, [4, 8, 16])
            (RESULTS / f"clients-{stamp}.json").write_text(json.dumps(rows, indent=1))
            return 0
        document = fill(cluster, args.size, args.client, args.workers, wait_pods=not args.no_wait_pods)
        (RESULTS / f"fill-{args.size}-{stamp}.json").write_text(json.dumps(document, indent=1))
        print(json.dumps(document["fill"], indent=1))
        if not args.attach:
            print(f"workdir {cluster.workdir}  (audit: .venv/bin/python -m pytest tests_cluster --cluster=local "
                  f"--local-attach={cluster.workdir}); Ctrl-C stops the cluster", flush=True)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
        return 0
    finally:
        if not args.attach:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
