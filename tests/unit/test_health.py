import ast
import dataclasses
import inspect
import random

import pytest

from app.domain.health import DEFAULT_THRESHOLDS, HealthThresholds, check_health

NAN = float("nan")
INF = float("inf")
STEPS = list(range(1, 41))


def healthy_run() -> dict[str, list[tuple[int, float]]]:
    """A 40-step GRPO run where everything looks fine."""
    rng = random.Random(0)

    def noise(scale: float) -> float:
        return rng.uniform(-scale, scale)

    return {
        "loss": [(s, 2.0 - 0.02 * s + noise(0.05)) for s in STEPS],
        "eval_loss": [(10, 1.9), (20, 1.7), (30, 1.6), (40, 1.55)],
        "grad_norm": [(s, 1.0 + noise(0.3)) for s in STEPS],
        "learning_rate": [(s, 5e-6) for s in STEPS],
        "reward": [(s, 0.2 + 0.01 * s) for s in STEPS],
        "reward_std": [(s, 0.3 + noise(0.05)) for s in STEPS],
        "frac_reward_zero_std": [(s, 0.25 + noise(0.1)) for s in STEPS],
        "entropy": [(s, 0.6 + noise(0.1)) for s in STEPS],
        "kl": [(s, 0.01 * s) for s in STEPS],
        "completions/clipped_ratio": [(s, 0.05) for s in STEPS],
        "completions/mean_length": [(s, 90.0) for s in STEPS],
        "rewards/exact_answer/mean": [(s, 0.2 + 0.01 * s) for s in STEPS],
    }


def set_last(name: str, values: list[float]):
    """Patch: overwrite the last len(values) values of a series."""

    def patch(m):
        series = m[name]
        start = len(series) - len(values)
        m[name] = series[:start] + [
            (s, v) for (s, _), v in zip(series[start:], values, strict=True)
        ]

    return patch


def set_at(name: str, step: int, value: float):
    def patch(m):
        m[name] = [(s, value if s == step else v) for s, v in m[name]]

    return patch


def replace(name: str, series, drop: tuple[str, ...] = ()):
    def patch(m):
        for key in drop:
            m.pop(key, None)
        m[name] = series

    return patch


CASES = [
    # (id, patch, expected codes)
    ("healthy", lambda m: None, set()),
    (
        "zero_std_most_of_window",
        set_last("frac_reward_zero_std", [0.9] * 6 + [0.1] * 4),
        {"no_reward_variance"},
    ),
    (
        "zero_std_only_half_of_window",
        set_last("frac_reward_zero_std", [0.9] * 5 + [0.1] * 5),
        set(),
    ),
    ("zero_std_at_threshold", set_last("frac_reward_zero_std", [0.8] * 10), set()),
    ("zero_std_too_few_points", replace("frac_reward_zero_std", [(1, 1.0), (2, 1.0)]), set()),
    (
        "reward_std_zero_without_frac",
        replace("reward_std", [(s, 0.0) for s in STEPS], drop=("frac_reward_zero_std",)),
        {"no_reward_variance"},
    ),
    ("entropy_collapsed", set_last("entropy", [0.005, 0.004, 0.003]), {"entropy_collapse"}),
    ("entropy_just_above", set_last("entropy", [0.011, 0.011, 0.011]), set()),
    ("entropy_one_blip", set_last("entropy", [0.5, 0.5, 0.001]), set()),
    ("kl_high", set_last("kl", [2.5, 2.6, 2.7]), {"kl_divergence"}),
    ("kl_just_below", set_last("kl", [1.9, 1.95, 2.0]), set()),
    (
        "clipped_new_name",
        set_last("completions/clipped_ratio", [0.4] * 3),
        {"truncated_completions"},
    ),
    (
        "clipped_old_name",
        replace("clipped_ratio", [(s, 0.5) for s in STEPS], drop=("completions/clipped_ratio",)),
        {"truncated_completions"},
    ),
    ("clipped_at_threshold", set_last("completions/clipped_ratio", [0.3] * 3), set()),
    ("loss_nan", set_at("loss", 20, NAN), {"nan_loss"}),
    ("loss_inf", set_at("loss", 33, INF), {"nan_loss"}),
    ("eval_loss_nan", set_at("eval_loss", 30, NAN), {"nan_loss"}),
    ("grad_norm_nan_is_not_nan_loss", set_at("grad_norm", 20, NAN), set()),
    ("loss_10x_early_minimum", set_last("loss", [25.0, 26.0, 27.0]), {"exploding_loss"}),
    ("loss_9x_early_minimum", set_last("loss", [14.0, 14.0, 14.0]), set()),
    ("loss_single_spike", set_last("loss", [1.3, 30.0, 1.3]), set()),
    (
        "near_zero_loss_small_rise",
        replace("loss", [(s, 0.001) for s in STEPS[:-3]] + [(s, 0.05) for s in STEPS[-3:]]),
        set(),
    ),
    (
        "near_zero_loss_above_absolute",
        replace("loss", [(s, 0.001) for s in STEPS[:-3]] + [(s, 150.0) for s in STEPS[-3:]]),
        {"exploding_loss"},
    ),
    ("grad_norm_spike", set_at("grad_norm", 30, 15.0), {"grad_norm_spike"}),
    ("grad_norm_9x_median", set_at("grad_norm", 30, 9.0), set()),
    ("grad_norm_spike_before_history", set_at("grad_norm", 2, 50.0), set()),
    (
        "eval_rising_train_falling",
        replace("eval_loss", [(10, 1.9), (20, 1.5), (30, 1.6), (40, 1.7)]),
        {"overfitting"},
    ),
    (
        "eval_rising_train_rising",
        lambda m: (
            replace("eval_loss", [(10, 1.9), (20, 1.5), (30, 1.6), (40, 1.7)])(m),
            replace("loss", [(s, 1.0 + 0.01 * s) for s in STEPS])(m),
        ),
        set(),
    ),
    (
        "eval_rising_only_twice",
        replace("eval_loss", [(10, 1.9), (20, 2.0), (30, 1.6), (40, 1.7)]),
        set(),
    ),
]


