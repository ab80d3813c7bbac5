"""The paired bootstrap interval and the verdict people read."""

from __future__ import annotations

import pytest

from worker.evaluation.bootstrap import Interval, paired_bootstrap, summary, verdict


def test_clear_improvement_excludes_zero():
    base = [0.0] * 30
    tuned = [1.0] * 20 + [0.0] * 10
    interval = paired_bootstrap(base, tuned, seed=1)
    assert interval.mean == pytest.approx(2 / 3)
    assert 0 < interval.low < interval.mean < interval.high <= 1
    assert verdict(interval, higher_is_better=True) == "better"
    assert verdict(interval, higher_is_better=False) == "worse"
    assert summary(interval, higher_is_better=True).startswith("tuned is better by 0.667 ± ")


def test_noise_includes_zero():
    base = [1.0, 0.0] * 10
    tuned = [0.0, 1.0] * 10
    interval = paired_bootstrap(base, tuned)
    assert interval.mean == 0 and interval.includes_zero
    assert verdict(interval, higher_is_better=True) == "no difference"
    assert summary(interval, higher_is_better=True) == "no measurable difference"


def test_identical_scores_give_a_zero_width_interval():
    interval = paired_bootstrap([0.5, 0.2, 0.9], [0.5, 0.2, 0.9])
    assert (interval.low, interval.mean, interval.high) == (0, 0, 0)


def test_lower_is_better_scores():
    interval = Interval(mean=-0.4, low=-0.6, high=-0.2, confidence=0.95)
    assert verdict(interval, higher_is_better=False) == "better"
    assert summary(interval, higher_is_better=False) == "tuned is better by 0.4 ± 0.2"


def test_deterministic_for_a_seed_and_wider_at_higher_confidence():
    base, tuned = [0, 1, 0, 1, 1, 0, 0, 1], [1, 1, 0, 1, 1, 1, 0, 1]
    assert paired_bootstrap(base, tuned, seed=3) == paired_bootstrap(base, tuned, seed=3)
    narrow = paired_bootstrap(base, tuned, confidence=0.5)
    wide = paired_bootstrap(base, tuned, confidence=0.99)
    assert wide.high - wide.low > narrow.high - narrow.low


@pytest.mark.parametrize("base, tuned, message", [
    ([1.0], [1.0, 2.0], "pair them"), ([], [], "no examples"),
])
def test_refuses_bad_input(base, tuned, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(base, tuned)
