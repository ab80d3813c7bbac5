"""Health signals for a training run, read from the metrics TRL logs.

Each rule looks at a few named series (``loss``, ``grad_norm``, ``frac_reward_zero_std``, ...)
and returns at most one flag. All thresholds live in ``HealthThresholds``. Pure functions: the
run page and compare view call them on stored curves, the worker on the curves as they arrive
(worker/health_watch.py, which notifies ``run.health_warning``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Series = list[tuple[int, float]]
# Extra fields after (step, value), such as read_series' wall_time, are ignored.
Metrics = dict[str, list[tuple]]
# The series the rules read: the only ones worth loading (or keeping) to check a run.
METRICS = ("loss", "eval_loss", "grad_norm", "frac_reward_zero_std", "reward_std", "entropy",
           "kl", "completions/clipped_ratio", "clipped_ratio")


@dataclass(frozen=True)
class HealthFlag:
    code: str
    severity: Literal["warning", "error"]
    message: str
    """One line: what was seen, with numbers."""
    explanation: str
    """What it means for the run and what to try."""
    step: int | None
    """The step where it was seen (the last step of the window for windowed rules)."""


@dataclass(frozen=True)
class HealthThresholds:
    """Every number the health rules use. Defaults are rules of thumb for small LoRA runs."""

    recent_window: int = 10
    """Logged values the windowed rules look back over (no_reward_variance)."""
    min_window_points: int = 3
    """Fewer logged values than this and the windowed rules stay silent (too early to say)."""
    level_points: int = 3
    """Level rules (entropy, kl, clipped ratio, recent loss) use the median of this many last
    values, so one noisy log line neither raises nor hides a flag."""
    zero_std_fraction: float = 0.8
    """frac_reward_zero_std above this on a step means that step taught GRPO almost nothing."""
    zero_std_share: float = 0.5
    """no_reward_variance fires when more than this share of the window is above the fraction."""
    min_entropy: float = 0.01
    """Mean token entropy (nats) below this: the model samples one token almost surely."""
    max_kl: float = 2.0
    """KL to the reference model above this: the policy has drifted far."""
    max_clipped_ratio: float = 0.3
    """Share of completions cut at max_completion_length above this."""
    early_points: int = 5
    """The loss baseline is the minimum of this many first finite loss values."""
    loss_explosion_factor: float = 10.0
    """Recent loss above this many times the early minimum is an explosion."""
    max_loss: float = 100.0
    """Recent loss above this is an explosion whatever the baseline."""
    loss_baseline_floor: float = 0.05
    """The relative rule needs an early minimum at least this large: GRPO's loss hovers
    around zero (and can be negative), where ratios mean nothing."""
    grad_spike_factor: float = 10.0
    """A grad_norm above this many times the running median is a spike."""
    grad_median_window: int = 50
    """The running median covers up to this many preceding grad_norm values."""
    grad_min_history: int = 5
    """No spike is judged before this many grad_norm values exist."""
    overfit_evals: int = 3
    """overfitting needs eval_loss rising over this many consecutive evaluations."""


DEFAULT_THRESHOLDS = HealthThresholds()


def check_health(
    metrics: Metrics, thresholds: HealthThresholds = DEFAULT_THRESHOLDS
) -> list[HealthFlag]:
    """Flags for a run's metrics, errors first; an empty list for a healthy (or empty) run."""
    flags = [flag for rule in RULES if (flag := rule(metrics, thresholds)) is not None]
    return sorted(flags, key=lambda flag: flag.severity != "error")


def _finite(metrics: Metrics, *names: str) -> Series:
    """The first of ``names`` that was logged, without NaN/inf values."""
    for name in names:
        if metrics.get(name):
            return [(step, v) for step, v, *_ in metrics[name] if math.isfinite(v)]
    return []


def _level(series: Series, t: HealthThresholds) -> float | None:
    if not series:
        return None
    return float(np.median([v for _, v in series[-t.level_points :]]))


