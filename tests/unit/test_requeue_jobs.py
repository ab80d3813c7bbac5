"""Lost messages of evaluations and playground generations, with an explicit ``now``: a queued
evaluation is re-published to its run's queue by the runs' back-off rule; a queued generation
fails once it has waited the re-publish interval (real SQLite, in-process filesystem broker)."""

from __future__ import annotations

import json
from datetime import timedelta

from app.core.config import settings
from app.domain.models import Evaluation, Generation, JobStatus, RunStatus
from app.domain.requeue import expire_lost_generations, requeue_due, requeue_lost_evaluations
from tests.unit.test_requeue import T0, R, factory, make_run, messages, queue  # noqa: F401


def make_job(session, model, run, status=JobStatus.queued, created_at=T0, **fields):
    if model is Evaluation:
        fields = {"base_model": "m", "strategy": "sft", "dataset_id": run.dataset_id,
                  "split": "eval", "published_at": T0, "publish_count": 1, **fields}
    else:
        fields = {"prompt": "hi", **fields}
    job = model(run_id=run.id, checkpoint_step=2, status=status, created_at=created_at, **fields)
    session.add(job)
    session.commit()
    return job


def test_evaluations_follow_the_runs_back_off():
    evaluation = Evaluation(status=JobStatus.queued, published_at=T0, publish_count=2,
                            created_at=T0)
    assert not requeue_due(evaluation, now=T0 + timedelta(seconds=2 * R - 1), requeue_after_s=R)
    assert requeue_due(evaluation, now=T0 + timedelta(seconds=2 * R), requeue_after_s=R)
    evaluation.status = JobStatus.running
    assert not requeue_due(evaluation, now=T0 + timedelta(days=1), requeue_after_s=R)


def test_due_evaluations_are_published_to_their_runs_queue(factory, queue):  # noqa: F811
    with factory() as session:
        run = make_run(session, queue, status=RunStatus.completed)
        due = make_job(session, Evaluation, run)
        legacy = make_job(session, Evaluation, run, published_at=None, publish_count=0)
        recent = make_job(session, Evaluation, run, published_at=T0 + timedelta(seconds=30))
        running = make_job(session, Evaluation, run, status=JobStatus.running)
        before = set(settings.broker_dir.glob(f"*.{queue}.msg"))

        now = T0 + timedelta(seconds=R)
        assert requeue_lost_evaluations(session, requeue_after_s=R, now=now) == [due.id, legacy.id]
        published = set(settings.broker_dir.glob(f"*.{queue}.msg")) - before
        headers = [json.loads(path.read_text())["headers"] for path in published]
        assert sorted((h["task"], h["argsrepr"]) for h in headers) == [
            ("tunedeck.evaluate", f"[{due.id}]"), ("tunedeck.evaluate", f"[{legacy.id}]")]
        for job in (due, legacy, recent, running):
            session.refresh(job)
        assert [j.publish_count for j in (due, legacy, recent, running)] == [2, 1, 1, 1]

        # Nothing again in the same pass; then each waits by its count (legacy's first was now).
        assert requeue_lost_evaluations(session, requeue_after_s=R, now=now) == []
        assert requeue_lost_evaluations(session, requeue_after_s=R,
                                        now=now + timedelta(seconds=R)) == [legacy.id, recent.id]
        assert requeue_lost_evaluations(session, requeue_after_s=R,
                                        now=now + timedelta(seconds=2 * R)) == [due.id]
        assert requeue_lost_evaluations(session, requeue_after_s=0, now=T0 + timedelta(days=1)) \
            == []
        assert messages(queue) == len(before) + 5


def test_waiting_generations_fail_with_a_reason(factory, queue):  # noqa: F811
    with factory() as session:
        run = make_run(session, queue, status=RunStatus.completed)
        old = make_job(session, Generation, run)
        recent = make_job(session, Generation, run, created_at=T0 + timedelta(seconds=1))
        running = make_job(session, Generation, run, status=JobStatus.running)
        before = messages(queue)

        now = T0 + timedelta(seconds=R)
        assert expire_lost_generations(session, after_s=0, now=now) == []
        assert expire_lost_generations(session, after_s=R, now=now) == [old.id]
        assert expire_lost_generations(session, after_s=R, now=now) == []
        for job in (old, recent, running):
            session.refresh(job)
        assert [j.status for j in (old, recent, running)] == [
            JobStatus.failed, JobStatus.queued, JobStatus.running]
        assert old.error.startswith(f"no worker took this request within {R} s")
        assert old.finished_at is not None
        assert messages(queue) == before  # never re-published
        assert expire_lost_generations(session, after_s=R,
                                       now=now + timedelta(seconds=1)) == [recent.id]
