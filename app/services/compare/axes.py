"""The compare page's other x-axes: elapsed time and epoch by step, for each run.

The charts plot by step; to plot by elapsed time or epoch the client maps steps through these
lookups (interpolating between entries). They are sampled along a series ``compare_series``
has read and kept in its cache, so a finished run's axes cost no statement after the first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from app.domain.models import Metric, Run
from app.services.compare.series import Point, cache, cache_tag

# Points of the step -> elapsed seconds / epoch lookups sent per run for the x-axis choices.
AXIS_POINTS = 400


def x_axes(session: Session, *, runs: list[Run], series: Mapping[int, dict[str, list[Point]]]
           ) -> dict[int, dict[str, list]]:
    """run_id -> ``{"elapsed": [[step, seconds], ...], "epoch": [[step, epoch], ...]}`` for
    plotting by elapsed time or epoch; the client interpolates between entries.

    Elapsed time is seconds since the run's first logged row, read at about AXIS_POINTS steps
    of one series: a chart cannot show finer detail, and parsing every wall time of a long run
    costs more than all its values. Epochs come from the ``epoch`` value the trainer logs.
    """
    out: dict[int, dict[str, list]] = {}
    picks: dict[int, ColumnElement[bool]] = {}
    for run in runs:
        tag = cache_tag(run)
        if (hit := cache.get((*tag, "axes")) if tag else None) is not None:
            out[run.id] = hit
            continue
        own = series[run.id]
        out[run.id] = {"elapsed": [],
                       "epoch": [[s, v] for s, v in own.get("epoch", []) if math.isfinite(v)]}
        longest = max(own, key=lambda name: (len(own[name]), name == "loss"), default=None)
        if longest is not None and own[longest]:
            first, last = own[longest][0][0], own[longest][-1][0]
            stride = max(1, math.ceil((last - first + 1) / AXIS_POINTS))
            picks[run.id] = and_(Metric.run_id == run.id, Metric.name == longest,
                                 (Metric.step % stride == 0) | (Metric.step == first)
                                 | (Metric.step == last))
    rows: dict[int, list[tuple[int, datetime | None]]] = {run_id: [] for run_id in picks}
    if picks:
        query = (select(Metric.run_id, Metric.step, func.min(Metric.wall_time))
                 .where(or_(*picks.values())).group_by(Metric.run_id, Metric.step)
                 .order_by(Metric.run_id, Metric.step))
        for run_id, step, wall in session.execute(query):
            rows[run_id].append((step, _as_datetime(wall)))
    for run_id, found in rows.items():
        walls = [wall for _, wall in found if wall is not None]
        if walls:
            start = min(walls)
            out[run_id]["elapsed"] = [[step, round((wall - start).total_seconds(), 3)]
                                      for step, wall in found if wall is not None]
    for run in runs:
        if tag := cache_tag(run):
            cache.put((*tag, "axes"), out[run.id])
    return out


def _as_datetime(value: object) -> datetime | None:
    # func.min over a DateTime column comes back as text on SQLite.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
