"""Chart-sized metric series for the compare page: read lean, downsample, cache finished runs.

``metrics.read_series`` builds one tuple per stored row: fine for one run of a few hundred steps,
far too slow for ten runs of 20,000 steps (2M rows). Here a series of up to a few times
``max_points`` rows is read as bare (step, value, special) rows and cut by
``series.downsample``; a longer one is bucketed by the database (min and max per step range),
so Python never touches its rows. A finished run's rows never change (terminal statuses are
final), so its downsampled series are cached in process.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models import TERMINAL_STATUSES, Metric, Run
from app.services import metrics
from app.services.metrics import decode_value
from app.services.series import downsample

Point = tuple[int, float]
# Cached series (one per run and metric): a 1000-point series is about 100 KB of tuples, so
# this bounds the cache near 50 MB; ten runs of ten metrics take 100 entries.
CACHE_SIZE = 500
# Points of the step -> elapsed seconds / epoch lookups sent per run for the x-axis choices.
AXIS_POINTS = 400
# Series with more rows than this many times max_points are bucketed by the database.
BUCKET_IN_SQL_FACTOR = 4


class _SeriesCache:
    """Downsampled series of finished runs, keyed by (run_id, finished_at, name, max_points)."""

    def __init__(self, size: int) -> None:
        self.size = size
        # Values are series, name lists or axes: whatever the caller stored under the key.
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


cache = _SeriesCache(CACHE_SIZE)


def _cache_tag(run: Run) -> tuple | None:
    # finished_at in the key: a run cannot finish twice, but a test database can reuse ids.
    if run.status in TERMINAL_STATUSES and run.finished_at is not None:
        return (run.id, run.finished_at.isoformat())
    return None


def metric_names(session: Session, *, runs: list[Run]) -> dict[int, list[str]]:
    """run_id -> the metric names it logged, sorted (cached once a run has finished)."""
    out: dict[int, list[str]] = {}
    for run in runs:
        tag = _cache_tag(run)
        hit = cache.get((*tag, "names")) if tag else None
        if hit is None:
            hit = sorted(session.scalars(
                select(Metric.name).where(Metric.run_id == run.id).distinct()))
            if tag:
                cache.put((*tag, "names"), hit)
        out[run.id] = hit
    return out


def read_raw(session: Session, *, run_id: int, names: Iterable[str]) -> dict[str, list[Point]]:
    """name -> [(step, value)] at full resolution; a step logged twice (resume) keeps the later."""
    names = list(names)
    if not names:  # read_series treats "no names" as "every name"
        return {}
    found = metrics.read_series(session, run_ids=[run_id], names=names).get(run_id, {})
    return {name: found.get(name, []) for name in names}


def series_sizes(session: Session, *, run_id: int, names: list[str]) -> dict[str, tuple]:
    """name -> (rows, first step, last step); answered from the (run_id, name, step) index."""
    query = (select(Metric.name, func.count(), func.min(Metric.step), func.max(Metric.step))
             .where(Metric.run_id == run_id, Metric.name.in_(names)).group_by(Metric.name))
    return {name: (count, first, last) for name, count, first, last in session.execute(query)}


def read_bucketed(
    session: Session, *, run_id: int, names: list[str], first: int, last: int, buckets: int
) -> dict[str, list[Point]]:
    """Long series cut into ``buckets`` step ranges by the database, min and max of each kept.

    The database returns each bucket's min and max value and its first and last step, not the
    steps the extremes were logged at (that needs a second pass); the extremes are placed at
    the bucket's ends, ordered to continue the line. A bucket is 1/buckets of the x-axis, well
    under a pixel of spread per point on a chart. Non-finite values keep their exact step, and
    each series' first and last points are exact (the summary's "final" reads the last).
    """
    width = max(1, math.ceil((last - first + 1) / buckets))
    bucket = (Metric.step - first) // width
    has_special = Metric.special.is_not(None)
    query = (
        select(Metric.name, bucket, func.min(Metric.value), func.max(Metric.value),
               func.min(Metric.step), func.max(Metric.step),
               func.min(case((has_special, Metric.step))), func.min(Metric.special))
        .where(Metric.run_id == run_id, Metric.name.in_(names))
        .group_by(Metric.name, bucket).order_by(Metric.name, bucket)
    )
    out: dict[str, list[Point]] = {name: [] for name in names}
    for name, _, low, high, start, end, bad_step, special in session.execute(query):
        points = out[name]
        if bad_step is not None:
            points.append((bad_step, float(special)))
        if low is None:
            continue
        previous = points[-1][1] if points and math.isfinite(points[-1][1]) else low
        pair = [low, high] if abs(previous - low) <= abs(previous - high) else [high, low]
        points.extend(sorted({(start, float(pair[0])), (end, float(pair[1]))}))
    for name, points in out.items():
        ends = [_one_point(session, run_id=run_id, name=name, last=at_end) for at_end in (0, 1)]
        inner = [p for p in points if ends[0][0] < p[0] < ends[1][0]]
        out[name] = sorted({ends[0], *inner, ends[1]})
    return out


def _one_point(session: Session, *, run_id: int, name: str, last: int) -> Point:
    order = (Metric.step.desc(), Metric.id.desc()) if last else (Metric.step, Metric.id.desc())
    step, value, special = session.execute(
        select(Metric.step, Metric.value, Metric.special)
        .where(Metric.run_id == run_id, Metric.name == name).order_by(*order).limit(1)).one()
    return step, decode_value(value, special)


def chart_series(
    session: Session, *, runs: list[Run], names: dict[int, list[str]], max_points: int
) -> dict[int, dict[str, list[Point]]]:
    """run_id -> name -> at most ``max_points`` (step, value), extremes kept; finished runs
    come from the cache after their first read."""
    out: dict[int, dict[str, list[Point]]] = {}
    for run in runs:
        tag = _cache_tag(run)
        found: dict[str, list[Point]] = {}
        missing = []
        for name in names.get(run.id, []):
            hit = cache.get((*tag, name, max_points)) if tag else None
            if hit is None:
                missing.append(name)
            else:
                found[name] = hit
        fresh = _read(session, run_id=run.id, names=missing, max_points=max_points)
        found.update({name: [(step, _round(v)) for step, v in points]
                      for name, points in fresh.items()})
        for name in missing:
            if tag and name in found:
                cache.put((*tag, name, max_points), found[name])
        out[run.id] = {name: found[name] for name in names.get(run.id, []) if name in found}
    return out


def _round(value: float) -> float:
    # Six significant digits: finer than any chart or hover (4 digits) shows, half the JSON.
    return float(f"{value:.6g}") if math.isfinite(value) else value


def _read(session: Session, *, run_id: int, names: list[str], max_points: int
          ) -> dict[str, list[Point]]:
    if not names:
        return {}
    sizes = series_sizes(session, run_id=run_id, names=names)
    # Several times max_points rows: bucket in the database (Python would touch every row).
    long = [n for n, (count, _, _) in sizes.items() if count > BUCKET_IN_SQL_FACTOR * max_points]
    short = [n for n in sizes if n not in long]
    found = {name: downsample(points, max_points)
             for name, points in read_raw(session, run_id=run_id, names=short).items()}
    if long:
        first = min(sizes[n][1] for n in long)
        last = max(sizes[n][2] for n in long)
        # Two points per bucket and the two ends; downsample() below trims the rare overflow
        # (buckets that also hold a NaN/inf carry a third point).
        buckets = max(1, (max_points - 2) // 2)
        bucketed = read_bucketed(session, run_id=run_id, names=long, first=first, last=last,
                                 buckets=buckets)
        found.update({name: downsample(points, max_points) for name, points in bucketed.items()})
    return cast(dict[str, list[Point]], found)


def x_axes(session: Session, *, run: Run, series: dict[str, list[Point]]) -> dict[str, list]:
    """``{"elapsed": [[step, seconds], ...], "epoch": [[step, epoch], ...]}`` for plotting by
    elapsed time or epoch; the client interpolates between entries.

    Elapsed time is seconds since the run's first logged row, read at about AXIS_POINTS steps
    of one series: a chart cannot show finer detail, and parsing every wall time of a long run
    costs more than all its values. Epochs come from the ``epoch`` value the trainer logs.
    """
    tag = _cache_tag(run)
    hit = cache.get((*tag, "axes")) if tag else None
    if hit is not None:
        return hit
    axes: dict[str, list] = {
        "elapsed": [],
        "epoch": [[s, v] for s, v in series.get("epoch", []) if math.isfinite(v)],
    }
    longest = max(series, key=lambda name: (len(series[name]), name == "loss"), default=None)
    if longest is not None and series[longest]:
        first, last = series[longest][0][0], series[longest][-1][0]
        stride = max(1, math.ceil((last - first + 1) / AXIS_POINTS))
        picked = (Metric.step % stride == 0) | (Metric.step == first) | (Metric.step == last)
        query = (select(Metric.step, func.min(Metric.wall_time))
                 .where(Metric.run_id == run.id, Metric.name == longest, picked)
                 .group_by(Metric.step).order_by(Metric.step))
        rows = [(step, _as_datetime(wall)) for step, wall in session.execute(query)]
        walls = [wall for _, wall in rows if wall is not None]
        if walls:
            start = min(walls)
            axes["elapsed"] = [[step, round((wall - start).total_seconds(), 3)]
                               for step, wall in rows if wall is not None]
    if tag:
        cache.put((*tag, "axes"), axes)
    return axes


def _as_datetime(value: object) -> datetime | None:
    # func.min over a DateTime column comes back as text on SQLite.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
