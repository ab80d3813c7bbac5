"""The wizard's pure helpers: query strings, advice, launch links and the flowchart's highlights."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from app.services.wizard.advice import (
    InvalidAnswer,
    advise,
    answered_path,
    answers_query,
    launch_url,
    parse_answers,
)
from app.services.wizard.decision_tree import LEAVES, MissingAnswer, StrategyAnswers
from app.services.wizard.flowchart import flowchart

T = 1000


def test_parse_answers_reads_yes_no_and_counts():
    answers = parse_answers({"labelled": "Yes", "verifiable": "no", "num_examples": "1,500",
                             "reasoning_helps": "maybe"})
    assert answers == StrategyAnswers(labelled=True, verifiable=False, num_examples=1500,
                                      reasoning_helps=None)
    assert parse_answers({"num_examples": "-3"}).num_examples is None
    assert parse_answers({}) == StrategyAnswers(labelled=None)


def test_query_keeps_only_answers_on_the_path():
    answers = StrategyAnswers(labelled=True, verifiable=True, num_examples=5000,
                              reasoning_helps=False)
    path = answered_path(answers, large_threshold=T)
    assert answers_query(answers, path) == {"labelled": "yes", "num_examples": "5000"}
    assert answers_query(answers, path, drop_last=True) == {"labelled": "yes"}
    # A count from a dataset travels as the dataset, and Back drops both together.
    assert answers_query(answers, path, dataset_id=7) == {"labelled": "yes", "dataset_id": "7"}
    assert answers_query(answers, path, dataset_id=7, drop_last=True) == {"labelled": "yes"}
    assert answers_query(answers, [], drop_last=True) == {}


def test_answered_path_stops_at_the_missing_answer():
    path = answered_path(StrategyAnswers(labelled=True, num_examples=3), large_threshold=T)
    assert [s.question_id for s in path] == ["labelled", "num_examples"]
    with pytest.raises(MissingAnswer) as missing:
        advise(StrategyAnswers(labelled=True, num_examples=3), large_threshold=T)
    assert missing.value.field == "reasoning_helps"


def test_launch_url_carries_strategy_preset_dataset_and_rewards():
    url = launch_url("grpo", {"learning_rate": 5e-6, "max_steps": 60, "flag": True}, dataset_id=3,
                     rewards=[{"name": "exact_answer", "weight": 1.0},
                              {"name": "soft_format", "weight": 0.25}])
    parts = urlsplit(url)
    assert parts.path == "/runs/new"
    assert parse_qsl(parts.query) == [
        ("strategy", "grpo"), ("learning_rate", "5e-06"), ("max_steps", "60"), ("flag", "true"),
        ("dataset_id", "3"), ("rewards", "exact_answer:1,soft_format:0.25")]
    assert "rewards=exact_answer:1,soft_format:0.25" in url  # readable, not percent-encoded


def test_tiny_sft_trains_less_and_holds_out_an_eval_split():
    tiny = advise(StrategyAnswers(labelled=True, num_examples=40, reasoning_helps=False),
                  large_threshold=T)
    large = advise(StrategyAnswers(labelled=True, num_examples=4000), large_threshold=T)
    assert tiny["preset"]["max_steps"] < large["preset"]["max_steps"]
    # Every SFT run holds a small eval split out by default (issue 17, item 11).
    assert tiny["preset"]["eval_split"] >= large["preset"]["eval_split"] > 0


def test_format_rewards_come_with_the_prompt_that_asks_for_the_tags():
    advice = advise(StrategyAnswers(labelled=True, verifiable=True, num_examples=500,
                                    reasoning_helps=True), large_threshold=T,
                    answer_type="number")
    assert "soft_format" in {r["name"] for r in advice["suggested_rewards"]}
    prompt = dict(parse_qsl(urlsplit(advice["launch_url"]).query))["system_prompt"]
    assert "<reasoning>" in prompt and "<answer>" in prompt


def test_answer_types_per_grpo_leaf():
    unlabelled = StrategyAnswers(labelled=False, verifiable=True)
    assert advise(unlabelled, large_threshold=T)["answer_type"] == "json"
    with pytest.raises(InvalidAnswer, match="answer column") as invalid:
        advise(unlabelled, large_threshold=T, answer_type="text")
    assert invalid.value.field == "answer_type"
    dpo = advise(StrategyAnswers(labelled=False, verifiable=False), large_threshold=T,
                 answer_type="number")
    assert dpo["answer_type"] is None and dpo["suggested_rewards"] == []


def test_flowchart_draws_every_leaf_and_lights_the_path():
    answers = StrategyAnswers(labelled=True, num_examples=10, reasoning_helps=True)
    chart = flowchart(answers, large_threshold=T)
    leaves = [n for n in chart["nodes"] if n["kind"] == "leaf"]
    assert {n["id"] for n in leaves} == set(LEAVES)
    assert [n["id"] for n in chart["nodes"] if n["chosen"]] == ["rft_grpo_reasoning"]
    taken = {e["id"] for e in chart["edges"] if e["taken"]}
    assert taken == {"labelled-yes", "num_examples-small", "reasoning_helps-yes"}
    assert {n["id"] for n in chart["nodes"] if n["taken"]} == {
        "labelled", "num_examples", "reasoning_helps", "rft_grpo_reasoning"}


def test_flowchart_marks_the_current_question_and_threshold():
    chart = flowchart(StrategyAnswers(labelled=False), large_threshold=250)
    assert chart["current"] == "verifiable" and chart["leaf"] is None
    assert {e["id"] for e in chart["edges"] if e["taken"]} == {"labelled-no"}
    titles = {n["id"]: n["title"] for n in chart["nodes"]}
    assert titles["num_examples"] == "≥ 250 examples?"
    start = flowchart(StrategyAnswers(labelled=None), large_threshold=T)
    assert start["current"] == "labelled" and not any(e["taken"] for e in start["edges"])


def test_flowchart_boxes_do_not_overlap():
    boxes = flowchart(StrategyAnswers(labelled=None), large_threshold=T)["nodes"]
    for i, a in enumerate(boxes):
        assert a["x"] >= 0 and a["x"] + a["width"] <= 960 and a["y"] + a["height"] <= 440
        for b in boxes[i + 1:]:
            apart = (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                     or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])
            assert apart, (a["id"], b["id"])
