"""A run's health flags (app/domain/health.py's rules over its metrics), kept on the run once it
has finished.

A finished run's metric rows never change (terminal statuses are final; a resume starts a new
finish), so its flags are computed once, from every logged value, and stored with the
``finished_at`` they belong to: by the worker when the run ends (``record``) or by the first
request that needs them. The compare page of finished runs then reads no series for health.
A resumed run finishes again with a new ``finished_at``, which invalidates what was stored.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from app.core.sql import update_one
from app.domain import metrics
from app.domain.health import METRICS, check_health
from app.domain.models import TERMINAL_STATUSES, Run
from app.domain.runs import as_utc

# What the rules read; the compare page loads these with its curves when it asks for health.
HEALTH_METRICS = METRICS


def _finish_tag(run: Run) -> str | None:
    finished = as_utc(run.finished_at)
    return finished.isoformat() if run.status in TERMINAL_STATUSES and finished else None


def stored(run: Run) -> list[dict[str, Any]] | None:
    """The flags stored for this finish of the run; None while it runs or before they exist."""
    tag, saved = _finish_tag(run), run.health_flags or {}
    return saved.get("flags") if tag and saved.get("finished_at") == tag else None


def compute(session: Session, *, run_id: int) -> list[dict[str, Any]]:
    """Flags from every logged value of the health metrics (errors first)."""
    series = metrics.read_series(session, run_ids=[run_id], names=list(HEALTH_METRICS))
    return [asdict(flag) for flag in check_health(series.get(run_id, {}))]


def flags(session: Session, *, run: Run) -> list[dict[str, Any]]:
    """The run's flags: stored ones when it has finished (computed and stored the first time),
    computed afresh while it runs."""
    found = stored(run)
    if found is not None:
        return found
    found = compute(session, run_id=run.id)
    if tag := _finish_tag(run):
        # Only for this finish: a resume that finished meanwhile keeps its own.
        update_one(session, Run, Run.id == run.id, Run.finished_at == run.finished_at,
                   health_flags={"finished_at": tag, "flags": found})
        session.commit()
    return found


def record(session: Session, *, run_id: int) -> None:
    """Store a run's flags when it has just finished (the worker calls this)."""
    run = session.get(Run, run_id)
    if run is not None and run.status in TERMINAL_STATUSES:
        flags(session, run=run)
