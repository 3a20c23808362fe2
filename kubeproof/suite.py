"""What the plugin's modules share for one run of the suite: where the suite lives, and the keys of
what the run keeps on pytest's stash (the config's, and each item's)."""

from __future__ import annotations

import datetime
import functools
from pathlib import Path

import pytest

from kubeproof.controlplane.build import REPO_ROOT as CHECKOUT

SUITE_FOLDER = "tests_cluster"

# On the config's stash (the types named are kubeproof.session.Audit, artifacts.RunFolder, ...).
AUDIT = pytest.StashKey["Audit | None"]()
RECORDS = pytest.StashKey[list]()
STARTED = pytest.StashKey[datetime.datetime]()
RUN = pytest.StashKey["RunFolder | None"]()
GOVERNANCE = pytest.StashKey["Governance"]()
COMPLETED = pytest.StashKey[bool]()
PROBES = pytest.StashKey["Probes"]()
UPDATED = pytest.StashKey[tuple]()  # (accepted file, entries) after --update-baseline
GROUP_PASSED = pytest.StashKey[bool]()
FAILURES_SHORT = pytest.StashKey[bool]()
COMPARE_WITH = pytest.StashKey["Run | None"]()  # diff.Run: the earlier run --compare-with names
# On an item's stash.
VERDICT = pytest.StashKey["Verdict"]()
KEYWORDS = pytest.StashKey[dict]()


HOME = pytest.StashKey[Path]()


def home(config) -> Path:
    """The folder that holds the suite and its baselines: pytest's rootdir when it has tests_cluster/,
    else the checkout kubeproof runs from (pytest run from another directory). Found once per run:
    it is asked in several hooks of every item."""
    found = config.stash.get(HOME, None)
    if found is None:
        found = config.stash[HOME] = config.rootpath if (config.rootpath / SUITE_FOLDER).is_dir() else CHECKOUT
    return found


def in_suite(item) -> bool:
    return _under_suite_folder(str(home(item.config)), str(item.path))


@functools.lru_cache(maxsize=256)
def _under_suite_folder(root: str, path: str) -> bool:
    # Asked for every item in several hooks; resolving paths each time cost seconds at 30,000 items.
    return Path(root, SUITE_FOLDER).resolve() in Path(path).resolve().parents
