"""Browser fixtures: pytest-playwright driving the system's Chromium (never a downloaded one)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# The README's pictures are refreshed only when asked: TUNEDECK_SCREENSHOTS=1 python -m pytest
# tests/e2e. Otherwise they go to a temporary folder, so a test run never rewrites tracked files.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WRITE_DOCS = os.environ.get("TUNEDECK_SCREENSHOTS") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if CHROMIUM is None:
        pytest.skip("browser tests need the system chromium (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # bypass_csp: Playwright's own string-evaluating helpers (wait_for_function) would trip the
    # app's CSP; tests/e2e/test_security_headers.py checks the CSP in a context without it.
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800},
            "accept_downloads": True, "bypass_csp": True}


@pytest.fixture(autouse=True)
def no_script_errors(page):
    """Any uncaught JavaScript error, on any page of the test's context, fails the test."""
    errors: list[str] = []
    page.context.on("weberror", lambda web_error: errors.append(str(web_error.error)))
    yield
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    folder = DOCS_SCREENSHOTS if WRITE_DOCS else Path(tempfile.mkdtemp(prefix="tunedeck-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def screenshot(page, screenshot_dir):
    """Full-page PNG of the page (or ``target``) as <name>.png: into docs/screenshots with
    TUNEDECK_SCREENSHOTS=1, else a temporary folder."""

    def take(name: str, target=None) -> Path:
        path = screenshot_dir / f"{name}.png"
        shown = target or page
        shown.mouse.move(0, 0)  # no hover highlight or focus ring in the picture
        shown.evaluate("document.activeElement && document.activeElement.blur()")
        shown.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    return take
