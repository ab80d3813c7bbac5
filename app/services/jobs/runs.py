"""Runs: creation, cancel, resume and listing. Every status change goes through
``app.domain.runs.transition``, so the allowed transitions in ``models.ALLOWED_TRANSITIONS``
hold."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.core.storage import ArtifactStore
from app.domain.models import (
    RESUMABLE_STATUSES,
    TERMINAL_STATUSES,
    Checkpoint,
    Dataset,
    Metric,
    Run,
    RunStatus,
    Sample,
    utcnow,
)
from app.domain.runs import RunStateError, transition


def create_run(
    session: Session,
    *,
    dataset: Dataset,
    strategy: str,
    base_model: str,
    name: str | None,
    hyperparameters: dict,
    reward_functions: list[dict] | None = None,
    backend: str = "auto",
    queue: str = "training",
    priority: int = 0,
) -> Run:
    count = session.scalar(select(Run.id).order_by(Run.id.desc()).limit(1)) or 0
    run = Run(
        name=name or f"{strategy}-{base_model.rsplit('/', 1)[-1]}-{count + 1}",
        strategy=strategy,
        base_model=base_model,
        dataset_id=dataset.id,
        hyperparameters=hyperparameters,
        reward_functions=reward_functions or [],
        requested_backend=backend,
        queue=queue,
        priority=priority,
        status=RunStatus.queued,
        # The caller publishes the task right after this commit (launch.launch_run).
        published_at=utcnow(),
        publish_count=1,
        max_steps=(
            hyperparameters["max_steps"] if hyperparameters.get("max_steps", -1) > 0 else None
        ),
    )
    session.add(run)
    session.flush()
    run.queue_position = run.id  # ties in priority go by age (app/domain/queue.py)
    session.commit()
    return run


def request_cancel(session: Session, *, run: Run) -> Run:
    if run.status in TERMINAL_STATUSES:
        raise RunStateError(
            f"run {run.id} is already {run.status.value}; "
            "only queued or running runs can be cancelled"
        )
    session.execute(update(Run).where(Run.id == run.id).values(cancel_requested=True))
    session.commit()
    # A queued run never starts: cancel it now. A running one stops at its next step.
    if run.status == RunStatus.queued:
        transition(session, run_id=run.id, to=RunStatus.cancelled)
    session.refresh(run)
    return run


def resume_point(session: Session, *, run: Run, store: ArtifactStore) -> Checkpoint | None:
    """The latest checkpoint that still holds the trainer state a resume needs, if any."""
    rows = session.scalars(
        select(Checkpoint).where(Checkpoint.run_id == run.id).order_by(Checkpoint.step.desc())
    )
    for checkpoint in rows:
        if store.exists(f"{checkpoint.storage_key}/trainer_state.json"):
            return checkpoint
    return None


def resume_run(session: Session, *, run: Run, store: ArtifactStore) -> Run:
    """Queue a failed or cancelled run again from its latest checkpoint. Caller enqueues it.

    Raises RunStateError when the run is not resumable (the API answers 409).
    """
    if run.status not in RESUMABLE_STATUSES:
        raise RunStateError(
            f"run {run.id} is {run.status.value}; only failed or cancelled runs can be resumed"
        )
    checkpoint = resume_point(session, run=run, store=store)
    if checkpoint is None:
        raise RunStateError(f"run {run.id} saved no checkpoint to resume from: launch it again")
    resumed = transition(
        session,
        run_id=run.id,
        to=RunStatus.queued,
        resumed_from_step=checkpoint.step,
        step=checkpoint.step,
        cancel_requested=False,
        error=None,
        finished_at=None,
        eta_seconds=None,
        worker=None,
        heartbeat_at=None,
        published_at=utcnow(),
        publish_count=1,
        resume_points=[*(run.resume_points or []),
                       {"step": checkpoint.step, "at": utcnow().isoformat()}],
    )
    if not resumed:  # someone else resumed (or changed) it between our read and our update
        session.refresh(run)
        raise RunStateError(f"run {run.id} is now {run.status.value}: it cannot be resumed")
    # The new attempt logs the steps after the checkpoint again: drop the old attempt's points
    # there so the curves continue from the checkpoint with no stale tail.
    for model in (Metric, Sample):
        session.execute(delete(model).where(model.run_id == run.id, model.step > checkpoint.step))
    session.commit()
    session.refresh(run)
    return run


def list_runs(
    session: Session,
    *,
    status: str | None = None,
    strategy: str | None = None,
    dataset_id: int | None = None,
) -> list[Run]:
    query = select(Run).order_by(Run.id.desc())
    if status:
        query = query.where(Run.status == RunStatus(status))
    if strategy:
        query = query.where(Run.strategy == strategy)
    if dataset_id:
        query = query.where(Run.dataset_id == dataset_id)
    return list(session.scalars(query))
