"""Opening a report as a person would: Debian's Chromium, headless, with a fresh profile and nothing
that reaches out (no background networking, updates, sync or QUIC), as the machine's notes require.
The e2e modules import this; make test installs the browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium(page: Path, profile: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs Chromium once on `page` with a new profile folder `profile` and `args` (--dump-dom,
    --screenshot=...), after the page's scripts have had ten seconds of virtual time."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is needed (make test installs it)"
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args,
                           page.as_uri()], capture_output=True, text=True, timeout=timeout)


def rendered_dom(page: Path, profile: Path) -> str:
    """The page's DOM once its scripts ran, as Chromium serialises it."""
    done = chromium(page, profile, "--dump-dom")
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-1000:]
    return done.stdout


def screenshot(page: Path, profile: Path, path: Path, size: str = "1280,1600") -> Path:
    done = chromium(page, profile, f"--window-size={size}", f"--screenshot={path}")
    assert done.returncode == 0 and path.is_file() and path.stat().st_size > 0, done.stderr[-1000:]
    return path
