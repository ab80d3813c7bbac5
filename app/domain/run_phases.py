"""What a run is doing right now, in the user's words, and how long it has trained.

The worker records each phase as it enters it (``set_phase``: the claim, the model, the data,
then training, evaluating and saving in turn); a queued run is waiting for a worker. The first
30–90 s of a first run (the model converted once, then loaded) thus read as progress, not as a
stuck "0 / 60".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.core.sql import update_one
from app.domain.models import Run, RunStatus, utcnow
from app.domain.progress import record_progress
from app.domain.runs import as_utc

PHASES = {
    "waiting_for_worker": "waiting for a worker",
    "waiting_for_devices": "waiting for devices: other runs hold those of every worker that took "
                           "it (they are free again when those runs end)",
    "starting": "starting the training process",
    "preparing_model": "preparing the model (a model's first run converts it, once)",
    "loading_data": "loading data",
    "training": "training",
    "evaluating": "evaluating on the eval split",
    "saving": "saving a checkpoint",
}


def set_phase(session: Session, run_id: int, phase: str) -> bool:
    """Record that the running run entered ``phase`` now (also a heartbeat). The caller commits."""
    if phase not in PHASES:
        raise ValueError(f"unknown run phase {phase!r}")
    return record_progress(session, Run, run_id, phase=phase, phase_started_at=utcnow())


def set_waiting_for_devices(session: Session, run_id: int, reason: str | None = None) -> bool:
    """A worker took the queued run but its host's devices are reserved by other runs (or, for
    a run over several hosts, ``reason``: which hosts are busy, how many are live): the run page
    says so until a worker claims it. The caller commits."""
    return update_one(session, Run, Run.id == run_id, Run.status == RunStatus.queued,
                      phase="waiting_for_devices", phase_started_at=utcnow(),
                      waiting_reason=reason)


def current_phase(run: Run, now: datetime | None = None) -> tuple[str, str, float] | None:
    """(phase, label, seconds in it) of a queued or running run; None once it finished."""
    now = now or utcnow()
    if run.status == RunStatus.queued and run.phase == "waiting_for_devices":
        phase, since = run.phase, run.phase_started_at
    elif run.status == RunStatus.queued:
        phase, since = "waiting_for_worker", run.published_at or run.created_at
    elif run.status == RunStatus.running:
        phase, since = run.phase or "starting", run.phase_started_at or run.attempt_started_at
    else:
        return None
    since = as_utc(since)
    elapsed = max(0.0, (now - since).total_seconds()) if since else 0.0
    if phase == "waiting_for_devices" and run.waiting_reason:
        return phase, f"waiting for hosts: {run.waiting_reason}", elapsed
    return phase, PHASES.get(phase, phase), elapsed


def attempt_seconds(run: Run, now: datetime | None = None) -> float:
    """Seconds the current attempt has been running (0 when none runs)."""
    start = as_utc(run.attempt_started_at)
    if start is None:
        return 0.0
    return max(0.0, ((now or utcnow()) - start).total_seconds())


def training_seconds(run: Run, now: datetime | None = None) -> float:
    """Time spent training over every attempt (a cancel-and-resume pause not counted)."""
    running = attempt_seconds(run, now) if run.status == RunStatus.running else 0.0
    return (run.training_seconds or 0.0) + running
