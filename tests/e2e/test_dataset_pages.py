"""The dataset pages in a browser: the preview pages past the first 20 rows, the token-length
card says what its numbers mean in plain words, and the Datasets page offers the DPO demo."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.integration.test_sft_run import upload_jsonl

pytestmark = pytest.mark.browser

ROWS = [{"prompt": f"Question number {i}?", "completion": f" Answer {i}."} for i in range(45)]


def test_preview_pages_through_every_row(live_server, page):
    with live_server.client() as client:
        dataset = upload_jsonl(client, ROWS, name="forty-five.jsonl")
        api = client.get(f"/api/datasets/{dataset['id']}/preview?offset=40&limit=20").json()
    assert api["offset"] == 40 and api["total"] == 45
    assert [r["prompt"] for r in api["rows"]] == [f"Question number {i}?" for i in range(40, 45)]

    page.goto(f"{live_server.url}/datasets/{dataset['id']}")
    rows = page.locator("#preview-table tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator("#preview-range")).to_have_text("rows 1–20 of 45")
    expect(page.locator("#preview-pager")).to_contain_text("page 1 of 3")
    expect(page.locator("#preview-prev")).to_have_count(0)

    page.click("#preview-next")
    expect(page.locator("#preview-range")).to_have_text("rows 21–40 of 45")
    expect(rows.first.locator(".row-index")).to_have_text("21")
    expect(rows.first).to_contain_text("Question number 20?")
    page.click("#preview-next")
    expect(rows).to_have_count(5)
    expect(page.locator("#preview-range")).to_have_text("rows 41–45 of 45")
    expect(rows.last).to_contain_text("Question number 44?")
    expect(page.locator("#preview-next")).to_have_count(0)
    page.click("#preview-prev")
    expect(page.locator("#preview-range")).to_have_text("rows 21–40 of 45")

    # A page past the end shows the last one rather than an empty table.
    page.goto(f"{live_server.url}/datasets/{dataset['id']}?page=99")
    expect(page.locator("#preview-range")).to_have_text("rows 41–45 of 45")

    # The length card in words: what a token is and what p95 means for max_length.
    explained = page.locator("#token-stats-explained")
    expect(explained).to_contain_text("word pieces the model reads")
    expect(explained).to_contain_text("95 of every 100 rows")


def test_datasets_page_offers_the_dpo_demo(live_server, page):
    page.goto(f"{live_server.url}/datasets")
    page.click("#demo-dpo-button")
    expect(page.locator("h1")).to_contain_text("DPO preference demo")
    expect(page.locator("#preview-table thead")).to_contain_text("chosen")
    expect(page.locator("#launch-run")).to_have_attribute("href", re.compile(r"strategy=dpo"))
