"""Chart-sized metric series for the compare page: read lean, downsample, cache finished runs.

``metrics.read_series`` builds one tuple per stored row: fine for one run of a few hundred steps,
far too slow for ten runs of 20,000 steps (2M rows). Here a series of up to a few times
``max_points`` rows is read as bare (step, value, special) rows and cut by
``series.downsample``; a longer one is bucketed by the database (min and max per step range),
so Python never touches its rows. A finished run's rows never change (terminal statuses are
final), so its downsampled series are cached in process.

Each step reads every run it needs at once (names, series sizes, short series; the x-axes in
``compare_axes`` share the cache), so comparing 8 runs costs the statements of comparing 2; only
series long enough to be bucketed are read run by run.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Select, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from app.domain import metrics
from app.domain.metrics import decode_value
from app.domain.models import TERMINAL_STATUSES, Metric, Run
from app.services.compare.downsample import downsample

Point = tuple[int, float]
# Cached series (one per run and metric): a 1000-point series is about 100 KB of tuples, so
# this bounds the cache near 50 MB; ten runs of ten metrics take 100 entries.
CACHE_SIZE = 500
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


def cache_tag(run: Run) -> tuple | None:
    """(run_id, finished_at) to key a finished run's cached data by; None while it can change."""
    # finished_at in the key: a run cannot finish twice, but a test database can reuse ids.
    if run.status in TERMINAL_STATUSES and run.finished_at is not None:
        return (run.id, run.finished_at.isoformat())
    return None


def metric_names(session: Session, *, runs: list[Run]) -> dict[int, list[str]]:
    """run_id -> the metric names it logged, sorted (cached once a run has finished)."""
    out: dict[int, list[str]] = {}
    for run in runs:
        tag = cache_tag(run)
        hit = cache.get((*tag, "names")) if tag else None
        if hit is not None:
            out[run.id] = hit
    missing = [run for run in runs if run.id not in out]
    if missing:
        out.update(logged_names(session, run_ids=[run.id for run in missing]))
    for run in missing:
        if tag := cache_tag(run):
            cache.put((*tag, "names"), out[run.id])
    return {run.id: out[run.id] for run in runs}


def logged_names(session: Session, *, run_ids: list[int]) -> dict[int, list[str]]:
    """run_id -> the metric names it logged, sorted, in one statement that hops through the
    metric index a name at a time (a loose index scan: one seek per name). ``SELECT DISTINCT``
    reads every row instead: 0.25 s for ten runs of 20,000 steps, against milliseconds here."""
    later = aliased(Metric)
    first = select(func.min(Metric.name)).where(Metric.run_id == Run.id).scalar_subquery()
    found = select(Run.id.label("run_id"), first.label("name")).where(
        Run.id.in_(run_ids)).cte("logged", recursive=True)
    following = select(func.min(later.name)).where(
        later.run_id == found.c.run_id, later.name > found.c.name).scalar_subquery()
    found = found.union_all(select(found.c.run_id, following).where(found.c.name.is_not(None)))
    out: dict[int, list[str]] = {run_id: [] for run_id in run_ids}
    query = select(found.c.run_id, found.c.name).where(found.c.name.is_not(None))
    for run_id, name in session.execute(query):
        out[run_id].append(name)
    return {run_id: sorted(names) for run_id, names in out.items()}


def read_raw(session: Session, *, run_id: int, names: Iterable[str]) -> dict[str, list[Point]]:
    """name -> [(step, value)] at full resolution; a step logged twice (resume) keeps the later."""
    names = list(names)
    if not names:  # read_series treats "no names" as "every name"
        return {}
    found = metrics.read_series(session, run_ids=[run_id], names=names).get(run_id, {})
    return {name: found.get(name, []) for name in names}


def series_sizes(session: Session, *, names: dict[int, list[str]], cap: int | None = None
                 ) -> dict[tuple, tuple]:
    """(run_id, name) -> (rows, first step, last step) of the series that exist, in one
    statement of index seeks. ``rows`` stops counting at ``cap + 1``: enough to tell a short
    series from a long one, where a full count reads every row of a 20,000-step series."""
    def sizes(run_id: int, name: str) -> Select:
        where = (Metric.run_id == run_id, Metric.name == name)
        steps = select(Metric.step).where(*where)
        rows = steps.limit(None if cap is None else cap + 1).subquery()
        return select(
            literal(run_id), literal(name),
            select(func.count()).select_from(rows).scalar_subquery(),
            steps.order_by(Metric.step).limit(1).scalar_subquery(),
            steps.order_by(Metric.step.desc()).limit(1).scalar_subquery())

    parts = [sizes(run_id, name) for run_id, wanted in names.items() for name in wanted]
    if not parts:
        return {}
    return {(run_id, name): (count, first, last)
            for run_id, name, count, first, last in session.execute(union_all(*parts))
            if count}


