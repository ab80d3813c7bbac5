import math
import random

import pytest

from app.services.compare.downsample import downsample, ema

NAN = float("nan")
INF = float("inf")


def noisy_series(n: int, seed: int = 0) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    return [(step, math.sin(step / 50) + rng.random()) for step in range(n)]


def finite_ys(points):
    return [y for _, y in points if math.isfinite(y)]


@pytest.mark.parametrize(
    ("n", "max_points"),
    [(20_000, 1000), (1001, 1000), (5000, 5), (5000, 6), (5000, 7), (3333, 100)],
)
def test_bounded_size_keeps_ends_and_extremes(n, max_points):
    points = noisy_series(n)
    # Spikes at the very places a naive stride would skip.
    points[n // 3] = (n // 3, 50.0)
    points[n // 3 + 1] = (n // 3 + 1, -50.0)
    out = downsample(points, max_points)
    assert len(out) <= max_points
    assert out[0] == points[0] and out[-1] == points[-1]
    assert max(finite_ys(out)) == 50.0
    assert min(finite_ys(out)) == -50.0


def test_extremes_at_first_and_last_point_survive():
    points = noisy_series(3000)
    points[0] = (0, 99.0)
    points[-1] = (2999, -99.0)
    out = downsample(points, 100)
    assert max(finite_ys(out)) == 99.0 and min(finite_ys(out)) == -99.0


def test_output_is_subset_in_input_order_with_monotonic_x():
    points = noisy_series(10_000)
    out = downsample(points, 500)
    xs = [x for x, _ in out]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    assert set(out) <= set(points)


@pytest.mark.parametrize("n", [0, 1, 2, 999, 1000])
def test_short_input_returned_unchanged(n):
    points = noisy_series(n)
    assert downsample(points, 1000) == points


def test_short_input_keeps_nan_as_is():
    out = downsample([(0, 1.0), (1, NAN), (2, INF)], 1000)
    assert out[0] == (0, 1.0) and math.isnan(out[1][1]) and out[2] == (2, INF)


@pytest.mark.parametrize("max_points", [0, 4])
def test_too_small_budget_refused(max_points):
    with pytest.raises(ValueError, match="max_points"):
        downsample(noisy_series(10), max_points)


def test_isolated_nan_and_inf_survive_and_extremes_ignore_them():
    points = noisy_series(20_000)
    points[12_345] = (12_345, NAN)
    points[777] = (777, INF)
    points[15_000] = (15_000, -INF)
    points[4000] = (4000, 7.0)
    out = downsample(points, 1000)
    assert len(out) <= 1000
    steps = {x for x, _ in out}
    assert {12_345, 777, 15_000, 4000} <= steps
    assert max(finite_ys(out)) == 7.0


@pytest.mark.parametrize("max_points", [5, 6, 1000])
@pytest.mark.parametrize("every", [1, 2, 7, 100])
def test_many_non_finite_values_stay_bounded(every, max_points):
    points = [(i, NAN if i % every == 0 else float(i % 13)) for i in range(20_000)]
    out = downsample(points, max_points)
    assert len(out) <= max_points
    assert out[0] == points[0] and out[-1] == points[-1]
    assert any(math.isnan(y) for _, y in out)
    if every > 1:
        assert max(finite_ys(out)) == 12.0 and min(finite_ys(out)) == 0.0


def test_twenty_thousand_points_fit_the_budget_and_keep_the_extremes():
    # Its speed is measured by bench/compare_scale.py, never asserted here.
    points = noisy_series(20_000)
    out = downsample(points, 1000)
    assert len(out) <= 1000
    assert out[0] == points[0] and out[-1] == points[-1]
    ys = [y for _, y in points]
    assert max(y for _, y in out) == max(ys) and min(y for _, y in out) == min(ys)


def test_ema_zero_is_identity():
    values = [3.0, -1.5, 2.25, 10.0, 0.0]
    assert ema(values, 0.0) == values


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9, 0.99])
def test_ema_of_constant_stays_constant(alpha):
    assert ema([2.5] * 200, alpha) == pytest.approx([2.5] * 200, rel=1e-12)


def test_ema_is_debiased_like_tensorboard():
    # TensorBoard with weight 0.5: first point unchanged, then (0.25*1 + 0.5*3) / 0.75.
    out = ema([1.0, 3.0], 0.5)
    assert out == pytest.approx([1.0, (0.25 + 1.5) / 0.75])


def test_ema_smooths_toward_the_mean():
    values = [0.0, 10.0] * 50
    smooth = ema(values, 0.9)
    assert max(smooth[20:]) - min(smooth[20:]) < 2.0
    assert max(values[20:]) - min(values[20:]) == 10.0


def test_ema_passes_non_finite_through_without_poisoning():
    out = ema([1.0, NAN, 1.0, INF, 1.0], 0.8)
    assert math.isnan(out[1]) and out[3] == INF
    assert [out[0], out[2], out[4]] == pytest.approx([1.0, 1.0, 1.0])


def test_ema_empty():
    assert ema([], 0.6) == []
    assert downsample([], 1000) == []


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5])
def test_ema_rejects_weight_outside_range(alpha):
    with pytest.raises(ValueError, match="alpha"):
        ema([1.0], alpha)
