"""A sweep from the launch form in a real browser against a live server and worker: the Sweep
switch says how many runs it will make, the sweep page shows its runs appear and finish, the
queue page lists them, and one click compares the top two."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ROWS = "\n".join(json.dumps({"prompt": f"Say {i}.", "completion": f" word {i % 3}"})
                 for i in range(12))


def test_sweep_from_the_form_then_compare_the_top_two(live_server, page):
    with live_server.client() as client:
        dataset = client.post("/api/datasets", files={"file": ("sweep-e2e.jsonl", ROWS.encode())})
        assert dataset.status_code == 201, dataset.text
    dataset_id = dataset.json()["id"]
    page.goto(f"{live_server.url}/runs/new?dataset_id={dataset_id}")
    page.select_option("#field-base_model", "tiny-random-llama")
    page.fill("#field-name", "e2e-sweep")
    page.fill("input[name=max_steps]", "2")
    page.locator("#advanced-sft summary").click()
    page.fill("input[name=save_steps]", "2")
    page.fill("input[name=max_length]", "64")
    page.fill("input[name=per_device_train_batch_size]", "2")
    page.fill('#advanced-sft input[name=eval_split]', "0.25")

    page.check("#sweep-switch")
    row = page.locator("#sweep-rows .sweep-row").first
    expect(row.locator('[data-sweep="field"]')).to_have_value("learning_rate")
    expect(page.locator("#sweep-count")).to_have_text("This sweep will make 2 runs.")
    row.locator('[data-sweep="values"]').fill("1e-3, 1e-4, 5e-4")
    expect(page.locator("#sweep-count")).to_have_text("This sweep will make 3 runs.")
    page.click("#sweep-add")
    second = page.locator("#sweep-rows .sweep-row").nth(1)
    second.locator('[data-sweep="field"]').select_option("lora_r")
    second.locator('[data-sweep="values"]').fill("2, 4")
    expect(page.locator("#sweep-count")).to_have_text("This sweep will make 6 runs.")
    expect(page.locator("#run-submit")).to_have_text("Launch sweep (6 runs)")
    # A range in a grid is refused next to the form, before anything is sent.
    second.locator('[data-sweep="values"]').fill("2 .. 8")
    page.click("#run-submit")
    expect(page.locator("#run-error")).to_contain_text("space.lora_r: a grid needs a list")
    second.locator('[data-sweep="remove"]').click()
    # Far apart, so that two steps of a tiny model already tell the runs apart.
    row.locator('[data-sweep="values"]').fill("0.05, 1e-5")
    page.fill("#sweep-concurrency", "1")
    page.click("#run-submit")

    page.wait_for_url(re.compile(r"/sweeps/\d+$"))
    sweep_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("h1")).to_contain_text("e2e-sweep")
    expect(page.locator("#sweep-runs tbody tr")).to_have_count(1)  # one at a time

    queue = page.context.new_page()
    queue.goto(f"{live_server.url}/queue")
    expect(queue.locator('[data-queue="training"]')).to_contain_text("e2e-sweep-")

    expect(page.locator("#sweep-runs tbody tr")).to_have_count(2, timeout=300_000)
    expect(page.locator("#sweep-status")).to_have_text("completed", timeout=300_000)
    expect(page.locator("#sweep-counts")).to_contain_text("2 completed")
    expect(page.locator("#sweep-best-link")).to_be_visible()
    page.wait_for_function("() => { const c = document.getElementById('sweep-chart');"
                           " return c && c.data && c.data.length > 0; }", timeout=30_000)
    # Click a column to sort, again to reverse (learning rates differ; two steps of a tiny model
    # may well tie on the metric, so the order is checked on the field tried).
    with live_server.client() as client:
        summary = client.get(f"/api/sweeps/{sweep_id}").json()
    by_lr = sorted(summary["runs"], key=lambda r: r["params"]["learning_rate"])
    assert len(by_lr) == 2 and all(r["best"] is not None for r in by_lr)
    first_row = page.locator("#sweep-runs tbody tr").first
    page.locator('[data-sort="param:learning_rate"]').click()
    expect(first_row).to_have_attribute("data-run-id", str(by_lr[0]["id"]))
    page.locator('[data-sort="param:learning_rate"]').click()
    expect(first_row).to_have_attribute("data-run-id", str(by_lr[1]["id"]))
    ranked = sorted(summary["runs"], key=lambda r: r["rank"])
    assert summary["best_run"]["id"] == ranked[0]["id"]
    page.click("#compare-top")
    page.wait_for_url(re.compile(r"/compare\?runs="))
    expect(page.locator("#compare-subtitle")).to_contain_text(
        f"Runs {ranked[0]['id']}, {ranked[1]['id']}")


def test_optuna_sweep_from_the_form_counts_its_budget_and_sends_its_pruner(live_server, page):
    with live_server.client() as client:
        dataset = client.post("/api/datasets", files={"file": ("optuna-e2e.jsonl", ROWS.encode())})
        assert dataset.status_code == 201, dataset.text
    page.goto(f"{live_server.url}/runs/new?dataset_id={dataset.json()['id']}")
    page.select_option("#field-base_model", "tiny-random-llama")
    page.fill("#field-name", "e2e-optuna")
    page.fill("input[name=max_steps]", "2")
    page.locator("#advanced-sft summary").click()
    page.fill('#advanced-sft input[name=eval_split]', "0.25")

    page.check("#sweep-switch")
    expect(page.locator("#sweep-pruner-box")).to_be_hidden()
    page.select_option("#sweep-kind", "optuna")
    expect(page.locator("#sweep-pruner-box")).to_be_visible()
    expect(page.locator("#sweep-pruner")).to_have_value("median")
    page.locator("#sweep-rows .sweep-row").first.locator('[data-sweep="values"]').fill(
        "1e-5 .. 1e-3")
    page.locator("#sweep-rows .sweep-row").first.locator('[data-sweep="log"]').check()
    page.fill("#sweep-budget", "3")
    expect(page.locator("#sweep-count")).to_have_text("This sweep will make 3 runs.")
    page.select_option("#sweep-pruner", "successive_halving")
    page.click("#run-submit")

    page.wait_for_url(re.compile(r"/sweeps/\d+$"))
    sweep_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".subtitle")).to_contain_text("Optuna sweep of 3 runs")
    expect(page.locator(".subtitle")).to_contain_text("successive halving pruner")
    with live_server.client() as client:
        summary = client.get(f"/api/sweeps/{sweep_id}").json()
        assert summary["pruner"] == "successive_halving"
        assert summary["space"]["learning_rate"] == {"low": 1e-5, "high": 1e-3, "scale": "log"}
        assert client.post(f"/api/sweeps/{sweep_id}/cancel").status_code == 200
