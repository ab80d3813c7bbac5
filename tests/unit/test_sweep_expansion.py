"""Sweep expansion, pure: grid size and order, random draws inside their ranges (log scale
spread over magnitudes, integers whole), and every bad space a 4xx naming its field."""

from __future__ import annotations

import math

import pytest

from app.domain.sweeps import SweepError, apply_params, check_metric, check_space, expand


def test_grid_is_every_combination_in_order():
    space = {"learning_rate": [1e-4, 3e-4, 1e-3], "lora_r": {"values": [4, 8]}}
    check_space("sft", "grid", space, [])
    trials = expand("sft", "grid", space, budget=None, max_runs=64)
    assert len(trials) == 6
    assert trials[:2] == [{"learning_rate": 1e-4, "lora_r": 4},
                          {"learning_rate": 1e-4, "lora_r": 8}]
    assert {(t["learning_rate"], t["lora_r"]) for t in trials} == {
        (lr, r) for lr in (1e-4, 3e-4, 1e-3) for r in (4, 8)}


def test_grid_over_the_maximum_says_how_many_runs():
    space = {"learning_rate": [1e-5 * i for i in range(1, 11)], "lora_r": [4, 8, 16, 32, 64]}
    with pytest.raises(SweepError, match=r"space: this grid makes 50 runs, more than the "
                                         r"maximum of 20"):
        expand("sft", "grid", space, budget=None, max_runs=20)


def test_random_draws_stay_in_range_and_log_spreads_over_magnitudes():
    space = {"learning_rate": {"low": 1e-6, "high": 1e-2, "scale": "log"},
             "lora_r": {"low": 2, "high": 64, "scale": "log"},
             "lora_dropout": {"low": 0.0, "high": 0.2},
             "num_train_epochs": [1, 2]}
    check_space("sft", "random", space, [])
    trials = expand("sft", "random", space, budget=200, max_runs=500, seed=3)
    assert len(trials) == 200
    rates = [t["learning_rate"] for t in trials]
    assert all(1e-6 <= r <= 1e-2 for r in rates)
    # Log scale: each decade gets a fair share (uniform would put ~90% in the top decade).
    decades = {math.floor(math.log10(r)) for r in rates}
    assert decades == {-6, -5, -4, -3}
    below = sum(r < 1e-4 for r in rates) / len(rates)
    assert 0.3 < below < 0.7
    assert all(isinstance(t["lora_r"], int) and 2 <= t["lora_r"] <= 64 for t in trials)
    assert all(0.0 <= t["lora_dropout"] <= 0.2 for t in trials)
    assert {t["num_train_epochs"] for t in trials} == {1, 2}
    # The same seed draws the same trials.
    assert expand("sft", "random", space, budget=200, max_runs=500, seed=3) == trials


@pytest.mark.parametrize(("kind", "space", "message"), [
    ("grid", {"learning_rate": []}, r"space\.learning_rate: the list of values is empty"),
    ("random", {"learning_rate": {"low": 1e-3, "high": 1e-5}},
     r"space\.learning_rate: the range is inverted"),
    ("random", {"learning_rate": {"low": 1e-4, "high": 1e-4}},
     r"space\.learning_rate: the range from .* is empty"),
    ("random", {"learning_rate": {"low": 0, "high": 1e-3, "scale": "log"}},
     r"space\.learning_rate: a log range must stay above 0"),
    ("random", {"lora_r": {"low": 4.2, "high": 4.8}}, r"space\.lora_r: the range .* is empty"),
    ("grid", {"lerning_rate": [1e-4]}, r"space\.lerning_rate: .*did you mean 'learning_rate'"),
    ("grid", {"beta": [0.1]}, r"space\.beta: SFT runs have no such hyperparameter"),
    ("grid", {"learning_rate": {"low": 1e-5, "high": 1e-3}},
     r"space\.learning_rate: a grid needs a list"),
    ("random", {"learning_rate": {"low": 1e-5, "high": 1e-3, "scale": "cubic"}},
     r"space\.learning_rate\.scale"),
    ("grid", {}, r"space: name at least one field"),
    ("grid", {"reward:exact_answer": [1.0]}, r"space\.reward:exact_answer: .*GRPO runs only"),
])
def test_bad_spaces_name_the_field(kind, space, message):
    with pytest.raises(SweepError, match=message):
        check_space("sft", kind, space, [])


def test_reward_weights_are_searchable_for_grpo():
    with pytest.raises(SweepError, match=r"space\.reward:soft_format: the base configuration "
                                         r"has no reward function 'soft_format'"):
        check_space("grpo", "grid", {"reward:soft_format": [0.1]}, ["exact_answer"])
    check_space("grpo", "grid", {"reward:exact_answer": [0.5, 1.0], "beta": [0.0, 0.04]},
                ["exact_answer"])
    hyperparameters, rewards = apply_params(
        {"max_steps": 2}, [{"name": "exact_answer", "weight": 1.0, "params": {}}],
        {"reward:exact_answer": 0.5, "beta": 0.04})
    assert hyperparameters == {"max_steps": 2, "beta": 0.04}
    assert rewards == [{"name": "exact_answer", "weight": 0.5, "params": {}}]


def test_random_needs_a_budget_within_the_maximum():
    space = {"learning_rate": [1e-4, 2e-4]}
    with pytest.raises(SweepError, match=r"budget: a random sweep needs"):
        expand("sft", "random", space, budget=None, max_runs=10)
    with pytest.raises(SweepError, match=r"budget: 11 runs is more than the maximum of 10"):
        expand("sft", "random", space, budget=11, max_runs=10)


def test_a_metric_the_strategy_never_logs_is_refused():
    with pytest.raises(SweepError, match=r"metric: SFT runs never log 'eval_reward'"):
        check_metric("sft", "eval_reward", "max", eval_splits=[0.1], betas=[0])
    with pytest.raises(SweepError, match=r"metric: eval_loss is logged only with an eval split"):
        check_metric("sft", "eval_loss", "min", eval_splits=[0.1, 0.0], betas=[0])
    with pytest.raises(SweepError, match=r"metric: kl is logged only when"):
        check_metric("grpo", "kl", "min", eval_splits=[0], betas=[0.0])
    check_metric("grpo", "reward", "max", eval_splits=[0], betas=[0])
