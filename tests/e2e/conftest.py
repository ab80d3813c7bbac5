"""Browser fixtures: pytest-playwright driving the system's Chromium (never a downloaded one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
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
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800},
            "accept_downloads": True}


@pytest.fixture(autouse=True)
def no_script_errors(page):
    """Any uncaught JavaScript error, on any page of the test's context, fails the test."""
    errors: list[str] = []
    page.context.on("weberror", lambda web_error: errors.append(str(web_error.error)))
    yield
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def screenshot(page):
    """Full-page PNG of the page (or ``target``) into docs/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str, target=None) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        shown = target or page
        shown.mouse.move(0, 0)  # no hover highlight or focus ring in the picture
        shown.evaluate("document.activeElement && document.activeElement.blur()")
        shown.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    return take
