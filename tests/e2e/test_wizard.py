"""The strategy wizard in a real browser: walk the tree to each strategy, use Back, and land on a
new-run form pre-filled with the strategy, its preset, the dataset and (GRPO) the rewards."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def dataset(live_server):
    rows = "\n".join(json.dumps({"prompt": f"What is {i} + 1?", "completion": f" {i + 1}"})
                     for i in range(24))
    with live_server.client() as client:
        response = client.post("/api/datasets", data={"name": "Wizard sums"},
                               files={"file": ("sums.jsonl", rows.encode())})
        assert response.status_code == 201, response.text
        return response.json()


def answer(page, question_id: str, value: str) -> None:
    expect(page.locator(f'[data-question="{question_id}"]')).to_be_visible()
    page.click(f"#answer-{value}")


def expect_result(page, strategy: str, leaf: str) -> None:
    heading = page.locator("#recommendation")
    expect(heading).to_have_attribute("data-leaf", leaf)
    expect(heading).to_have_attribute("data-strategy", strategy)
    # All five leaves are drawn; only the recommended one is filled in.
    expect(page.locator("#flowchart .fc-leaf")).to_have_count(5)
    expect(page.locator("#flowchart .fc-node.chosen")).to_have_attribute("data-node", leaf)


def launch_params(page) -> dict[str, str]:
    href = page.locator("#launch-with-this").get_attribute("href")
    return {key: values[0] for key, values in parse_qs(urlsplit(href).query).items()}


def test_sft_path_with_back_and_prefilled_form(live_server, dataset, page):
    page.goto(f"{live_server.url}/runs")
    page.get_by_role("link", name="Wizard", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/wizard")
    answer(page, "labelled", "yes")
    expect(page.locator("#question-help")).to_contain_text("rule of thumb")
    expect(page.locator("#question-help")).to_contain_text("TUNEDECK_LARGE_DATASET_THRESHOLD")
    expect(page.locator("#threshold-note")).to_contain_text("1,000 or more")
    page.fill("#num-examples", "5000")
    page.click("#count-submit")
    expect_result(page, "sft", "sft_large")
    expect(page.locator('#flowchart [data-edge="num_examples-large"]')).to_have_class(
        re.compile(r"\btaken\b"))

    # Back once: the count question again; the earlier answer stays, the count is undone.
    page.click("#wizard-back")
    expect(page).to_have_url(f"{live_server.url}/wizard?labelled=yes")
    expect(page.locator('[data-question="num_examples"]')).to_be_visible()
    expect(page.locator("#answered li")).to_have_count(1)
    expect(page.locator("#num-examples")).to_have_value("")
    page.fill("#num-examples", "50")
    page.click("#count-submit")
    answer(page, "reasoning_helps", "no")
    expect_result(page, "sft", "sft_tiny")
    expect(page).to_have_url(re.compile(r"labelled=yes&num_examples=50&reasoning_helps=no$"))

    page.click("#launch-with-this")
    expect(page).to_have_url(re.compile(r"/runs/new\?strategy=sft&"))
    expect(page.locator('input[name="strategy"][value="sft"]')).to_be_checked()
    expect(page.locator("#hp-sft-max_steps")).to_have_value("30")
    expect(page.locator("#hp-sft-learning_rate")).to_have_value("0.0002")
    expect(page.locator("#hp-sft-eval_split")).to_have_value("0.1")
    expect(page.locator("#hp-sft-max_length")).to_have_value("1024")
    # The browser's own back button returns to the recommendation.
    page.go_back()
    expect_result(page, "sft", "sft_tiny")


def test_grpo_path_counts_an_uploaded_dataset(live_server, dataset, page, screenshot):
    page.goto(f"{live_server.url}/wizard?labelled=yes")
    page.select_option("#wizard-dataset", str(dataset["id"]))
    page.click("#dataset-submit")
    answer(page, "reasoning_helps", "yes")
    expect_result(page, "grpo", "rft_grpo_reasoning")
    expect(page.locator(".page-header .subtitle")).to_contain_text("24 (< 1,000)")
    expect(page.locator("#suggested-rewards tbody tr")).to_have_count(3)
    params = launch_params(page)
    assert params["strategy"] == "grpo" and params["dataset_id"] == str(dataset["id"])
    assert params["rewards"] == "exact_answer:1,numeric_match:0.5,soft_format:0.25"
    assert (params["learning_rate"], params["num_generations"]) == ("5e-06", "4")
    screenshot("wizard")

    page.click("#launch-with-this")
    expect(page.locator("#field-dataset_id")).to_have_value(str(dataset["id"]))
    expect(page.locator('input[name="strategy"][value="grpo"]')).to_be_checked()
    expect(page.locator("#hp-grpo-num_generations")).to_have_value("4")
    expect(page.locator("#hp-grpo-learning_rate")).to_have_value("5e-06")
    expect(page.locator("#hp-grpo-temperature")).to_have_value("0.9")
    rows = page.locator("#reward-rows [data-reward-row]")
    expect(rows).to_have_count(3)
    for index, (name, weight) in enumerate(
            [("exact_answer", "1"), ("numeric_match", "0.5"), ("soft_format", "0.25")]):
        expect(rows.nth(index).locator('[data-reward="name"]')).to_have_value(name)
        expect(rows.nth(index).locator('[data-reward="weight"]')).to_have_value(weight)


def test_grpo_without_labels_offers_completion_only_rewards(live_server, page):
    page.goto(f"{live_server.url}/wizard")
    answer(page, "labelled", "no")
    answer(page, "verifiable", "yes")
    expect_result(page, "grpo", "rft_grpo_unlabelled")
    chips = page.locator("#answer-types .chip")
    expect(chips).to_have_count(2)  # no answer column, so no exact_answer types
    page.click('#answer-types [data-answer-type="free"]')
    expect(page.locator("#suggested-rewards tbody tr")).to_have_count(2)
    assert launch_params(page)["rewards"] == "length_target:1,soft_format:0.25"
    expect(page).to_have_url(re.compile(r"answer_type=free"))


def test_dpo_path_lands_on_the_dpo_form(live_server, dataset, page):
    page.goto(f"{live_server.url}/wizard")
    answer(page, "labelled", "no")
    answer(page, "verifiable", "no")
    expect_result(page, "dpo", "rlhf_dpo")
    expect(page.locator("#data-example")).to_contain_text('"chosen"')
    expect(page.locator("#dpo-demo")).to_contain_text("dpo_demo.jsonl")

    page.click("#launch-with-this")
    expect(page.locator('input[name="strategy"][value="dpo"]')).to_be_checked()
    expect(page.locator('.strategy-section[data-strategy="dpo"]')).to_be_visible()
    expect(page.locator("#hp-dpo-beta")).to_have_value("0.1")
    expect(page.locator("#hp-dpo-loss_type")).to_have_value("sigmoid")
    expect(page.locator("#hp-dpo-learning_rate")).to_have_value("5e-06")
    expect(page.locator("#hp-dpo-gradient_accumulation_steps")).to_have_value("4")

    # The demo button loads the preference pairs and opens the form on them.
    page.go_back()
    page.click("#load-dpo-demo")
    expect(page).to_have_url(re.compile(r"/runs/new\?strategy=dpo&.*dataset_id=\d+"))
    expect(page.locator("#field-dataset_id option:checked")).to_contain_text("DPO demo")
    expect(page.locator("#hp-dpo-beta")).to_have_value("0.1")