def no_reward_variance(metrics: Metrics, t: HealthThresholds) -> HealthFlag | None:
    window = _finite(metrics, "frac_reward_zero_std")[-t.recent_window :]
    hits = sum(v > t.zero_std_fraction for _, v in window)
    if not window:
        # Older logs lack frac_reward_zero_std; a zero batch-wide std implies it is 1.
        window = _finite(metrics, "reward_std")[-t.recent_window :]
        hits = sum(v <= 1e-9 for _, v in window)
    if len(window) < t.min_window_points or hits <= t.zero_std_share * len(window):
        return None
    return HealthFlag(
        code="no_reward_variance",
        severity="warning",
        message=f"GRPO learns nothing: on {hits} of the last {len(window)} logged steps, all "
        "generations of most prompts got the same reward",
        explanation="GRPO learns from reward differences between the generations of one "
        "prompt; identical rewards give zero advantage, so those prompts teach nothing. Try "
        "rewards with partial credit (numeric_match, soft_format) next to exact_answer, prompts "
        "that are neither all solved nor all failed, more num_generations or a higher "
        "temperature.",
        step=window[-1][0],
    )


def entropy_collapse(metrics: Metrics, t: HealthThresholds) -> HealthFlag | None:
    series = _finite(metrics, "entropy")
    level = _level(series, t)
    if level is None or level >= t.min_entropy:
        return None
    return HealthFlag(
        code="entropy_collapse",
        severity="warning",
        message=f"Token entropy fell to {level:.4g} (below {t.min_entropy})",
        explanation="The model puts almost all probability on one token, so its generations "
        "look alike and it stops exploring (GRPO then sees no reward variance; SFT is likely "
        "memorising). Try a lower learning_rate, a higher temperature, a KL penalty (beta) or "
        "fewer steps.",
        step=series[-1][0],
    )


def kl_divergence(metrics: Metrics, t: HealthThresholds) -> HealthFlag | None:
    series = _finite(metrics, "kl")
    level = _level(series, t)
    if level is None or level <= t.max_kl:
        return None
    return HealthFlag(
        code="kl_divergence",
        severity="warning",
        message=f"KL to the reference model is {level:.3g} (above {t.max_kl})",
        explanation="The policy has drifted far from the base model; quality outside the "
        "rewarded behaviour may degrade, or the model may be gaming a reward. Read a few "
        "completions, then try a larger beta, a lower learning_rate or fewer steps.",
        step=series[-1][0],
    )


def truncated_completions(metrics: Metrics, t: HealthThresholds) -> HealthFlag | None:
    series = _finite(metrics, "completions/clipped_ratio", "clipped_ratio")
    level = _level(series, t)
    if level is None or level <= t.max_clipped_ratio:
        return None
    return HealthFlag(
        code="truncated_completions",
        severity="warning",
        message=f"{level:.0%} of completions hit max_completion_length",
        explanation="Cut-off completions usually lose their final answer, so rewards "
        "undercount and the model never learns to finish. Raise max_completion_length, ask "
        "for shorter reasoning in the prompt, or add a length_target reward.",
        step=series[-1][0],
    )


def nan_loss(metrics: Metrics, t: HealthThresholds) -> HealthFlag | None:
    bad = [
        (step, name)
        for name in ("loss", "eval_loss")
        for step, v, *_ in metrics.get(name, [])
        if not math.isfinite(v)
    ]
    if not bad:
        return None
    step, name = min(bad)
    return HealthFlag(
        code="nan_loss",
        severity="error",
        message=f"{name} is NaN/inf from step {step}",
        explanation="Training diverged numerically; the weights after that step are likely "
        "broken. Restart from an earlier checkpoint with a lower learning_rate, gradient "
        "clipping on (max_grad_norm, 1.0 by default) and bf16 rather than fp16, and check the "
        "data for empty or huge examples.",
        step=step,
    )


