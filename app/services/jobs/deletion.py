"""Deleting runs, datasets, evaluations and checkpoints, with their files in artifact storage.

Nothing is deleted while a worker may still use it: a queued or running run, evaluation or
playground request makes the delete a 409 that says what to wait for. A dataset that runs or
evaluations use is refused too, unless the caller asks to delete those with it (``cascade``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.storage import ArtifactStore
from app.domain.errors import Conflict
from app.domain.models import (
    Checkpoint,
    Dataset,
    Evaluation,
    Export,
    Generation,
    JobStatus,
    Run,
    RunStatus,
)

ACTIVE_RUN = (RunStatus.queued, RunStatus.running)
ACTIVE_JOB = (JobStatus.queued, JobStatus.running)


def _names(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _refuse_active_run(run: Run, what: str) -> None:
    if run.status in ACTIVE_RUN:
        raise Conflict(f"run {run.id} is {run.status.value}: cancel it (or wait for it to "
                       f"finish) before deleting {what}")


def _active_jobs(session: Session, *, run_ids: list[int], step: int | None = None) -> list[str]:
    """Queued or running evaluations and playground requests of these runs (at ``step``)."""
    found = []
    for model, label in ((Evaluation, "evaluation"), (Generation, "playground request"),
                         (Export, "export")):
        query = select(model.id).where(model.run_id.in_(run_ids), model.status.in_(ACTIVE_JOB))
        if step is not None:
            query = query.where(model.checkpoint_step == step)
        found += [f"{label} {row_id}" for row_id in session.scalars(query)]
    return found


def _remove_run_files(store: ArtifactStore, run_id: int) -> None:
    store.delete(f"runs/{run_id}")  # every checkpoint of the run
    store.delete(f"exports/run-{run_id}")  # its exports (domain/exports.py export_key)
    # The training log, and the checkpoints' working copy when storage is remote.
    shutil.rmtree(settings.checkpoints_dir / str(run_id), ignore_errors=True)


def delete_run(session: Session, *, run: Run, store: ArtifactStore) -> None:
    """Delete a finished run with its metrics, samples, checkpoints, evaluations and files."""
    _refuse_active_run(run, "it")
    if busy := _active_jobs(session, run_ids=[run.id]):
        raise Conflict(f"run {run.id} has {_names(busy)} in progress: wait for "
                       f"{'it' if len(busy) == 1 else 'them'} to finish before deleting the run")
    run_id = run.id
    session.delete(run)  # the database cascades metrics, samples, evaluations, generations
    session.commit()
    _remove_run_files(store, run_id)


def delete_evaluation(session: Session, *, evaluation: Evaluation) -> None:
    if evaluation.status in ACTIVE_JOB:
        raise Conflict(f"evaluation {evaluation.id} is {evaluation.status.value}: wait for it "
                       "to finish before deleting it")
    session.delete(evaluation)
    session.commit()


def delete_checkpoint(session: Session, *, run: Run, checkpoint: Checkpoint,
                      store: ArtifactStore) -> None:
    """Delete a checkpoint other than the run's best one."""
    if checkpoint.is_best:
        raise Conflict(f"step {checkpoint.step} is run {run.id}'s best checkpoint, which is kept "
                       "while the run exists: delete another one, or delete the run")
    _refuse_active_run(run, "its checkpoints")
    if busy := _active_jobs(session, run_ids=[run.id], step=checkpoint.step):
        raise Conflict(f"{_names(busy)} of checkpoint {checkpoint.step} "
                       f"{'is' if len(busy) == 1 else 'are'} in progress: wait for it to finish")
    key = checkpoint.storage_key
    session.delete(checkpoint)
    session.commit()
    store.delete(key)


def dataset_uses(session: Session, *, dataset: Dataset) -> tuple[list[Run], list[Evaluation]]:
    """Runs trained on the dataset, and evaluations of other runs scored on it."""
    runs = list(session.scalars(select(Run).where(Run.dataset_id == dataset.id)
                                .order_by(Run.id)))
    evaluations = list(session.scalars(
        select(Evaluation).where(Evaluation.dataset_id == dataset.id,
                                 Evaluation.run_id.not_in([r.id for r in runs]))
        .order_by(Evaluation.id)))
    return runs, evaluations


def delete_dataset(session: Session, *, dataset: Dataset, store: ArtifactStore,
                   cascade: bool = False) -> None:
    """Delete a dataset and its file; with ``cascade``, the runs and evaluations using it too."""
    runs, evaluations = dataset_uses(session, dataset=dataset)
    uses = [f"run {r.id} ({r.name})" for r in runs] + [f"evaluation {e.id}" for e in evaluations]
    if uses and not cascade:
        raise Conflict(f"dataset {dataset.id} is used by {_names(uses)}: delete "
                       f"{'it' if len(uses) == 1 else 'them'} first, or delete the dataset with "
                       "cascade=true to delete them with it")
    for run in runs:
        _refuse_active_run(run, f"dataset {dataset.id}")
    busy = _active_jobs(session, run_ids=[r.id for r in runs])
    busy += [f"evaluation {e.id}" for e in evaluations if e.status in ACTIVE_JOB]
    if busy:
        raise Conflict(f"{_names(busy)} on dataset {dataset.id} "
                       f"{'is' if len(busy) == 1 else 'are'} in progress: wait for "
                       f"{'it' if len(busy) == 1 else 'them'} to finish")
    for evaluation in evaluations:
        session.delete(evaluation)
    run_ids = [r.id for r in runs]
    for run in runs:
        session.delete(run)
    key, upload_key = dataset.storage_key, dataset.upload_key
    session.delete(dataset)
    session.commit()
    for run_id in run_ids:
        _remove_run_files(store, run_id)
    store.delete(key)
    if upload_key:  # deleted while a worker was still to process it
        store.delete(upload_key)
