"""Unit tests for kubeproof.checks.images: Docker reference parsing, registry allow-lists, mutable
tags, digest pinning and pull policies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled, never_passes, outcome, protect_prefixes
from workloads import DIGEST, GOOD_IMAGE, container, pod_spec, with_container, workload, workloads

from kubeproof.checks import images
from kubeproof.checks.images import ImageReference, parse_image
from kubeproof.results import NotVerified, ObjectRef

ALLOWED = ("registry.example.com", "ghcr.io/org")


def with_images(*refs, kind="Deployment", init=(), ephemeral=(), **fields) -> dict:
    spec = pod_spec([container(f"c{i}", ref, **fields) for i, ref in enumerate(refs)])
    if init:
        spec["initContainers"] = [container(f"i{i}", ref) for i, ref in enumerate(init)]
    if ephemeral:
        spec["ephemeralContainers"] = [container(f"e{i}", ref) for i, ref in enumerate(ephemeral)]
    return workload(kind, spec=spec)


# -- parsing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reference, registry, repository, tag, digest", [
    ("nginx", "docker.io", "library/nginx", None, None),
    ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
    ("library/nginx:latest", "docker.io", "library/nginx", "latest", None),
    ("docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("index.docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
    ("a/b/c", "docker.io", "a/b/c", None, None),
    ("localhost/x", "localhost", "x", None, None),
    ("localhost:5000/x", "localhost:5000", "x", None, None),
    ("localhost:5000/x:dev", "localhost:5000", "x", "dev", None),
    ("registry:5000/team/app", "registry:5000", "team/app", None, None),
    ("Registry.Example.COM/app:v1", "registry.example.com", "app", "v1", None),
    ("Foo/bar", "foo", "bar", None, None),  # upper case makes the first part a host, as in Docker
    ("[::1]:5000/x:1", "[::1]:5000", "x", "1", None),
    (f"ghcr.io/a/b:tag@{DIGEST}", "ghcr.io", "a/b", "tag", DIGEST),
    (f"nginx@{DIGEST}", "docker.io", "library/nginx", None, DIGEST),
    ("quay.io/a/b-c__d.e:V1.0_rc-1", "quay.io", "a/b-c__d.e", "V1.0_rc-1", None),
    ("sha512img@sha512:" + "ab" * 64, "docker.io", "library/sha512img", None, "sha512:" + "ab" * 64),
])
def test_references_are_normalised_like_the_container_runtime(reference, registry, repository, tag, digest):
    assert parse_image(reference) == ImageReference(registry, repository, tag, digest)


@pytest.mark.parametrize("reference", [
    "", " nginx", "nginx ", "ng inx", "NGINX", "nginx:", "nginx:-bad", ":1.0", "/nginx", "nginx/", "a//b",
    "nginx@sha256:abc", f"nginx@sha256:{'A' * 64}", "nginx@", "nginx@md5", "0123456789abcdef" * 4,
    "nginx:tag:extra", "ghcr.io/", "exa_mple.com/x", "x:" + "1" * 129, "a" * 256, "-a/b", "a/-b", "a/b-",
    None, 5, ["nginx"],
])
def test_malformed_references_are_refused(reference):
    with pytest.raises(ValueError):
        parse_image(reference)


def test_prefixes_run_from_the_registry_to_the_full_name():
    assert parse_image("ghcr.io/org/team/app:1").prefixes() == [
        "ghcr.io", "ghcr.io/org", "ghcr.io/org/team", "ghcr.io/org/team/app"]


# -- registries ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reference, patterns, allowed", [
    ("registry.example.com/app:1", ["registry.example.com"], True),
    ("ghcr.io/org/app:1", ["ghcr.io/org"], True),
    ("ghcr.io/organisation/app:1", ["ghcr.io/org"], False),  # a path prefix ends at a '/'
    ("ghcr.io/other/app:1", ["ghcr.io/org"], False),
    ("eu.registry.example.com/app", ["*.registry.example.com"], True),
    ("registry.example.com.evil.io/app", ["registry.example.com"], False),
    ("nginx", ["docker.io/library"], True),
    ("nginx", ["docker.io"], True),
    ("bitnami/redis", ["docker.io/library"], False),
    ("localhost:5000/x", ["localhost:5000"], True),
    ("localhost:5000/x", ["localhost"], False),
    ("registry.example.com/app", ["Registry.Example.com"], True),
    ("ghcr.io/org/app", ["ghcr.io/*"], True),
    ("ghcr.io/org/app", [], False),
])
def test_registry_patterns(reference, patterns, allowed):
    assert images.registry_allowed(parse_image(reference), patterns) is allowed


def test_disallowed_images_are_reported_per_container_including_init_and_ephemeral():
    obj = with_images(GOOD_IMAGE, "nginx:1.25", kind="Pod", init=["ghcr.io/org/init:1"], ephemeral=["busybox:1.36"])
    findings = images.registry_findings(obj, ALLOWED)
    assert {f.path for f in findings} == {"spec.containers[1].image", "spec.ephemeralContainers[0].image"}
    nginx = next(f for f in findings if f.path == "spec.containers[1].image")
    assert nginx.observed == "nginx:1.25 (registry docker.io)" and nginx.controls == ("5.5.1",)
    assert nginx.object == ObjectRef("Pod", "web", "team", "uid-web")


def test_an_empty_allow_list_allows_any_registry():
    assert images.registry_findings(with_images("nginx", "quay.io/x/y"), ()) == []


# -- mutable tags ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reference, reported", [
    ("nginx", True), ("nginx:latest", True), ("ghcr.io/org/app:latest", True), (f"nginx:latest@{DIGEST}", False),
    (f"nginx@{DIGEST}", False), ("nginx:1.25", False), ("nginx:Latest", False),
])
def test_latest_or_untagged_without_digest(reference, reported):
    findings = images.mutable_tag_findings(with_images(GOOD_IMAGE, reference))
    assert [f.path for f in findings] == (["spec.template.spec.containers[1].image"] if reported else [])


# -- digests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reference, reported", [
    ("nginx:1.25", True), ("nginx", True), (f"nginx@{DIGEST}", False), (f"nginx:1.25@{DIGEST}", False),
    ("nginx@sha512:" + "ab" * 64, True),  # the baseline asks for sha256
])
def test_digest_pinning(reference, reported):
    findings = images.digest_findings(with_images(reference, kind="StatefulSet"))
    assert bool(findings) is reported
    if reported:
        assert findings[0].path == "spec.template.spec.containers[0].image" and findings[0].observed == reference


# -- pull policy -----------------------------------------------------------------------------------
@pytest.mark.parametrize("reference, policy, reported", [
    ("nginx:1.25", None, True),          # defaults to IfNotPresent
    ("nginx:1.25", "IfNotPresent", True),
    ("nginx:1.25", "Never", True),
    ("nginx:1.25", "Always", False),
    ("nginx", None, False),              # no tag: defaults to Always
    ("nginx:latest", None, False),
    ("nginx:latest", "IfNotPresent", True),
    (f"nginx:1.25@{DIGEST}", "Never", False),
    (f"nginx@{DIGEST}", None, False),
])
def test_mutable_images_must_be_pulled_always(reference, policy, reported):
    fields = {"imagePullPolicy": policy} if policy else {}
    findings = images.pull_policy_findings(with_images(reference, kind="DaemonSet", **fields))
    assert bool(findings) is reported
    if reported:
        assert findings[0].path == "spec.template.spec.containers[0].imagePullPolicy"
        assert findings[0].observed.startswith(policy or "IfNotPresent")


def test_unknown_pull_policy_is_not_verified():
    with pytest.raises(NotVerified):
        images.pull_policy_findings(with_images("nginx:1", imagePullPolicy="Sometimes"))


CHECKS = [
    lambda obj: images.registry_findings(obj, ALLOWED),
    images.mutable_tag_findings,
    images.digest_findings,
    images.pull_policy_findings,
]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("image", [None, "", 5, "NGINX", "a b"])
def test_unparseable_or_missing_images_are_not_verified(check, image):
    spec = pod_spec([container("odd", image)])
    if image is None:
        del spec["containers"][0]["image"]
    with pytest.raises(NotVerified):
        check(workload(spec=spec))


# -- properties ------------------------------------------------------------------------------------
COMPONENT = st.from_regex(r"[a-z0-9]{1,5}([._-][a-z0-9]{1,4})?", fullmatch=True)
HOSTS = st.sampled_from(["registry.example.com", "ghcr.io", "localhost:5000", "quay.io", "docker.io", "10.0.0.1:443"])
TAGS = st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)
DIGESTS = st.none() | st.just(DIGEST)


@PROPERTY
@given(HOSTS, st.lists(COMPONENT, min_size=1, max_size=3), TAGS, DIGESTS)
def test_parsing_gives_back_what_a_reference_was_built_from(host, path, tag, digest):
    reference = f"{host}/{'/'.join(path)}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    parsed = parse_image(reference)
    repository = "/".join(path)
    if host == "docker.io" and len(path) == 1:
        repository = "library/" + repository
    assert parsed == ImageReference(host, repository, tag, digest)


@PROPERTY
@given(st.text(max_size=40) | JSON)
def test_parsing_anything_either_succeeds_or_says_why(value):
    try:
        parsed = parse_image(value)
    except ValueError as error:
        assert str(error)
    else:
        assert parsed.registry and parsed.repository


@PROPERTY
@given(st.data(), st.sampled_from(range(len(CHECKS))))
def test_malformed_workloads_give_findings_or_not_verified(data, index):
    outcome(CHECKS[index], data.draw(mangled(data.draw(workloads()))))


@PROPERTY
@given(JSON, st.sampled_from(range(len(CHECKS))))
def test_arbitrary_values_give_findings_or_not_verified(value, index):
    outcome(CHECKS[index], value)


@PROPERTY
@given(st.data(), st.sampled_from(["quay.io/evil/x:1", "nginx:1.25", "ghcr.io/organisation/x:1", f"evil.io/x@{DIGEST}"]))
def test_an_image_from_outside_the_allow_list_is_never_passed(data, image):
    obj = data.draw(workloads())
    lists = ["initContainers", "containers"] + (["ephemeralContainers"] if obj["kind"] == "Pod" else [])
    obj, where = with_container(obj, data.draw(st.sampled_from(lists)), data.draw(st.integers(0, 3)), container("x", image))
    findings = never_passes(images.registry_findings, obj, ALLOWED)
    assert any(f.observed.startswith(image) for f in findings)
    never_passes(images.registry_findings, data.draw(mangled(obj, protect_prefixes(where, ("kind",), ("metadata",)), root=False)), ALLOWED)


@PROPERTY
@given(st.data(), st.sampled_from(["nginx", "nginx:latest", "ghcr.io/org/x"]))
def test_a_latest_image_is_never_passed(data, image):
    obj, where = with_container(data.draw(workloads()), "containers", data.draw(st.integers(0, 3)), container("x", image))
    never_passes(images.mutable_tag_findings, obj)
    never_passes(images.digest_findings, obj)
    never_passes(images.mutable_tag_findings, data.draw(mangled(obj, protect_prefixes(where, ("kind",), ("metadata",)), root=False)))


@PROPERTY
@given(st.data(), st.sampled_from(["IfNotPresent", "Never"]))
def test_a_cached_mutable_image_is_never_passed(data, policy):
    obj, where = with_container(data.draw(workloads()), "containers", data.draw(st.integers(0, 3)),
                                container("x", "ghcr.io/org/x:1.0", imagePullPolicy=policy))
    never_passes(images.pull_policy_findings, obj)
    never_passes(images.pull_policy_findings, data.draw(mangled(obj, protect_prefixes(where, ("kind",), ("metadata",)), root=False)))
