"""Pytest fixtures for tests that drive a real browser: Debian's Chromium through Playwright.

Import them into a test module with ``from tests.browser import browser, page  # noqa: F401``.
Playwright for Python drives the system browser (``executable_path``) so nothing is downloaded;
``make test`` installs Debian's ``chromium`` package when it is missing (Makefile).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

# Where Debian's package puts the browser; OVERNET_CHROMIUM overrides it for other systems.
CHROMIUM = os.environ.get("OVERNET_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# Headless as root in a sandbox-less VM, and kept off the network: without the
# background-networking flags Chromium keeps dialling Google's hosts, which this closed
# network refuses, slowing every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Bounds for every wait in a browser test (milliseconds): a page that never answers fails the
# test instead of hanging the suite.
DEFAULT_TIMEOUT_MS = 60_000


# Module scope, not session: Playwright's sync API runs an asyncio loop in this thread while
# it is started, which breaks every later asyncio.run in the suite (and a second module that
# imports these fixtures would start a second Playwright beside the first).
@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``) with CHROMIUM_ARGS and ``extra_args``,
    closed on the way out; the test skips when Playwright or the browser is missing."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    if not os.path.isfile(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (make test does)")
    # Playwright gives the browser a fresh temporary profile and removes it on close.
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed at the end of the module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page in its own context (downloads accepted), closed after the test."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()
