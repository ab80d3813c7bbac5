"""How a running run, evaluation or playground generation reports that it is alive and how far it
got: one conditional UPDATE that always refreshes the heartbeat (the reaper reads it) and only
touches a row that is still running, so a row the reaper failed is never brought back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.core.sql import update_one
from app.domain.models import Evaluation, Export, Generation, Run, utcnow

Live = Run | Evaluation | Generation | Export


def record_progress(session: Session, model: type[Live], row_id: int, **fields: Any) -> bool:
    """Heartbeat plus ``fields`` (step, eta_seconds, progress…) on a running row; whether it
    matched. The caller commits."""
    return update_one(session, model, model.id == row_id, model.status == "running",
                      heartbeat_at=utcnow(), **fields)


def seconds_per_step(marks: Sequence[tuple[int, float]], *, resumed_at: Sequence[int] = (),
                     recent: int = 50) -> float | None:
    """Seconds per training step from ``(step, seconds)`` marks in step order, or None before two
    distinct steps. The first intervals are the slow ones (the first generations, lazy kernels,
    caches warming), so up to five of them (a fifth of those seen) are left out once there are
    others; of the rest, the median of the last ``recent``. An interval across a resume (from
    the step it resumed at: the pause) never counts."""
    rates = [(t2 - t1) / (s2 - s1) for (s1, t1), (s2, t2) in zip(marks, marks[1:], strict=False)
             if s2 > s1 and t2 >= t1 and not any(s1 <= r < s2 for r in resumed_at)]
    if not rates:
        return None
    rates = rates[warmup_intervals(len(rates)):]
    window = sorted(rates[-recent:])
    middle = len(window) // 2
    return window[middle] if len(window) % 2 else (window[middle - 1] + window[middle]) / 2


def warmup_intervals(count: int) -> int:
    """How many of the first ``count`` step intervals count as warm-up: none while there is only
    one, else a fifth of them, at least one and at most five."""
    return 0 if count < 2 else max(1, min(5, count // 5))
