"""Metric rows: written in batches by workers, read back (downsampled) for charts."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import and_, false, insert, or_, select
from sqlalchemy.orm import Session

from app.domain.models import Metric, utcnow


def _encode(value: float) -> tuple[float | None, str | None]:
    # NB: SQL can not portably represent NaN and infinities.
    if math.isnan(value):
        return None, "nan"
    if math.isinf(value):
        return None, "inf" if value > 0 else "-inf"
    return value, None


def decode_value(value: float | None, special: str | None) -> float:
    if special:
        return float(special)
    return float(value) if value is not None else float("nan")


def log_batch(
    session: Session, *, run_id: int, rows: Iterable[tuple[int, str, float, datetime]]
) -> int:
    """Insert (step, name, value, wall_time) rows in one statement. Caller commits."""
    payload = []
    for step, name, value, wall_time in rows:
        stored, special = _encode(float(value))
        payload.append(
            {
                "run_id": run_id,
                "step": step,
                "name": name,
                "value": stored,
                "special": special,
                "wall_time": wall_time or utcnow(),
            }
        )
    if payload:
        session.execute(insert(Metric), payload)
    return len(payload)


def read_series(
    session: Session,
    *,
    run_ids: list[int],
    names: list[str] | None = None,
    names_by_run: Mapping[int, list[str]] | None = None,
    with_time: bool = False,
) -> dict[int, dict[str, list[tuple]]]:
    """run_id → name → [(step, value[, wall_time])] sorted by step.

    ``names`` narrows every run to those names; ``names_by_run`` gives each run its own (and
    reads no run it does not name), still in one statement. A resumed run may log a step twice
    (the step it resumed from); the later value wins.
    """
    query = select(
        Metric.run_id, Metric.name, Metric.step, Metric.value, Metric.special, Metric.wall_time
    ).where(Metric.run_id.in_(run_ids))
    if names:
        query = query.where(Metric.name.in_(names))
    if names_by_run is not None:
        # false() first: with no runs at all, no rows (a bare or_() would select every row).
        query = query.where(or_(false(), *(and_(Metric.run_id == run_id, Metric.name.in_(wanted))
                                           for run_id, wanted in names_by_run.items())))
    query = query.order_by(Metric.run_id, Metric.name, Metric.step, Metric.id)
    series: dict[int, dict[str, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    for run_id, name, step, value, special, wall_time in session.execute(query):
        points = series[run_id][name]
        point = (
            (step, decode_value(value, special), wall_time)
            if with_time
            else (step, decode_value(value, special))
        )
        if points and points[-1][0] == step:
            points[-1] = point
        else:
            points.append(point)
    return {run_id: dict(by_name) for run_id, by_name in series.items()}
