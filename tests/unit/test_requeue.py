"""Re-publishing queued runs whose broker message was lost: the back-off rule with an explicit
``now``, and ``requeue_lost_runs`` against a real SQLite database and the in-process filesystem
broker (each test's runs target a queue of their own, so its messages can be counted)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from app.core.config import settings
from app.core.db import make_engine
from app.domain.models import Base, Run, RunStatus, utcnow
from app.domain.requeue import (
    REQUEUE_CAP_S,
    requeue_due,
    requeue_interval,
    requeue_lost_runs,
)
from tests.factories import add_run

R = 60
T0 = utcnow().replace(microsecond=0)


@pytest.fixture
def factory(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def queue() -> str:
    return f"requeue-{uuid.uuid4().hex[:8]}"


def messages(queue: str) -> int:
    return len(list(settings.broker_dir.glob(f"*.{queue}.msg")))


def make_run(session, queue: str = "training", status=RunStatus.queued, **fields) -> Run:
    fields.setdefault("published_at", T0)
    fields.setdefault("publish_count", 1)
    return add_run(session, status=status, queue=queue, created_at=T0, **fields)


def test_interval_doubles_per_publish_up_to_the_cap():
    assert [requeue_interval(R, n) for n in (0, 1, 2, 3, 4)] == [R, R, 2 * R, 4 * R, 8 * R]
    assert requeue_interval(R, 50) == REQUEUE_CAP_S
    # A wait longer than the cap is never shortened by it.
    assert requeue_interval(2 * REQUEUE_CAP_S, 3) == 2 * REQUEUE_CAP_S


@pytest.mark.parametrize("count,waited,due", [
    (1, R - 1, False), (1, R, True),
    (2, 2 * R - 1, False), (2, 2 * R, True),
    (3, 3 * R, False), (3, 4 * R, True),
    (40, REQUEUE_CAP_S - 1, False), (40, REQUEUE_CAP_S, True),
])
def test_due_after_its_back_off(count, waited, due):
    run = Run(status=RunStatus.queued, published_at=T0, publish_count=count, created_at=T0)
    assert requeue_due(run, now=T0 + timedelta(seconds=waited), requeue_after_s=R) is due


@pytest.mark.parametrize("status", [s for s in RunStatus if s != RunStatus.queued])
def test_only_queued_runs_are_due(status):
    run = Run(status=status, published_at=T0, publish_count=1, created_at=T0)
    assert not requeue_due(run, now=T0 + timedelta(days=1), requeue_after_s=R)


def test_zero_turns_it_off_and_old_rows_count_from_creation():
    late = T0 + timedelta(days=1)
    run = Run(status=RunStatus.queued, published_at=T0, publish_count=1, created_at=T0)
    assert not requeue_due(run, now=late, requeue_after_s=0)
    # Queued before migration 0004: never recorded a publish.
    legacy = Run(status=RunStatus.queued, published_at=None, publish_count=0, created_at=T0)
    assert not requeue_due(legacy, now=T0 + timedelta(seconds=R - 1), requeue_after_s=R)
    assert requeue_due(legacy, now=T0 + timedelta(seconds=R), requeue_after_s=R)


def test_requeue_publishes_due_runs_to_their_queue_and_records_it(factory, queue):
    with factory() as session:
        due = make_run(session, queue)
        recent = make_run(session, queue, published_at=T0 + timedelta(seconds=30))
        backed_off = make_run(session, queue, publish_count=3)  # waits 4R
        running = make_run(session, queue, status=RunStatus.running)
        before = messages(queue)

        now = T0 + timedelta(seconds=R)
        assert requeue_lost_runs(session, requeue_after_s=R, now=now) == [due.id]
        assert messages(queue) == before + 1
        for run in (due, recent, backed_off, running):
            session.refresh(run)
        assert (due.publish_count, due.published_at.replace(tzinfo=None)) == (
            2, now.replace(tzinfo=None))
        assert (recent.publish_count, backed_off.publish_count, running.publish_count) == (1, 3, 1)

        # The same pass again publishes nothing; the next one is due 2R after the re-publish.
        assert requeue_lost_runs(session, requeue_after_s=R, now=now) == []
        assert requeue_lost_runs(session, requeue_after_s=R,
                                 now=now + timedelta(seconds=2 * R - 1)) == [recent.id]
        assert requeue_lost_runs(session, requeue_after_s=R,
                                 now=now + timedelta(seconds=2 * R)) == [due.id]
        assert requeue_lost_runs(session, requeue_after_s=R,
                                 now=T0 + timedelta(seconds=4 * R)) == [backed_off.id]
        assert messages(queue) == before + 4


def test_concurrent_reapers_publish_once(factory, queue):
    with factory() as session:
        run = make_run(session, queue)
    before = messages(queue)
    now = T0 + timedelta(seconds=R)
    # Every reaper has read the run as due before any of them writes: the worst interleaving.
    all_read = threading.Barrier(4)
    published: list[list[int]] = []

    def after_execute(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "coalesce" in statement:
            all_read.wait(timeout=20)

    def reaper() -> None:
        with factory() as session:  # one web process each
            published.append(requeue_lost_runs(session, requeue_after_s=R, now=now))

    engine = factory.kw["bind"]
    event.listen(engine, "after_cursor_execute", after_execute)
    threads = [threading.Thread(target=reaper) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    event.remove(engine, "after_cursor_execute", after_execute)
    assert sorted(published) == [[], [], [], [run.id]]
    assert messages(queue) == before + 1
    with factory() as session:
        assert session.get(Run, run.id).publish_count == 2
