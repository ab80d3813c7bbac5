"""The run page's own figures: total training and wall time, seconds per step, tokens per second
and samples seen, from the run row and the wall times its metrics were logged at."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.domain import run_phases, runs
from app.domain.models import Metric, Run
from app.domain.progress import seconds_per_step, warmup_intervals

TOKENS = "num_tokens"  # TRL's running count of tokens trained on (SFT, DPO and GRPO alike)


def run_figures(session: Session, run: Run) -> dict[str, Any]:
    """``training_seconds`` (every attempt), ``wall_seconds`` (first start to end, pauses
    included), ``seconds_per_step`` (the first slow steps left out), ``tokens_per_second``,
    ``samples_seen`` with what a sample is, or None where the run has not logged enough."""
    marks = _step_marks(session, run.id)
    tokens = _token_marks(session, run.id)
    resumed_at = sorted(int(p["step"]) for p in (run.resume_points or []) if "step" in p)
    hp = run.hyperparameters or {}
    per_step = (int(hp.get("per_device_train_batch_size") or 0)
                * int(hp.get("gradient_accumulation_steps") or 1)
                * int(hp.get("num_processes") or 1))
    grpo = run.strategy == "grpo"
    return {
        "training_seconds": run_phases.training_seconds(run),
        "wall_seconds": runs.duration_seconds(run),
        "seconds_per_step": seconds_per_step(marks, resumed_at=resumed_at),
        "tokens_per_second": tokens_per_second(tokens, resumed_at),
        "tokens_seen": tokens[-1][2] if tokens else None,
        "samples_seen": run.step * per_step if per_step else None,
        # GRPO's batch counts completions: num_generations of them per prompt.
        "samples_unit": "completions" if grpo else "rows",
        "prompts_seen": (run.step * per_step // int(hp.get("num_generations") or 1)
                         if grpo and per_step else None),
    }


def tokens_per_second(marks: Sequence[tuple[int, float, float]],
                      resumed_at: Sequence[int] = ()) -> float | None:
    """Tokens trained per second from ``(step, seconds, tokens so far)`` marks: the token and
    time increments summed over the intervals, leaving out any that crosses a
    resume (a pause, and a count that may restart); the first ones are warm-up, left out as
    for seconds per step."""
    pairs = [(a, b) for a, b in zip(marks, marks[1:], strict=False)
             if b[0] > a[0] and b[1] > a[1] and b[2] >= a[2]
             and not any(a[0] <= r < b[0] for r in resumed_at)]
    pairs = pairs[warmup_intervals(len(pairs)):]
    seconds = sum(b[1] - a[1] for a, b in pairs)
    return sum(b[2] - a[2] for a, b in pairs) / seconds if seconds > 0 else None


def _seconds(value: datetime, origin: datetime) -> float:
    if (value.tzinfo is None) != (origin.tzinfo is None):
        value, origin = value.replace(tzinfo=None), origin.replace(tzinfo=None)
    return (value - origin).total_seconds()


def _step_marks(session: Session, run_id: int) -> list[tuple[int, float]]:
    """(step, seconds) for each logged step: when its metrics arrived (the latest of them)."""
    rows = session.execute(
        select(Metric.step, func.max(Metric.wall_time)).where(Metric.run_id == run_id)
        .group_by(Metric.step).order_by(Metric.step)).all()
    if not rows:
        return []
    origin = rows[0][1]
    return [(step, _seconds(at, origin)) for step, at in rows if at is not None]


def _token_marks(session: Session, run_id: int) -> list[tuple[int, float, float]]:
    rows = session.execute(
        select(Metric.step, Metric.wall_time, Metric.value)
        .where(Metric.run_id == run_id, Metric.name == TOKENS, Metric.value.is_not(None))
        .order_by(Metric.step, Metric.id)).all()
    if not rows:
        return []
    origin = rows[0][1]
    return [(step, _seconds(at, origin), value) for step, at, value in rows]
