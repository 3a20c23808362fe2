"""Image provenance per workload: where every container's image comes from, whether its reference can
change under the workload (`:latest`, no tag, no digest), and whether the node re-checks it.

CIS 5.5.1 asks for image provenance to be enforced at admission (a manual control); these checks
prove what the workloads actually reference, which is what such a policy should have produced.

Image references follow the Docker grammar (github.com/distribution/reference), normalised the way
the container runtime does: `nginx` is docker.io/library/nginx, `localhost:5000/x` is on
localhost:5000, and a first part with a dot, a colon, upper case or named `localhost` is a registry."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from kubeproof.checks._workload import Container, PodTemplate, pod_template
from kubeproof.results import Finding, NotVerified

PRACTICE = "Image provenance"

PROVENANCE_CONTROLS = ("5.5.1",)
# The CIS ids each test of tests_cluster/test_images.py carries (tests_unit/test_markers.py holds its marks to them).
CIS_BY_TEST = {
    "test_images_come_from_allowed_registries": PROVENANCE_CONTROLS,
    "test_images_are_not_latest_or_untagged": PROVENANCE_CONTROLS,
    "test_images_are_pinned_by_digest": PROVENANCE_CONTROLS,
    "test_mutable_images_are_always_pulled": PROVENANCE_CONTROLS,
}
DEFAULT_REGISTRY = "docker.io"
LEGACY_DEFAULT_REGISTRY = "index.docker.io"
OFFICIAL_REPOSITORY_PREFIX = "library/"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_NAME_MAX = 255

_REMEDIATE_REGISTRY = (
    "Pull the image from a registry the baseline trusts (mirror it there), or add the registry to the "
    "baseline's images.allowed_registries if it is trusted."
)
_REMEDIATE_MUTABLE = (
    "Reference a specific version tag, and better the image digest (@sha256:...), so every node runs "
    "the image that was reviewed."
)
_REMEDIATE_DIGEST = (
    "Pin the image by digest (image: registry/name:tag@sha256:<digest>); the baseline requires it in "
    "this namespace so that a re-pushed tag cannot change what runs."
)
_REMEDIATE_PULL = (
    "Pin the image by digest, or set imagePullPolicy: Always so the node checks the registry (and the "
    "pod's credentials for it) before every start instead of reusing a cached copy of a mutable tag."
)


@dataclass(frozen=True)
class ImageReference:
    registry: str  # lower case host[:port]
    repository: str  # path below the registry, e.g. library/nginx
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def prefixes(self) -> list[str]:
        """The registry, then each path prefix down to the full name: what baseline patterns match."""
        parts = self.repository.split("/")
        return [self.registry] + [f"{self.registry}/{'/'.join(parts[:n])}" for n in range(1, len(parts) + 1)]

    @property
    def pinned(self) -> bool:
        return self.digest is not None and _SHA256.fullmatch(self.digest) is not None

    @property
    def mutable(self) -> bool:
        """Whether what the reference points at can change: no digest at all."""
        return self.digest is None


def parse_image(reference) -> ImageReference:
    """Parse a container image reference; ValueError names what is wrong with it."""
    if not isinstance(reference, str) or not reference:
        raise ValueError("the image is missing or not a string")
    if reference != reference.strip() or any(c.isspace() for c in reference):
        raise ValueError("the image reference contains white space")
    if _IDENTIFIER.fullmatch(reference):
        raise ValueError("a bare 64-hex-digit image id is ambiguous; it is not a reference")
    name, at, digest = reference.partition("@")
    if at:
        if not _DIGEST.fullmatch(digest):
            raise ValueError("the digest after '@' is not algorithm:hex")
        if digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
            raise ValueError("a sha256 digest must be 64 lower-case hex digits")
    else:
        digest = None
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise ValueError("the tag is not a valid tag")
    slash = name.find("/")
    first = name[:slash]
    if slash == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        registry, repository = DEFAULT_REGISTRY, name
    else:
        registry, repository = first, name[slash + 1:]
        if not _DOMAIN.fullmatch(registry):
            raise ValueError("the registry part is not a host name")
        registry = registry.lower()
        if registry == LEGACY_DEFAULT_REGISTRY:
            registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = OFFICIAL_REPOSITORY_PREFIX + repository
    if not repository or not all(_PATH_COMPONENT.fullmatch(part) for part in repository.split("/")):
        raise ValueError("the repository path is not lower-case name components separated by '/'")
    if len(f"{registry}/{repository}") > _NAME_MAX:
        raise ValueError(f"the repository name is longer than {_NAME_MAX} characters")
    return ImageReference(registry, repository, tag, digest)


def _images(workload) -> tuple[PodTemplate, list[tuple[Container, str, ImageReference]]]:
    template = pod_template(workload)
    found = []
    for container in template.containers:
        image = container.fields.get("image")
        try:
            found.append((container, image, parse_image(image)))
        except ValueError as error:
            raise NotVerified(f"{template.ref} {container.path}.image cannot be judged: {error}") from None
    return template, found


def registry_allowed(image: ImageReference, patterns) -> bool:
    """Patterns match the registry host, or a host/path prefix at a '/' boundary, with shell-style
    wildcards (fnmatch, where '*' also crosses '/'). Registry names compare case-insensitively."""
    wanted = [p.lower() for p in patterns]
    return any(fnmatch.fnmatchcase(prefix, pattern) for prefix in image.prefixes() for pattern in wanted)


def registry_findings(workload, allowed_registries) -> list[Finding]:
    """Images from outside the allowed registries; an empty list allows any registry (the test
    records that as an exemption, not a pass)."""
    if not allowed_registries:
        return []
    template, images = _images(workload)
    return [
        Finding(PROVENANCE_CONTROLS, template.ref, f"{container.path}.image", f"{image} (registry {parsed.registry})",
                f"an image from one of: {', '.join(allowed_registries)}", _REMEDIATE_REGISTRY)
        for container, image, parsed in images
        if not registry_allowed(parsed, allowed_registries)
    ]


def mutable_tag_findings(workload) -> list[Finding]:
    """`:latest` or no tag at all, without a digest: the image changes whenever someone pushes."""
    template, images = _images(workload)
    return [
        Finding(PROVENANCE_CONTROLS, template.ref, f"{container.path}.image",
                f"{image} ({'untagged, so latest' if parsed.tag is None else 'tag latest'}, no digest)",
                "a version tag or a digest", _REMEDIATE_MUTABLE)
        for container, image, parsed in images
        if parsed.mutable and parsed.tag in (None, "latest")
    ]


def digest_findings(workload) -> list[Finding]:
    """Images not pinned by sha256 digest. The caller applies it where the baseline requires digests."""
    template, images = _images(workload)
    return [
        Finding(PROVENANCE_CONTROLS, template.ref, f"{container.path}.image", image,
                "an image pinned by @sha256:<64 hex digits>", _REMEDIATE_DIGEST)
        for container, image, parsed in images
        if not parsed.pinned
    ]


def effective_pull_policy(container: Container, parsed: ImageReference, where: str) -> str:
    """The container's imagePullPolicy, or what the API server defaults it to when unset."""
    policy = container.fields.get("imagePullPolicy")
    if policy is None or policy == "":
        # As the API server defaults it: a reference with neither tag nor digest means :latest.
        latest = parsed.tag == "latest" or (parsed.tag is None and parsed.digest is None)
        return "Always" if latest else "IfNotPresent"
    if policy not in PULL_POLICIES:
        raise NotVerified(f"{where}.imagePullPolicy is not one of {', '.join(PULL_POLICIES)}; it cannot be judged")
    return policy


def pull_policy_findings(workload) -> list[Finding]:
    """Our rule: an image without a digest can be re-pushed under the same tag, and a node holding an
    old copy (IfNotPresent) or never pulling (Never) may run a stale or swapped image, and skips the
    registry's check of the pod's pull credentials. So a mutable reference must be pulled Always; a
    digest makes the policy irrelevant, since any copy with that digest is the same image."""
    template, images = _images(workload)
    findings = []
    for container, image, parsed in images:
        if not parsed.mutable:
            continue
        policy = effective_pull_policy(container, parsed, f"{template.ref} {container.path}")
        if policy != "Always":
            findings.append(Finding(PROVENANCE_CONTROLS, template.ref, f"{container.path}.imagePullPolicy",
                                    f"{policy} for {image} (no digest)", "Always, or an image pinned by digest",
                                    _REMEDIATE_PULL))
    return findings
