"""The GRPO flow in a real browser against a live server and Celery worker: load the arithmetic
demo dataset, pick GRPO and reward functions on the new-run form, see a configuration error next
to the form, launch, and watch the reward chart and sampled completions fill in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

REWARD_POINTS = ("() => { const d = document.getElementById('chart-reward');"
                 " return d && d.data && d.data.length ? d.data[0].x.length : 0; }")
REWARD_TRACES = ("() => { const d = document.getElementById('chart-reward');"
                 " return d && d.data ? d.data.map(t => t.name) : []; }")


def open_grpo_demo(page, url) -> str:
    page.goto(f"{url}/datasets")
    page.click("#demo-grpo-button")
    page.wait_for_url(re.compile(r"/datasets/\d+$"))
    expect(page.locator("h1")).to_contain_text("GRPO arithmetic demo")
    return page.url.rsplit("/", 1)[1]


def test_link_prefills_grpo_and_reward_rows(live_server, page):
    dataset_id = open_grpo_demo(page, live_server.url)
    page.goto(f"{live_server.url}/runs/new?dataset_id={dataset_id}&strategy=grpo"
              "&rewards=exact_answer:1,soft_format:0.25,made_up:2")
    expect(page.locator('input[name="strategy"][value="grpo"]')).to_be_checked()
    rows = page.locator("#reward-rows [data-reward-row]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator('[data-reward="name"]')).to_have_value("exact_answer")
    expect(rows.nth(0).locator('[data-param="column"]')).to_have_value("answer")
    expect(rows.nth(1).locator('[data-reward="name"]')).to_have_value("soft_format")
    expect(rows.nth(1).locator('[data-reward="weight"]')).to_have_value("0.25")
    expect(page.locator("#reward-load-error")).to_contain_text("made_up")
    # Custom rewards are off on this server: not offered.
    assert rows.nth(0).locator('option[value="custom"]').count() == 0


def test_pick_grpo_launch_and_watch_rewards_and_samples(live_server, page, screenshot):
    dataset_id = open_grpo_demo(page, live_server.url)
    page.goto(f"{live_server.url}/runs/new?dataset_id={dataset_id}")
    page.check('input[name="strategy"][value="grpo"]')
    grpo = page.locator('.strategy-section[data-strategy="grpo"]')
    expect(grpo).to_be_visible()

    rows = grpo.locator("#reward-rows [data-reward-row]")
    expect(rows).to_have_count(1)  # exact_answer by default
    expect(rows.first.locator('[data-reward="description"]')).to_contain_text("dataset column")
    page.click("#add-reward")
    expect(rows).to_have_count(2)
    rows.nth(1).locator('[data-reward="name"]').select_option("length_target")
    expect(rows.nth(1).locator('[data-param="min_chars"]')).to_have_value("100")
    rows.nth(1).locator('[data-reward="name"]').select_option("soft_format")
    expect(rows.nth(1).locator("[data-param]")).to_have_count(0)
    rows.nth(1).locator('[data-reward="weight"]').fill("0.25")

    page.fill("#hp-grpo-reasoning_tag", "think")
    page.click("#reasoning-preset")
    expect(page.locator("#hp-grpo-system_prompt")).to_have_value(re.compile("<think>"))
    expect(page.locator("#hp-grpo-system_prompt")).to_have_value(re.compile("</answer>"))

    page.select_option("#field-base_model", "tiny-random-llama")
    page.fill("#field-name", "arithmetic-grpo")
    section = 'div.strategy-section[data-strategy="grpo"]'
    page.fill(f"{section} input[name=max_steps]", "3")
    page.fill(f"{section} input[name=learning_rate]", "0.001")
    page.fill(f"{section} input[name=max_completion_length]", "16")
    page.fill(f"{section} input[name=sample_every_steps]", "1")
    page.locator("#advanced-grpo summary").click()
    page.fill(f"{section} input[name=per_device_train_batch_size]", "2")
    page.fill(f"{section} input[name=num_generations]", "3")
    screenshot("new-run-grpo")

    # The API refuses the batch: its message next to the form, the field marked.
    page.click("#run-submit")
    expect(page.locator("#run-error")).to_contain_text("not divisible by num_generations = 3")
    expect(grpo.locator('[data-field-name="num_generations"]')).to_have_class(re.compile("invalid"))
    expect(page).to_have_url(re.compile(r"/runs/new"))
    page.fill(f"{section} input[name=num_generations]", "2")
    page.click("#run-submit")

    page.wait_for_url(re.compile(r"/runs/\d+$"))
    expect(page.locator("h1")).to_contain_text("arithmetic-grpo")
    functions = page.locator("#reward-functions tbody tr")
    expect(functions).to_have_count(2)
    expect(functions.nth(1)).to_contain_text("soft_format")
    expect(functions.nth(1).locator("td.num")).to_have_text("0.25")

    page.wait_for_function(f"() => ({REWARD_POINTS})() >= 2", timeout=120_000)
    traces = page.evaluate(REWARD_TRACES)
    assert {"reward", "rewards/exact_answer/mean", "rewards/soft_format/mean"} <= set(traces)
    page.locator("#samples-section > summary").click()  # samples sit collapsed after the curves
    sample = page.locator("#samples .sample").first
    expect(sample).to_be_visible(timeout=60_000)
    expect(sample.locator('[data-reward="exact_answer"]')).to_be_visible()
    expect(sample.locator("[data-field=prompt]")).to_contain_text("?")
    # Model text goes in as text: no element the model could have written.
    assert sample.locator("[data-field=completion] *").count() == 0

    expect(page.locator(".page-header [data-field=status]")).to_have_text("completed",
                                                                        timeout=120_000)
    page.wait_for_function(f"() => ({REWARD_POINTS})() == 3", timeout=30_000)
    expect(page.locator("#chart-reward .chart-empty")).to_be_hidden()
    screenshot("grpo-run-trained")  # the README's grpo-run.png: test_grpo_page.py
