"""Paired bootstrap over examples: how sure are we that tuned − base is not zero?

Pure functions, no I/O. Resampling examples (not outputs) keeps each example's base and tuned
scores together, so the interval reflects the paired difference.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    mean: float  # observed mean of tuned − base
    low: float
    high: float
    confidence: float

    @property
    def includes_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def paired_bootstrap(
    base: list[float], tuned: list[float], *, iterations: int = 2000, confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of mean(tuned − base); raises ValueError on bad input."""
    if len(base) != len(tuned):
        raise ValueError(f"{len(base)} base scores but {len(tuned)} tuned scores: pair them")
    if not base:
        raise ValueError("no examples to compare")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    diffs = [t - b for b, t in zip(base, tuned, strict=True)]
    n = len(diffs)
    observed = sum(diffs) / n
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(iterations))
    tail = (1 - confidence) / 2
    low = means[max(0, math.floor(tail * iterations))]
    high = means[min(iterations - 1, math.ceil((1 - tail) * iterations) - 1)]
    return Interval(mean=observed, low=low, high=high, confidence=confidence)


def verdict(interval: Interval, *, higher_is_better: bool) -> str:
    """"better", "worse" or "no difference" for the tuned model."""
    if interval.includes_zero:
        return "no difference"
    improved = interval.mean > 0 if higher_is_better else interval.mean < 0
    return "better" if improved else "worse"


def summary(interval: Interval, *, higher_is_better: bool, digits: int = 3) -> str:
    """One line for people: "tuned is better by 0.25 ± 0.1" or "no measurable difference"."""
    result = verdict(interval, higher_is_better=higher_is_better)
    if result == "no difference":
        return "no measurable difference"
    half_width = (interval.high - interval.low) / 2
    size = abs(interval.mean)
    return f"tuned is {result} by {size:.{digits}g} ± {half_width:.{digits}g}"
