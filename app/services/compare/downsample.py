"""Metric series for charts: bounded downsampling that keeps extremes, and TensorBoard smoothing.

A series is a list of ``(x, y)`` pairs, x being the training step. Both functions are pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]

# first + last + one bucket with room for its min, its max and a non-finite value
_MIN_POINTS = 5


def downsample(points: Sequence[Point], max_points: int = 1000) -> list[Point]:
    """At most ``max_points`` of ``points``, in input order, chosen min/max per bucket.

    Kept always: the first and last point, the global min and max of the finite y values, and
    in each bucket the first non-finite y (NaN/inf are health signals, a chart should show
    where they happened). Returns the input's own tuples; input of ``max_points`` or fewer
    comes back unchanged (as a list).

    Why min/max per bucket rather than LTTB: LTTB picks one point per bucket by triangle area
    and can drop a one-step loss spike, is sequential (a Python loop), and its areas are
    undefined on NaN. Min/max keeps every spike by construction and vectorises with numpy.
    """
    if max_points < _MIN_POINTS:
        raise ValueError(f"max_points must be at least {_MIN_POINTS}, got {max_points}")
    n = len(points)
    if n <= max_points:
        return list(points)

    ys = np.fromiter((p[1] for p in points), dtype=float, count=n)
    finite = np.isfinite(ys)
    budget = max_points - 2
    n_buckets = budget // 2
    keep, n_bad = _bucket_extremes(ys, finite, n_buckets)
    # Buckets holding a non-finite value need a third slot: shrink until they fit. budget // 3
    # buckets always fit, and n_buckets strictly decreases, so this ends (usually in one step).
    while len(keep) > max_points:
        n_buckets = min(n_buckets - 1, max(budget // 3, (budget - n_bad) // 2))
        keep, n_bad = _bucket_extremes(ys, finite, n_buckets)
    return [points[i] for i in keep.tolist()]


def _bucket_extremes(ys: np.ndarray, finite: np.ndarray, n_buckets: int) -> tuple[np.ndarray, int]:
    """Sorted indices (ends, per-bucket finite min and max, per-bucket first non-finite) and
    the number of buckets that hold a non-finite value."""
    n = len(ys)
    # Interior points 1..n-2 split into n_buckets contiguous runs of nearly equal length.
    edges = np.linspace(1, n - 1, n_buckets + 1).astype(np.int64)
    starts, ends = edges[:-1], edges[1:]
    width = int((ends - starts).max())
    # One row per bucket; short rows repeat their last index, which cannot change a min/max.
    idx = np.minimum(starts[:, None] + np.arange(width)[None, :], (ends - 1)[:, None])
    rows = np.arange(n_buckets)

    ok = finite[idx]
    any_ok = ok.any(axis=1)
    mins = idx[rows, np.where(ok, ys[idx], np.inf).argmin(axis=1)][any_ok]
    maxs = idx[rows, np.where(ok, ys[idx], -np.inf).argmax(axis=1)][any_ok]
    bad = idx[rows, (~ok).argmax(axis=1)][~ok.all(axis=1)]
    return np.unique(np.concatenate([[0, n - 1], mins, maxs, bad])), len(bad)


def ema(values: Sequence[float], alpha: float) -> list[float]:
    """Exponential moving average with TensorBoard's debiasing.

    ``alpha`` is the smoothing weight of TensorBoard's slider: the share kept from the past,
    0 returns the values unchanged, 0.99 is very smooth. Debiasing divides by
    ``1 - alpha**k`` so the first points are not dragged toward zero. Non-finite values pass
    through as they are and do not enter the average (as in TensorBoard), so one NaN does
    not turn the rest of the curve into NaN.
    """
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha (smoothing weight) must be in [0, 1), got {alpha}")
    out: list[float] = []
    last = 0.0
    count = 0
    for value in values:
        v = float(value)
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * alpha + (1.0 - alpha) * v
        count += 1
        out.append(last / (1.0 - alpha**count))
    return out
