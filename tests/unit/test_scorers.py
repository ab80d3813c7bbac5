"""Evaluation scorers: choice per strategy, SFT/DPO/GRPO scores, pass@k, results summary."""

from __future__ import annotations

import math

import pytest

from app.domain import evaluation_rows as row_tools
from app.domain import scorers as S
from worker.evaluation.results import summarise


def names(scorers):
    return [s.name for s in scorers]


def test_default_scorers_per_strategy():
    assert names(S.resolve_scorers("sft", None)) == ["exact_match", "normalized_match", "loss"]
    assert names(S.resolve_scorers("dpo", None)) == ["preference_accuracy", "margin"]
    grpo = S.resolve_scorers("grpo", None, [{"name": "exact_answer", "weight": 2.0, "params":
                                             {"column": "answer"}},
                                            {"name": "soft_format", "weight": 0.5}])
    assert names(grpo) == ["exact_answer", "soft_format", "reward_total"]
    assert [s.weight for s in grpo[:2]] == [2.0, 0.5]


def test_sft_may_add_a_builtin_reward_function():
    chosen = S.resolve_scorers("sft", ["exact_match", {"name": "length_target",
                                                       "params": {"min_chars": 1, "max_chars": 5}}])
    assert names(chosen) == ["exact_match", "length_target"]
    assert chosen[1].kind == "reward" and chosen[1].params["max_chars"] == 5


@pytest.mark.parametrize("strategy, requested, message", [
    ("sft", ["nope"], "unknown scorer 'nope'"),
    ("sft", ["margin"], "applies to dpo runs only"),
    ("dpo", ["exact_answer"], "compare log-probs"),
    ("sft", [{"name": "length_target", "params": {"bogus": 1}}], "unknown parameter 'bogus'"),
])
def test_refused_scorers_say_why(strategy, requested, message):
    with pytest.raises(S.ScorerError, match=message):
        S.resolve_scorers(strategy, requested)


def test_exact_and_normalised_match():
    assert S.exact_match(" Word 1: aaa. ", "Word 1: aaa.") == 1.0
    assert S.exact_match("word 1: aaa", "Word 1: aaa.") == 0.0
    assert S.normalized_match("word 1   AAA", "Word 1: aaa.") == 1.0
    assert S.normalized_match("word 2 aaa", "Word 1: aaa.") == 0.0


def test_token_loss_and_perplexity():
    assert S.token_loss(-6.0, 3) == 2.0
    assert math.isnan(S.token_loss(0.0, 0))
    assert S.perplexity([1.0, 3.0, math.nan]) == pytest.approx(math.exp(2.0))
    assert S.perplexity([]) is None


def test_preference_scores():
    assert S.preference_scores(-3.0, -5.0) == {"preference_accuracy": 1.0, "margin": 2.0}
    assert S.preference_scores(-5.0, -3.0) == {"preference_accuracy": 0.0, "margin": -2.0}
    assert S.preference_scores(-4.0, -4.0)["preference_accuracy"] == 0.0


def test_reward_scores_and_weighted_total():
    scorers = S.resolve_scorers("grpo", None, [
        {"name": "exact_answer", "weight": 2.0, "params": {"column": "answer"}},
        {"name": "regex_match", "weight": 1.0, "params": {"pattern": "^The"}}])
    scores = S.reward_scores(scorers, ["The answer is 4", "It is 5"],
                             [{"prompt": "2+2?", "answer": "4"}, {"prompt": "2+2?", "answer": "4"}])
    assert scores[0] == {"exact_answer": 1.0, "regex_match": 1.0, "reward_total": 3.0}
    assert scores[1] == {"exact_answer": 0.0, "regex_match": 0.0, "reward_total": 0.0}


def test_pass_at_k():
    assert S.pass_at_k(4, 0, 4) == 0.0
    assert S.pass_at_k(4, 1, 4) == 1.0
    assert S.pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert S.pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)
    with pytest.raises(ValueError):
        S.pass_at_k(2, 1, 3)
    summary = S.sample_summary([1.0, 0.0, 0.5], k=3, pass_threshold=1.0)
    assert summary == {"sample_mean": 0.5, "pass@3": 1.0}


def test_compare_example():
    assert S.compare_example({"m": 1.0}, {"m": 0.0}, score="m", higher_is_better=True) == "worse"
    assert S.compare_example({"loss": 2.0}, {"loss": 1.0}, score="loss",
                             higher_is_better=False) == "better"
    assert S.compare_example({"m": 1.0}, {"m": 1.0}, score="m", higher_is_better=True) == "same"
    assert S.compare_example({}, {"m": 1.0}, score="m", higher_is_better=True) == "same"


def test_summarise_pairs_scores_and_names_the_primary_one():
    scorers = S.resolve_scorers("sft", None)
    base = [{"exact_match": 0.0, "normalized_match": 0.0, "loss": 3.0}] * 20
    tuned = [{"exact_match": 1.0, "normalized_match": 1.0, "loss": 1.0}] * 20
    results = summarise(scorers, base, tuned, strategy="sft")
    assert results["primary"] == "loss" and results["examples"] == 20
    by_name = {s["name"]: s for s in results["scores"]}
    assert by_name["exact_match"]["verdict"] == "better"
    assert by_name["loss"]["verdict"] == "better" and by_name["loss"]["diff"] == -2.0
    assert by_name["loss"]["tuned_perplexity"] == pytest.approx(math.e)
    base_only = summarise(scorers, base, None, strategy="sft")
    assert base_only["scores"][0]["base_mean"] == 0.0 and base_only["scores"][0]["verdict"] is None


def test_example_parts_and_display_text():
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    parts = row_tools.example_parts({"messages": messages}, dataset_format="messages")
    assert parts["prompt"] == messages[:1] and row_tools.text_of(parts["reference"]) == "hello"
    assert row_tools.text_of(parts["prompt"]) == "hi"  # a lone message reads as its words
    assert row_tools.text_of(messages) == "user: hi\nassistant: hello"
    pref = row_tools.example_parts({"prompt": "q", "chosen": "a", "rejected": "b"},
                                   dataset_format="preference")
    assert (pref["prompt"], pref["chosen"], pref["rejected"]) == ("q", "a", "b")
    with pytest.raises(ValueError, match="plain text"):
        row_tools.example_parts({"text": "x"}, dataset_format="text")


def test_held_out_rows_are_the_training_split():
    from app.domain.training_rows import split_rows

    rows = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(20)]
    hp = {"eval_split": 0.25, "seed": 7}
    held = row_tools.held_out_rows(rows, strategy="sft", dataset_format="prompt_completion",
                                   hyperparameters=hp, tokenizer=None)
    train, expected = split_rows(rows, eval_split=0.25, seed=7)
    assert held == expected and len(held) == 5
    assert not {r["prompt"] for r in held} & {r["prompt"] for r in train}
    with pytest.raises(ValueError, match="no eval split"):
        row_tools.held_out_rows(rows, strategy="sft", dataset_format="prompt_completion",
                                hyperparameters={"eval_split": 0, "seed": 7}, tokenizer=None)
