"""Which metric ranks a checkpoint: GRPO by eval reward, else a moving average of train reward."""

from __future__ import annotations

import pytest

from app.domain.checkpoints import checkpoint_metric


def test_grpo_prefers_the_eval_reward_trl_logs():
    # TRL 1.16 GRPOTrainer.log prefixes every metric logged during evaluation with "eval_".
    series = {"reward": [(1, 0.1), (2, 0.9)], "eval_reward": [(2, 0.4), (4, 0.6)]}
    assert checkpoint_metric("grpo", series, 2) == ("eval_reward", 0.4, "higher")
    assert checkpoint_metric("grpo", series, 4) == ("eval_reward", 0.6, "higher")


def test_grpo_without_eval_uses_the_moving_average_of_train_reward():
    series = {"reward": [(s, float(s)) for s in range(1, 9)], "loss": [(1, 5.0)]}
    name, value, mode = checkpoint_metric("grpo", series, 8)
    assert name == "reward (moving average of 5)" and mode == "higher"
    assert value == pytest.approx((4 + 5 + 6 + 7 + 8) / 5)
    assert checkpoint_metric("grpo", series, 2)[1] == pytest.approx(1.5)


def test_grpo_skips_nan_rewards_and_has_no_metric_before_any():
    series = {"reward": [(1, float("nan")), (2, 1.0)]}
    assert checkpoint_metric("grpo", series, 2)[1] == 1.0
    assert checkpoint_metric("grpo", series, 1) == (None, None, "higher")


def test_a_checkpoint_between_evaluations_is_unranked_not_scored_by_an_older_step():
    # Cancelled at step 7, last evaluated at step 4 (issue 17, item 4).
    series = {"loss": [(s, 1.0 / s) for s in range(1, 8)], "eval_loss": [(4, 0.8)]}
    assert checkpoint_metric("sft", series, 4, held_out=True) == ("eval_loss", 0.8, "lower")
    assert checkpoint_metric("sft", series, 7, held_out=True) == (None, None, "lower")
    # Without an eval split the train average still ranks every checkpoint.
    assert checkpoint_metric("sft", {"loss": series["loss"]}, 7)[0].startswith("loss")
