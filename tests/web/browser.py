"""Chromium from Debian (`/usr/bin/chromium`) driven by Playwright for Python. Nothing here
downloads a browser: without the Debian package (or Playwright), the browser leg is skipped with
a message saying how to enable it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("REAPI_CHROMIUM", "/usr/bin/chromium")
#: Screenshots of every open page when a browser test fails.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

SKIP_NO_CHROMIUM = (
    f"Browser leg skipped: no Chromium at {CHROMIUM}. "
    "Enable it with `apt-get install chromium` (CI's .ci/run does)."
)
SKIP_NO_PLAYWRIGHT = (
    "Browser leg skipped: Playwright for Python is not installed. "
    "Enable it with `pip install -e '.[dev]'` (never `playwright install`: the tests use "
    "Debian's Chromium)."
)


def chromium_available() -> bool:
    return os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM) is not None


@pytest.fixture
def chromium(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A Playwright Browser on Debian's Chromium; every page it opened is photographed into
    test-artifacts/ if the test fails."""
    if not chromium_available():
        pytest.skip(SKIP_NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(SKIP_NO_PLAYWRIGHT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                for c, context in enumerate(browser.contexts):
                    for p, page in enumerate(context.pages):
                        name = f"{request.node.name}-context{c}-page{p}.png"
                        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
            browser.close()