def exploding_loss(metrics: Metrics, t: HealthThresholds) -> HealthFlag | None:
    series = _finite(metrics, "loss")
    if len(series) < t.early_points + t.level_points:
        return None
    baseline = min(v for _, v in series[: t.early_points])
    recent = float(np.median([v for _, v in series[-t.level_points :]]))
    relative = baseline >= t.loss_baseline_floor and recent > t.loss_explosion_factor * baseline
    if not (relative or recent > t.max_loss):
        return None
    return HealthFlag(
        code="exploding_loss",
        severity="error",
        message=f"Loss rose to {recent:.4g} (early minimum {baseline:.4g})",
        explanation="The loss is far above where it started: updates are too large and "
        "training is diverging. Restart with a lower learning_rate, more warmup, and gradient "
        "clipping on (max_grad_norm, 1.0 by default).",
        step=series[-1][0],
    )


def grad_norm_spike(metrics: Metrics, t: HealthThresholds) -> HealthFlag | None:
    series = _finite(metrics, "grad_norm")
    values = np.array([v for _, v in series])
    w, n, h = t.grad_median_window, len(values), max(1, t.grad_min_history)
    if n <= h:
        return None
    # medians[i - 1] = median of the up-to-w values before value i; numpy does the long tail.
    head = [np.median(values[:i]) for i in range(1, min(w, n))]
    tail = np.median(sliding_window_view(values[:-1], w), axis=1) if n > w else []
    medians = np.concatenate([head, tail])[h - 1 :]
    later = values[h:]
    spikes = np.flatnonzero((medians > 0) & (later > t.grad_spike_factor * medians))
    if not len(spikes):
        return None
    last = int(spikes[-1])
    step, value = series[last + h]
    return HealthFlag(
        code="grad_norm_spike",
        severity="warning",
        message=f"grad_norm {value:.3g} at step {step} is {value / medians[last]:.0f}x the "
        f"running median ({len(spikes)} spike{'s' if len(spikes) > 1 else ''} in all)",
        explanation="One batch pushed the weights much harder than usual: often an odd "
        "example (empty, very long, mislabelled) or a learning rate on the edge. An isolated "
        "spike the loss survives is harmless; repeated ones come before divergence. Keep "
        "gradient clipping on (max_grad_norm; the logged norm is before clipping), and try a "
        "lower learning_rate or more warmup.",
        step=step,
    )


def overfitting(metrics: Metrics, t: HealthThresholds) -> HealthFlag | None:
    evals = _finite(metrics, "eval_loss")[-t.overfit_evals :]
    if len(evals) < t.overfit_evals or t.overfit_evals < 2:
        return None
    if not all(a[1] < b[1] for a, b in zip(evals, evals[1:], strict=False)):
        return None
    first, last = evals[0][0], evals[-1][0]
    train = [(s, v) for s, v in _finite(metrics, "loss") if first <= s <= last]
    if len({s for s, _ in train}) < 2:
        return None
    slope = np.polyfit([s for s, _ in train], [v for _, v in train], 1)[0]
    if slope >= 0:
        return None
    return HealthFlag(
        code="overfitting",
        severity="warning",
        message=f"eval_loss rose over the last {len(evals)} evaluations "
        f"({evals[0][1]:.4g} -> {evals[-1][1]:.4g}) while the training loss kept falling",
        explanation="The model fits the training examples better but new ones worse: it is "
        f"memorising. The checkpoint near step {first} is probably the best. Try fewer "
        "steps, a lower learning_rate, a smaller lora_r or lora_dropout, or more varied data.",
        step=last,
    )


RULES: list[Callable[[Metrics, HealthThresholds], HealthFlag | None]] = [
    nan_loss,
    exploding_loss,
    no_reward_variance,
    entropy_collapse,
    kl_divergence,
    truncated_completions,
    grad_norm_spike,
    overfitting,
]