@pytest.mark.parametrize(("patch", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(patch, expected):
    metrics = healthy_run()
    patch(metrics)
    flags = check_health(metrics)
    assert {f.code for f in flags} == expected
    for flag in flags:
        assert flag.severity in {"warning", "error"}
        assert flag.message and "\n" not in flag.message
        assert len(flag.explanation) > 40


def test_flag_steps_point_at_the_problem():
    metrics = healthy_run()
    set_at("loss", 20, NAN)(metrics)
    set_at("grad_norm", 30, 15.0)(metrics)
    replace("eval_loss", [(10, 1.9), (20, 1.5), (30, 1.6), (40, 1.7)])(metrics)
    steps = {f.code: f.step for f in check_health(metrics)}
    assert steps == {"nan_loss": 20, "grad_norm_spike": 30, "overfitting": 40}


def test_errors_come_first():
    metrics = healthy_run()
    set_last("kl", [3.0] * 3)(metrics)
    set_at("loss", 40, NAN)(metrics)
    flags = check_health(metrics)
    assert [(f.code, f.severity) for f in flags] == [
        ("nan_loss", "error"),
        ("kl_divergence", "warning"),
    ]


def test_points_with_wall_time_are_accepted():
    metrics = healthy_run()
    set_at("loss", 20, NAN)(metrics)
    with_time = {
        name: [(s, v, "2026-01-01T00:00:00Z") for s, v in pts] for name, pts in metrics.items()
    }
    assert [f.code for f in check_health(with_time)] == ["nan_loss"]


def test_empty_and_sparse_metrics_raise_nothing():
    assert check_health({}) == []
    assert check_health({"loss": [], "grad_norm": [(1, 1.0)], "eval_loss": [(5, 1.0)]}) == []


def test_custom_thresholds_change_the_verdict():
    metrics = healthy_run()
    set_last("kl", [2.5] * 3)(metrics)
    assert check_health(metrics, HealthThresholds(max_kl=5.0)) == []
    assert [f.code for f in check_health(metrics, DEFAULT_THRESHOLDS)] == ["kl_divergence"]


def test_thresholds_are_frozen_and_documented():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_THRESHOLDS.max_kl = 10.0  # type: ignore[misc]
    assert DEFAULT_THRESHOLDS.zero_std_fraction == 0.8
    assert DEFAULT_THRESHOLDS.min_entropy == 0.01
    assert DEFAULT_THRESHOLDS.max_kl == 2.0
    assert DEFAULT_THRESHOLDS.max_clipped_ratio == 0.3


def test_every_threshold_has_a_docstring():
    body = ast.parse(inspect.getsource(HealthThresholds)).body[0].body
    for node, following in zip(body, body[1:] + [None], strict=True):
        if isinstance(node, ast.AnnAssign):
            assert isinstance(following, ast.Expr), f"{node.target.id} has no docstring"
            assert isinstance(following.value.value, str)
    assert sum(isinstance(n, ast.AnnAssign) for n in body) == len(
        dataclasses.fields(HealthThresholds)
    )


@pytest.mark.parametrize(("spike", "expected"), [(12.0, [("grad_norm_spike", 150)]), (8.0, [])])
def test_grad_norm_spike_in_a_long_run_uses_the_trailing_median(spike, expected):
    # Early steps have large norms; the trailing window (not the whole history) sets the median.
    norms = [(s, 40.0 if s <= 100 else 1.0) for s in range(1, 201)]
    norms[149] = (150, spike)
    flags = check_health({"grad_norm": norms})
    assert [(f.code, f.step) for f in flags] == expected
