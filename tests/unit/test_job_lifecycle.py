"""Evaluations and playground generations change status only through jobs.transition: a claim
wins once, a finished job never changes, and a queued one cannot jump to completed."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import sessionmaker

from app.core.db import make_engine
from app.domain import jobs
from app.domain.models import Base, Evaluation, Generation, JobStatus
from tests.factories import add_checkpoint, add_run

Q, R, C, F = JobStatus.queued, JobStatus.running, JobStatus.completed, JobStatus.failed


@pytest.fixture
def session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    with sessionmaker(bind=engine, expire_on_commit=False)() as session:
        yield session
    engine.dispose()


def make_jobs(session) -> tuple[Evaluation, Generation]:
    run = add_run(session)
    add_checkpoint(session, run=run, step=2)
    evaluation = Evaluation(run_id=run.id, checkpoint_step=2, base_model="m", strategy="sft",
                            dataset_id=run.dataset_id, split="eval", scorers=[], params={})
    generation = Generation(run_id=run.id, checkpoint_step=2, prompt="hi", params={})
    session.add_all([evaluation, generation])
    session.commit()
    return evaluation, generation


@pytest.mark.parametrize("model", [Evaluation, Generation])
def test_claim_once_then_finish_once(session, model) -> None:
    job = next(j for j in make_jobs(session) if isinstance(j, model))
    assert not jobs.transition(session, model, job_id=job.id, to=C)  # queued cannot complete
    assert jobs.transition(session, model, job_id=job.id, to=R, worker="box:1")
    assert not jobs.transition(session, model, job_id=job.id, to=R)  # a redelivered task
    assert jobs.transition(session, model, job_id=job.id, to=C)
    for target in (Q, R, F, C):
        assert not jobs.transition(session, model, job_id=job.id, to=target)
    session.refresh(job)
    assert job.status == C and job.started_at and job.finished_at and job.worker == "box:1"


def test_a_queued_job_can_fail_and_then_stays_failed(session) -> None:
    evaluation, _ = make_jobs(session)
    assert jobs.transition(session, Evaluation, job_id=evaluation.id, to=F, error="no worker")
    assert not jobs.transition(session, Evaluation, job_id=evaluation.id, to=R)
    session.refresh(evaluation)
    assert evaluation.status == F and evaluation.error == "no worker"