def read_short(session: Session, *, names: dict[int, list[str]]
               ) -> dict[int, dict[str, list[Point]]]:
    """run_id -> name -> [(step, value)] at full resolution (``metrics.read_series``: a step
    logged twice keeps the later row), every run in one statement."""
    found = metrics.read_series(session, run_ids=list(names), names_by_run=names)
    return {run_id: found.get(run_id, {}) for run_id in names}


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
    # Non-finite values (rare) in their own read: the first per bucket, at its exact step. One
    # statement per name streams the index in step order (several names need a temp B-tree).
    specials = session.execute(
        select(Metric.name, bucket, func.min(Metric.step), func.min(Metric.special))
        .where(Metric.run_id == run_id, Metric.name.in_(names), Metric.special.is_not(None))
        .group_by(Metric.name, bucket))
    bad = {(name, index): (step, float(special)) for name, index, step, special in specials}
    out: dict[str, list[Point]] = {name: [] for name in names}
    for name in names:
        query = (select(bucket, func.min(Metric.value), func.max(Metric.value),
                        func.min(Metric.step), func.max(Metric.step))
                 .where(Metric.run_id == run_id, Metric.name == name)
                 .group_by(bucket).order_by(bucket))
        points = out[name]
        for index, low, high, start, end in session.execute(query):
            if (name, index) in bad:
                points.append(bad[name, index])
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
    found: dict[int, dict[str, list[Point]]] = {run.id: {} for run in runs}
    missing: dict[int, list[str]] = {}
    for run in runs:
        tag = cache_tag(run)
        for name in names.get(run.id, []):
            hit = cache.get((*tag, name, max_points)) if tag else None
            if hit is None:
                missing.setdefault(run.id, []).append(name)
            else:
                found[run.id][name] = hit
    fresh = _read(session, names=missing, max_points=max_points)
    for run in runs:
        tag = cache_tag(run)
        for name, points in fresh.get(run.id, {}).items():
            found[run.id][name] = [(step, _round(v)) for step, v in points]
            if tag:
                cache.put((*tag, name, max_points), found[run.id][name])
    return {run.id: {name: found[run.id][name] for name in names.get(run.id, [])
                     if name in found[run.id]} for run in runs}


def _round(value: float) -> float:
    # Six significant digits: finer than any chart or hover (4 digits) shows, half the JSON.
    return float(f"{value:.6g}") if math.isfinite(value) else value


def _read(session: Session, *, names: dict[int, list[str]], max_points: int
          ) -> dict[int, dict[str, list[Point]]]:
    if not names:
        return {}
    sizes = series_sizes(session, names=names, cap=BUCKET_IN_SQL_FACTOR * max_points)
    # Several times max_points rows: bucket in the database (Python would touch every row).
    long = {key for key, (count, _, _) in sizes.items()
            if count > BUCKET_IN_SQL_FACTOR * max_points}
    short = {run_id: [n for n in wanted if (run_id, n) in sizes and (run_id, n) not in long]
             for run_id, wanted in names.items()}
    read = read_short(session, names={r: ns for r, ns in short.items() if ns}) if any(
        short.values()) else {}
    found = {run_id: {name: cast(list[Point], downsample(points, max_points))
                      for name, points in read.get(run_id, {}).items()} for run_id in names}
    for run_id in names:
        found[run_id].update(_read_long(session, run_id=run_id, sizes=sizes, long=long,
                                        max_points=max_points))
    return found


def _read_long(session: Session, *, run_id: int, sizes: dict[tuple, tuple], long: set[tuple],
               max_points: int) -> dict[str, list[Point]]:
    long_names = [name for r, name in sorted(long) if r == run_id]
    if not long_names:
        return {}
    first = min(sizes[run_id, n][1] for n in long_names)
    last = max(sizes[run_id, n][2] for n in long_names)
    # Two points per bucket and the two ends; downsample() below trims the rare overflow
    # (buckets that also hold a NaN/inf carry a third point).
    buckets = max(1, (max_points - 2) // 2)
    bucketed = read_bucketed(session, run_id=run_id, names=long_names, first=first, last=last,
                             buckets=buckets)
    return {name: cast(list[Point], downsample(points, max_points))
            for name, points in bucketed.items()}
