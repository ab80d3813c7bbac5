"""Evaluation and playground in a real browser: open an evaluation of a tiny-random-llama adapter,
filter to the examples where the tuned model is worse than the base, then ask the playground."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.integration.test_sft_run import upload_jsonl

pytestmark = pytest.mark.browser

TRAIN = [{"prompt": f"Say the word number {i}.",
          "completion": f" Word {i % 3}: {'abc'[i % 3] * 3}."}
         for i in range(16)]
# Rows like the training rows (the adapter should get better) and unrelated ones, with markup
# that must show as text (the adapter, tuned on other words, should get worse on these).
HELD_OUT = [*TRAIN[:4],
            {"prompt": "<b>Name a colour</b>", "completion": " Zebra quantum xylophone <i>!</i>"},
            {"prompt": "Describe the sea.", "completion": " Vast, salty; endless horizons."},
            {"prompt": "List three fruits.", "completion": " Mango, kiwi & papaya."},
            {"prompt": "Quote a poem.", "completion": " Tyger Tyger, burning bright {}[]"},
            {"prompt": "Spell it.", "completion": " Qwzx jjkv ppfh ~~ ^^ %%"}]


def wait_for(client, url: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.5)
    raise AssertionError(f"{url} did not finish: {body}")


def test_evaluation_filter_and_playground(live_server, page, screenshot):
    with live_server.client() as client:
        train = upload_jsonl(client, TRAIN, name="words.jsonl")
        other = upload_jsonl(client, HELD_OUT, name="held-out.jsonl")
        run = client.post("/api/runs", json={
            "dataset_id": train["id"], "strategy": "sft", "base_model": "tiny-random-llama",
            "name": "evaluated-sft", "hyperparameters": {
                "max_steps": 4, "save_steps": 4, "per_device_train_batch_size": 4,
                "learning_rate": 1e-2, "max_length": 64,
                # Plain prompts: with the chat template every answer ends in the same end-of-turn
                # token, which the adapter learns, so it would be better on every held-out row.
                "chat_template": "off"}}).json()
        run = live_server.wait_for_run(run["id"])
        assert run["status"] == "completed", run["error"]
        created = client.post(f"/api/runs/{run['id']}/evaluations", json={
            "dataset_id": other["id"], "max_new_tokens": 8})
        assert created.status_code == 201, created.text
        evaluation = wait_for(client, f"/api/evaluations/{created.json()['id']}")
        assert evaluation["status"] == "completed", evaluation["error"]
        worse = client.get(f"/api/evaluations/{evaluation['id']}/examples?filter=tuned_worse")
        worse_count = worse.json()["total"]
    assert 0 < worse_count < len(HELD_OUT), "the fixture rows should make the adapter worse on some"

    page.goto(f"{live_server.url}/evaluations/{evaluation['id']}")
    expect(page.locator("#scores-table tbody tr")).to_have_count(3)
    rows = page.locator("#examples-table tbody tr")
    expect(rows).to_have_count(len(HELD_OUT))
    # Markup in the data is shown as text, never rendered.
    expect(page.locator("#examples-table")).to_contain_text("<b>Name a colour</b>")
    assert page.locator("#examples-table b").count() == 0
    screenshot("evaluation")

    page.select_option("#example-filter", "tuned_worse")
    expect(rows).to_have_count(worse_count)
    for outcome in rows.evaluate_all("rows => rows.map(r => r.dataset.outcome)"):
        assert outcome == "worse"
    expect(page.locator("#example-count")).to_have_text(str(worse_count))

    # The run page lists the evaluation; the playground answers side by side.
    page.goto(f"{live_server.url}/runs/{run['id']}")
    expect(page.locator("#evaluations-table tbody")).to_contain_text(f"#{evaluation['id']}")
    page.goto(f"{live_server.url}/playground?run_id={run['id']}")
    page.select_option("#pg-examples", "0")
    expect(page.locator("#pg-prompt")).to_have_value(TRAIN[0]["prompt"])
    page.fill("input[name=max_new_tokens]", "12")
    page.click("#pg-generate")
    expect(page.locator("#pg-status")).to_have_text("done", timeout=120_000)
    expect(page.locator("#pg-tuned")).not_to_have_text("…")
    expect(page.locator("#pg-base")).not_to_have_text("…")
    # Each answer says how many tokens went in and came out, and how long it took.
    for which in ("tuned", "base"):
        expect(page.locator(f"#pg-{which}-stats")).to_have_text(
            re.compile(r"^\d+ prompt tokens → ([1-9]|1[0-2]) new tokens · \d+\.\d\d s"))

    # Greedy: temperature and top-p off, and the same answer every time.
    page.check("#pg-greedy")
    expect(page.locator("input[name=temperature]")).to_be_disabled()
    answers = []
    for _ in range(2):
        page.click("#pg-generate")
        expect(page.locator("#pg-status")).to_have_text("done", timeout=120_000)
        answers.append(page.locator("#pg-tuned").inner_text())
    assert answers[0] == answers[1]
    screenshot("playground")
