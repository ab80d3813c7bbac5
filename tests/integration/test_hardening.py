"""Hardening through the real app in process: forms that work for a logged-in user when a token
is set, size and value limits answered with a 4xx that names the limit, never a 500."""

from __future__ import annotations

import re

import pytest

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


BIG = "9" * 5000


@pytest.mark.parametrize("path", [
    "/runs?dataset_id=²", "/wizard?dataset_id=²", "/wizard?labelled=yes&num_examples=²",
    f"/runs?dataset_id={BIG}", f"/wizard?dataset_id={BIG}",
    f"/wizard?labelled=yes&num_examples={BIG}", "/runs/new?dataset_id=²",
])
def test_odd_digits_and_huge_numbers_in_queries_are_not_a_500(client, path):
    response = client.get(path)
    assert response.status_code < 500


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(("name", "body"), [
    ("deep.jsonl", '{"prompt": "a", "completion": ' + DEEP + "}\n"),
    ("deep.json", '[{"prompt": "a", "completion": ' + DEEP + "}]"),
    ("deep.csv", 'prompt,messages\na,"' + DEEP + '"\n'),
])
def test_json_nested_100k_deep_in_an_upload_is_a_422_that_says_so(client, name, body):
    response = client.post("/api/datasets", files={"file": (name, body.encode())})
    assert response.status_code == 422, response.text
    assert "nests lists or objects too deeply" in response.json()["detail"]


def test_a_deep_csv_cell_that_is_not_messages_stays_text(client):
    body = 'prompt,completion\na,"' + DEEP + '"\n'
    response = client.post("/api/datasets", files={"file": ("deep-text.csv", body.encode())})
    assert response.status_code == 201, response.text
