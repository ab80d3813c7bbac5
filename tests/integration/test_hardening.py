"""Hardening through the real app in process: forms that work for a logged-in user when a token
is set, size and value limits answered with a 4xx that names the limit, never a 500."""

from __future__ import annotations

import re

from tests.integration.test_access import auth_client, login  # noqa: F401


def form_fields(html: str, action: str) -> dict[str, str]:
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html,
                     flags=re.DOTALL).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_the_wizard_dpo_demo_form_submits_for_a_logged_in_user(auth_client):  # noqa: F811
    login(auth_client)
    page = auth_client.get("/wizard?labelled=no&verifiable=no")
    assert page.status_code == 200 and 'id="load-dpo-demo"' in page.text
    fields = form_fields(page.text, "/wizard/dpo-demo")
    assert "csrf_token" in fields
    response = auth_client.post("/wizard/dpo-demo", data=fields, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/runs/new?strategy=dpo")
