"""Security headers in a real browser: every page renders (plotly charts included) under the
Content-Security-Policy with no violation, and a cross-site page cannot frame the app."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_compare import add_finished_runs

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.lineNumber}`));
"""


@pytest.fixture
def csp_page(browser):
    """A page whose context enforces the CSP (the suite's default context bypasses it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    context.on("weberror", lambda web_error: errors.append(str(web_error.error)))
    yield context.new_page()
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def test_pages_render_their_charts_under_the_csp_with_no_violation(live_server, csp_page):
    page = csp_page
    first, second = add_finished_runs(live_server)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.add_init_script(RECORD_VIOLATIONS)

    response = page.goto(f"{live_server.url}/runs/{first}")
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    expect(page.locator("#chart-loss .main-svg").first).to_be_visible()
    assert page.evaluate("window.__csp") == []

    page.goto(f"{live_server.url}/compare?runs={first},{second}")
    expect(page.locator("#charts .plot .main-svg").first).to_be_visible()
    assert page.evaluate("window.__csp") == []

    for path in ("/", "/datasets", "/runs", "/runs/new", "/wizard", "/playground"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__csp") == [], path
    assert console == []


def test_a_cross_site_page_cannot_frame_the_wizard(live_server, csp_page):
    page = csp_page
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
    page.set_content(f'<iframe id="f" src="{live_server.url}/wizard"></iframe>')
    page.wait_for_timeout(2000)
    frame = page.frame_locator("#f")
    expect(frame.locator("#answer-form")).to_have_count(0)
    assert blocked, "the browser did not report the refused framing"
