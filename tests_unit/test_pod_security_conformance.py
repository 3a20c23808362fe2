"""Conformance of kubeproof.pod_security against the Kubernetes PodSecurity fixtures.

The fixtures are the upstream PodSecurity admission test data, one directory
per level and policy version, split into objects that must be allowed
(``pass``) and objects that must be rejected (``fail``).  A fail fixture's file
name names the check it exercises, e.g. ``capabilities_baseline1.yaml``.

They ship in the ``k8s.io/pod-security-admission`` Go module, at the version the
embedded control plane pins (tools/controlplane/kube/go.mod), under
``test/testdata``; the go command finds the module in its cache, or downloads it
from the module proxy first.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from kubeproof.controlplane.build import BuildError, module_source
from kubeproof.pod_security import CHECKS, evaluate

MODULE = "k8s.io/pod-security-admission"
try:
    FIXTURE_ROOT = module_source(MODULE) / "test" / "testdata"
    FIXTURE_ERROR = None
except BuildError as error:
    # Reported by test_fixture_directory_is_present: a missing corpus fails, it never skips.
    FIXTURE_ROOT, FIXTURE_ERROR = Path("/nonexistent"), str(error)
LEVELS = ("baseline", "restricted")
# The versions this suite must prove; older ones are covered when present.
REQUIRED_MINORS = range(23, 38)
PASSING_FIXTURE_NAMES = {"base", "base_linux", "base_windows"}

_CHECK_ID_BY_FILE_STEM = {check_id.lower(): check_id for check_id in CHECKS}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _minor_of(version_dir: Path) -> int:
    return int(version_dir.name.removeprefix("v1."))


def _version_dirs(level: str) -> list[Path]:
    level_dir = FIXTURE_ROOT / level
    if not level_dir.is_dir():
        return []
    versions = [path for path in level_dir.iterdir() if re.fullmatch(r"v1\.\d+", path.name)]
    return sorted(versions, key=_minor_of)


def _fixture_cases() -> list:
    cases = []
    for level in LEVELS:
        for version_dir in _version_dirs(level):
            for outcome in ("pass", "fail"):
                for fixture in sorted((version_dir / outcome).glob("*.yaml")):
                    case_id = f"{level}-{version_dir.name}-{outcome}-{fixture.stem}"
                    cases.append(pytest.param(level, version_dir.name, outcome, fixture, id=case_id))
    return cases


FIXTURE_CASES = _fixture_cases()


@cache
def _parse(text: str):
    # Most fixtures repeat unchanged across versions; parse each text once.
    return yaml.load(text, Loader=_YAML_LOADER)


def _load(fixture: Path) -> dict:
    return _parse(fixture.read_text(encoding="utf-8"))


def _check_id_named_by(fixture: Path) -> str | None:
    return _CHECK_ID_BY_FILE_STEM.get(re.sub(r"\d+$", "", fixture.stem))


def test_fixture_directory_is_present():
    assert FIXTURE_ERROR is None, f"the Pod Security fixtures ({MODULE}) could not be had: {FIXTURE_ERROR}"
    assert FIXTURE_ROOT.is_dir(), f"{MODULE} has no test/testdata at {FIXTURE_ROOT}"


@pytest.mark.parametrize("level", LEVELS)
def test_fixtures_cover_every_required_version(level):
    present = {_minor_of(path) for path in _version_dirs(level)}
    missing = [f"v1.{minor}" for minor in REQUIRED_MINORS if minor not in present]
    assert not missing, f"{level} fixtures missing for versions {missing} under {FIXTURE_ROOT}"
    for minor in REQUIRED_MINORS:
        for outcome in ("pass", "fail"):
            directory = FIXTURE_ROOT / level / f"v1.{minor}" / outcome
            assert any(directory.glob("*.yaml")), f"no fixtures in {directory}"


@pytest.mark.parametrize(("level", "version", "outcome", "fixture"), FIXTURE_CASES)
def test_fixture(level, version, outcome, fixture):
    violations = evaluate(_load(fixture), level, version)
    if outcome == "pass":
        assert violations == [], f"{fixture} must be allowed at {level} {version}"
        return
    expected_check = _check_id_named_by(fixture)
    assert expected_check is not None, f"{fixture.name} does not name a known check id"
    reported = {violation.check_id for violation in violations}
    assert expected_check in reported, (
        f"{fixture} must violate {expected_check} at {level} {version}; got {sorted(reported) or 'nothing'}"
    )


def test_every_check_is_exercised_by_a_failing_fixture():
    # Guards against a check id silently drifting away from the fixture names.
    exercised = {
        _check_id_named_by(fixture)
        for level in LEVELS
        for version_dir in _version_dirs(level)
        for fixture in (version_dir / "fail").glob("*.yaml")
    }
    assert set(CHECKS) <= exercised, f"checks without a failing fixture: {sorted(set(CHECKS) - exercised)}"


def test_passing_fixtures_are_named_after_checks_or_bases():
    unknown = sorted({
        fixture.name
        for level in LEVELS
        for version_dir in _version_dirs(level)
        for fixture in (version_dir / "pass").glob("*.yaml")
        if fixture.stem not in PASSING_FIXTURE_NAMES and _check_id_named_by(fixture) is None
    })
    assert not unknown, f"pass fixtures not named after a known check: {unknown}"
