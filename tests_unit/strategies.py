"""Shared hypothesis strategies and helpers for the unit tests of kubeproof's checks.

The checks take plain dicts read from the API; the properties here feed them well-formed objects
with one or more fields swapped for arbitrary JSON-like values, and check the contract: a list of
findings, or NotVerified, and nothing else."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from kubeproof.baseline import Baseline
from kubeproof.results import Finding, NotVerified

# Modest settings so the whole unit suite stays fast.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL_PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Strings that mean something to the checks, mixed with arbitrary text so the fuzzing reaches the
# interesting branches and not only the "not a string" ones.
MEANINGFUL = st.sampled_from([
    "", "*", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "User", "Group", "ServiceAccount",
    "cluster-admin", "system:anonymous", "system:unauthenticated", "system:masters", "Ingress", "Egress",
    "secrets", "*.", "*.*", "identity", "aescbc", "kms", "restricted", "baseline", "privileged",
    "rbac-defaults", "kubernetes.io/bootstrapping", "name", "namespace", "kind", "metadata", "labels",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2, max_value=600), st.floats(allow_nan=False, width=32),
    st.text(max_size=6), MEANINGFUL,
)
KEYS = st.one_of(st.text(max_size=5), MEANINGFUL)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=6,
)

# Well-formed building blocks.
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum()
)


def paths(value, prefix: tuple = ()) -> list[tuple]:
    """Every position inside a JSON-like value (the root is ())."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, prefix + (key,)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths(child, prefix + (index,)))
    return found


def replace_at(value, path: tuple, new):
    if not path:
        return new
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return value


def delete_at(value, path: tuple):
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return value


@st.composite
def mangled(draw, original, protected=lambda path: False, root=True):
    """A deep copy of `original` with one to three positions replaced by arbitrary values, or (for
    mapping keys) removed. `protected(path)` keeps chosen positions and everything above them intact;
    `root=False` also keeps the object itself a mapping."""
    value = copy.deepcopy(original)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        candidates = [p for p in paths(value) if not protected(p) and (root or p)]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        if path and isinstance(parent, dict) and draw(st.booleans()):
            value = delete_at(value, path)
        else:
            value = replace_at(value, path, draw(JSON))
    return value


def protect_prefixes(*kept: tuple):
    """A `protected` predicate that keeps each path in `kept` and every position on the way to it."""
    def protected(path: tuple) -> bool:
        return any(path == k[: len(path)] or path[: len(k)] == k for k in kept)
    return protected


def outcome(check, *args):
    """Runs a check; returns its findings or the NotVerified it raised. Any other exception escapes
    and fails the test."""
    try:
        result = check(*args)
    except NotVerified as error:
        assert isinstance(error.reason, str) and error.reason
        return error
    assert isinstance(result, list), f"{check.__name__} returned {type(result).__name__}, not a list"
    assert all(isinstance(f, Finding) for f in result), result
    return result


def never_passes(check, *args):
    """The check found something or could not judge the object; it did not pass it."""
    result = outcome(check, *args)
    assert result != [], f"{check.__name__} passed an object that holds a violation"
    return result


def baseline(**fields) -> Baseline:
    return Baseline(path="unit-test-baseline.yaml", sha256="0" * 64, **fields)
