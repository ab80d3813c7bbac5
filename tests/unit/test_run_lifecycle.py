"""The run state machine, resume and the dead-worker reaper against a real SQLite database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app.core.db import make_engine
from app.core.storage import ArtifactStore
from app.domain import reaper
from app.domain.models import (
    ALLOWED_TRANSITIONS,
    Base,
    Metric,
    Run,
    RunStatus,
    utcnow,
)
from app.domain.runs import RunStateError, transition
from app.services.jobs.runs import request_cancel, resume_run
from tests.factories import add_checkpoint, add_run

S = RunStatus


@pytest.fixture
def session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        yield session
    engine.dispose()


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(f"file://{tmp_path / 'artifacts'}", cache_dir=tmp_path / "cache")


def make_run(session, status=S.queued, **fields) -> Run:
    return add_run(session, status=status, **fields)


def test_completed_is_final_and_failed_cancelled_only_requeue():
    assert ALLOWED_TRANSITIONS[S.completed] == set()
    assert ALLOWED_TRANSITIONS[S.failed] == ALLOWED_TRANSITIONS[S.cancelled] == {S.queued}


@pytest.mark.parametrize("start,to,ok", [
    (S.queued, S.running, True), (S.queued, S.cancelled, True), (S.running, S.completed, True),
    (S.running, S.queued, False), (S.completed, S.running, False), (S.completed, S.queued, False),
    (S.failed, S.running, False), (S.cancelled, S.completed, False), (S.failed, S.queued, True),
])
def test_transition_is_refused_unless_allowed(session, start, to, ok):
    run = make_run(session, status=start)
    assert transition(session, run_id=run.id, to=to) is ok
    session.refresh(run)
    assert run.status == (to if ok else start)


def test_claim_is_won_once(session):
    run = make_run(session)
    assert transition(session, run_id=run.id, to=S.running, worker="a")
    assert not transition(session, run_id=run.id, to=S.running, worker="b")  # redelivery
    session.refresh(run)
    assert run.worker == "a"


def test_cancel_queued_and_refuse_cancel_of_finished(session):
    run = request_cancel(session, run=make_run(session))
    assert run.status == S.cancelled and run.cancel_requested
    running = request_cancel(session, run=make_run(session, status=S.running))
    assert running.status == S.running and running.cancel_requested  # stops at its next step
    with pytest.raises(RunStateError, match="already completed"):
        request_cancel(session, run=make_run(session, status=S.completed))


def _checkpoint(session, store, run, step, *, complete=True):
    key = f"runs/{run.id}/checkpoint-{step}"
    folder = store.local_path(key)
    folder.mkdir(parents=True)
    if complete:
        (folder / "trainer_state.json").write_text("{}")
    add_checkpoint(session, run=run, step=step, storage_key=key)


def test_resume_from_latest_usable_checkpoint(session, store):
    run = make_run(session, status=S.failed, error="worker lost", step=7, cancel_requested=True,
                   finished_at=utcnow(), attempt=1)
    _checkpoint(session, store, run, 4)
    _checkpoint(session, store, run, 6, complete=False)  # interrupted while saving
    session.add_all([Metric(run_id=run.id, step=s, name="loss", value=1 / s) for s in range(1, 8)])
    session.commit()

    resumed = resume_run(session, run=run, store=store)
    assert resumed.status == S.queued and resumed.resumed_from_step == 4 and resumed.step == 4
    assert resumed.error is None and not resumed.cancel_requested and resumed.finished_at is None
    steps = session.scalars(select(Metric.step).where(Metric.run_id == run.id))
    assert sorted(steps) == [1, 2, 3, 4]  # the new attempt logs 5.. again
    with pytest.raises(RunStateError, match="queued"):
        resume_run(session, run=resumed, store=store)


@pytest.mark.parametrize("status", [S.completed, S.running, S.queued])
def test_resume_refused_unless_failed_or_cancelled(session, store, status):
    run = make_run(session, status=status)
    _checkpoint(session, store, run, 2)
    with pytest.raises(RunStateError, match="only failed or cancelled"):
        resume_run(session, run=run, store=store)


def test_resume_needs_a_checkpoint(session, store):
    with pytest.raises(RunStateError, match="no checkpoint"):
        resume_run(session, run=make_run(session, status=S.cancelled), store=store)


def test_reaper_fails_only_stale_running_runs(session):
    now = utcnow()
    stale = make_run(session, status=S.running, heartbeat_at=now - timedelta(seconds=50),
                     worker="h:1")
    fresh = make_run(session, status=S.running, heartbeat_at=now - timedelta(seconds=5))
    never = make_run(session, status=S.running, started_at=now - timedelta(seconds=90))
    queued = make_run(session, status=S.queued)
    done = make_run(session, status=S.completed, heartbeat_at=now - timedelta(hours=1))
    session.add(Metric(run_id=stale.id, step=1, name="loss", value=0.5))
    session.commit()

    assert sorted(reaper.reap_lost(session, Run, lost_after_s=45, now=now)) == [stale.id, never.id]
    for run, status in ((stale, S.failed), (fresh, S.running), (never, S.failed),
                        (queued, S.queued), (done, S.completed)):
        session.refresh(run)
        assert run.status == status
    assert stale.error.startswith(reaper.WORKER_LOST) and stale.finished_at is not None
    assert session.scalar(select(Metric.value).where(Metric.run_id == stale.id)) == 0.5
    assert reaper.reap_lost(session, Run, lost_after_s=45, now=now) == []


def test_reaper_spares_a_run_whose_heartbeat_lands_meanwhile(session):
    now = utcnow()
    run = make_run(session, status=S.running, heartbeat_at=now - timedelta(seconds=60))

    def heartbeat_arrives(candidate):  # runs between the SELECT and the UPDATE
        session.execute(Run.__table__.update().where(Run.id == candidate.id)
                        .values(heartbeat_at=now))
        session.commit()
        return True

    assert reaper.reap_lost(session, Run, lost_after_s=45, now=now, only=heartbeat_arrives) == []
    session.refresh(run)
    assert run.status == S.running


def test_dead_on_this_host():
    check = reaper.dead_on_this_host("box", alive=lambda pid: pid == 10)
    assert check(Run(worker="box:11")) and not check(Run(worker="box:10"))
    assert not check(Run(worker="other:11")) and not check(Run(worker=None))


def test_timing_detects_within_a_minute_by_default():
    from app.core.config import Settings

    lost_after = Settings().worker_lost_after_s
    assert lost_after + reaper.reap_interval(lost_after) <= 60
    assert reaper.heartbeat_interval(lost_after) <= lost_after / 4
    assert reaper.pid_alive(__import__("os").getpid())
