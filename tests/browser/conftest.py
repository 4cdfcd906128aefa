"""Real-browser tests: Playwright driving Debian's Chromium (``apt-get install chromium``).

Playwright's own browser download is never used (it cannot work offline); the tests launch the
system Chromium. When Chromium, Playwright, KaTeX or JupyterLab is missing they are skipped with
the reason, except when ``CI=true``, where a missing tool fails loudly: CI must run them.

Every page runs offline: requests to anything but the local test server are aborted and
recorded, and the tests assert that none was attempted. Screenshots go to
``artifacts/screenshots/`` (kept by CI as test artifacts).

This folder is a package (``__init__.py``) so that its ``conftest`` module does not shadow the
top-level ``tests/conftest.py`` that other test modules import helpers from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kit_testing import install_hint

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "browser: drives Debian's Chromium through Playwright (skipped when missing, required when CI=true)",
    )


def require(ok, reason: str) -> None:
    """Skip with ``reason`` when a tool is missing; fail instead when CI=true."""
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} — CI=true, so the browser tests must run", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in this thread
# while it is open, and nbclient (the site and notebook tests) cannot run beside it.
@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(
            False,
            "playwright is not installed (pip install playwright; the browser comes from apt)",
        )
    path = chromium_path()
    require(
        path, f"Chromium not found: {install_hint('chromium')}, or set CHROMIUM=/path/to/chromium"
    )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Offline:
    """A browser context that lets through only the allowed URL prefixes and records the rest."""

    def __init__(self, browser, allowed: tuple[str, ...]):
        self.blocked: list[str] = []
        self.allowed = ("data:", "blob:", *allowed)
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.console_errors: list[str] = []

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.allowed):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def new_page(self):
        page = self.context.new_page()
        page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )
        return page

    def close(self):
        self.context.close()


@pytest.fixture
def offline(browser):
    """``offline(allowed_prefixes)`` → an :class:`Offline` context, closed after the test."""
    made = []

    def make(*allowed: str) -> Offline:
        made.append(Offline(browser, allowed))
        return made[-1]

    yield make
    for context in made:
        context.close()


@pytest.fixture(scope="session")
def walkthrough(tmp_path_factory) -> Path:
    """The walkthrough, built by its one command (executed notebooks come from the shared cache)."""
    import build_site  # scripts/ is on sys.path (tests/conftest.py)

    try:
        build_site.find_katex()
    except build_site.BuildError as exc:
        require(False, str(exc))
    out = tmp_path_factory.mktemp("walkthrough") / "site"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_site.py"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
