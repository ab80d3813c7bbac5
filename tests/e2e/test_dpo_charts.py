"""A finished DPO run's page charts its preference curves: margins, accuracies, and chosen vs
rejected rewards together in one chart (train and eval)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.integration.test_dpo_run import ROWS
from tests.integration.test_sft_run import upload_jsonl

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRACES = "(id) => document.getElementById(id).data.map((t) => t.name).sort()"


def test_dpo_run_page_shows_preference_charts(live_server, page):
    with live_server.client() as client:
        dataset = upload_jsonl(client, ROWS, name="chart-pairs.jsonl")
        response = client.post("/api/runs", json={
            "dataset_id": dataset["id"], "strategy": "dpo", "base_model": "tiny-random-llama",
            "hyperparameters": {"max_steps": 2, "save_steps": 2, "eval_split": 0.25,
                                "per_device_train_batch_size": 2, "max_length": 64},
        })
        assert response.status_code == 201, response.text
    run = live_server.wait_for_run(response.json()["id"])
    assert run["status"] == "completed", run["error"]

    page.goto(f"{live_server.url}/runs/{run['id']}")
    for chart in ("chart-rewards-margins", "chart-rewards-accuracies",
                  "chart-rewards-chosen-vs-rejected"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
    assert page.evaluate(TRACES, "chart-rewards-chosen-vs-rejected") == [
        "eval_rewards/chosen", "eval_rewards/rejected", "rewards/chosen", "rewards/rejected"]
    # Right after the loss: the preference curves come first among the extra charts.
    first = page.locator("#charts-extra .chart").first
    expect(first).to_have_attribute("id", "chart-rewards-margins")
    expect(page.locator("#checkpoints-table .badge-best:visible")).to_have_count(1)
