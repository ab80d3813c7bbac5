"""Dead workers of evaluations and playground generations, with an explicit ``now`` against a real
SQLite database: ``reap_lost`` fails the running ones whose heartbeat is older than the threshold
("worker lost"), exactly as it fails runs, and leaves everything else alone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.domain.models import Evaluation, Generation, JobStatus, RunStatus
from app.domain.reaper import WORKER_LOST, dead_on_this_host, reap_lost
from tests.unit.test_requeue import T0, factory, make_run  # noqa: F401
from tests.unit.test_requeue_jobs import make_job

LOST = 45


@pytest.mark.parametrize("model", [Evaluation, Generation])
def test_only_running_jobs_with_a_stale_heartbeat_fail(factory, model):  # noqa: F811
    with factory() as session:
        run = make_run(session, status=RunStatus.completed)
        stale = make_job(session, model, run, status=JobStatus.running, worker="box:7",
                         started_at=T0, heartbeat_at=T0)
        fresh = make_job(session, model, run, status=JobStatus.running, started_at=T0,
                         heartbeat_at=T0 + timedelta(seconds=10))
        # Claimed by a worker older than migration 0006: counted from started_at.
        legacy = make_job(session, model, run, status=JobStatus.running, started_at=T0)
        queued = make_job(session, model, run)
        done = make_job(session, model, run, status=JobStatus.completed, heartbeat_at=T0)
        jobs = (stale, fresh, legacy, queued, done)

        assert reap_lost(session, model, lost_after_s=LOST,
                         now=T0 + timedelta(seconds=LOST)) == []  # not older yet
        now = T0 + timedelta(seconds=LOST + 1)
        assert reap_lost(session, model, lost_after_s=LOST, now=now) == [stale.id, legacy.id]
        assert reap_lost(session, model, lost_after_s=LOST, now=now) == []
        for job in jobs:
            session.refresh(job)
        assert [j.status for j in jobs] == [JobStatus.failed, JobStatus.running,
                                            JobStatus.failed, JobStatus.queued,
                                            JobStatus.completed]
        assert stale.error == f"{WORKER_LOST}: no heartbeat from box:7 for {LOST} s"
        assert legacy.error.startswith(f"{WORKER_LOST}: no heartbeat from its worker")
        assert stale.finished_at is not None and fresh.error is None and done.error is None


def test_a_heartbeat_landing_meanwhile_keeps_the_job(factory):  # noqa: F811
    with factory() as session:
        run = make_run(session, status=RunStatus.completed)
        job = make_job(session, Evaluation, run, status=JobStatus.running, started_at=T0,
                       heartbeat_at=T0)
        now = T0 + timedelta(seconds=LOST + 1)

        def heartbeat_arrives(candidate):  # runs between the SELECT and the UPDATE
            session.execute(Evaluation.__table__.update().where(Evaluation.id == candidate.id)
                            .values(heartbeat_at=now))
            session.commit()
            return True

        assert reap_lost(session, Evaluation, lost_after_s=LOST, now=now,
                         only=heartbeat_arrives) == []
        session.refresh(job)
        assert job.status == JobStatus.running


def test_worker_start_fails_jobs_of_its_dead_predecessors_on_this_host(factory):  # noqa: F811
    with factory() as session:
        run = make_run(session, status=RunStatus.completed)
        running = {"status": JobStatus.running, "started_at": T0, "heartbeat_at": T0}
        dead = make_job(session, Generation, run, worker="box:11", **running)
        alive = make_job(session, Generation, run, worker="box:10", **running)
        elsewhere = make_job(session, Generation, run, worker="other:11", **running)

        only = dead_on_this_host("box", alive=lambda pid: pid == 10)
        assert reap_lost(session, Generation, lost_after_s=15, now=T0 + timedelta(seconds=16),
                         only=only) == [dead.id]
        for job in (dead, alive, elsewhere):
            session.refresh(job)
        assert [j.status for j in (dead, alive, elsewhere)] == [
            JobStatus.failed, JobStatus.running, JobStatus.running]
