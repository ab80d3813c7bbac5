"""Lost messages: a queued run whose task message vanished (Redis restarted without persistence, the
filesystem broker's folder wiped) would wait forever, so the reaper's passes (``ReaperThread`` in
domain/reaper.py) publish a run's task again to its queue once it has waited
``settings.requeue_after_s`` (R) since its last publish.

A duplicate is harmless: the task's claim is one conditional UPDATE, so the spare message finds
the run no longer queued and does nothing. The wait doubles after each re-publish, up to an hour
(R, 2R, 4R …), so a legitimate backlog (one worker busy on a 2-hour run, ten runs waiting) costs
each waiting run about log2(2 h / R) spare messages, not one per pass. We do not look into the
queue for the run's message instead: that differs per broker, and a message a worker has
prefetched (Redis keeps it "unacked" outside the list) would look lost. Several web processes agree
through ``run.publish_count``: the one whose ``UPDATE … WHERE publish_count = seen`` matches
publishes, the others skip that interval. Evaluations are re-published the same way (their task
claims them with the same conditional UPDATE).

Playground generations are not re-published: someone is watching the page, and after R seconds
without a worker they would rather read why and try again than keep waiting behind a two-hour
training run on the same queue. A generation still queued R seconds after it was created fails
("no worker took it"); a message that turns up later finds it no longer queued and does nothing.
R = 0 turns both off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.sql import update_one
from app.domain import jobs
from app.domain.evaluations import publish_evaluation
from app.domain.exports import publish_export
from app.domain.models import Evaluation, Export, Generation, JobStatus, Run, utcnow
from app.domain.runs import as_utc, enqueue

log = logging.getLogger(__name__)
REQUEUE_CAP_S = 3600.0
Queued = Run | Evaluation | Export  # rows that carry published_at and publish_count


def requeue_interval(requeue_after_s: float, publish_count: int) -> float:
    """Seconds a queued run waits after its ``publish_count``-th publish before the next one."""
    doublings = min(max(publish_count - 1, 0), 30)
    return min(requeue_after_s * 2**doublings, max(requeue_after_s, REQUEUE_CAP_S))


def requeue_due(run: Queued, *, now: datetime, requeue_after_s: float) -> bool:
    """Whether ``run`` (or an evaluation) has waited queued long enough since its last publish to
    publish again."""
    if run.status != "queued" or requeue_after_s <= 0:
        return False
    # Rows queued before published_at existed count from their creation.
    last = as_utc(run.published_at or run.created_at)
    waited = (now - last).total_seconds() if last else 0.0
    return waited >= requeue_interval(requeue_after_s, run.publish_count)


def take_publish_turn(session: Session, model: Any, row: Any, still: Any, *,
                      now: datetime) -> bool:
    """Count one more publication of ``row`` (a queued job, a processing upload) while
    ``still`` holds of it, unless another web process just counted one (its ``publish_count``
    moved on); commits. Whether this caller is the one to publish it now."""
    seen = row.publish_count
    ours = update_one(session, model, model.id == row.id, still, model.publish_count == seen,
                      published_at=now, publish_count=seen + 1)
    session.commit()
    return ours


def requeue_lost(
    session: Session, model: type[Run] | type[Evaluation] | type[Export],
    publish: Callable[[Session, Any], None], *, requeue_after_s: float,
    now: datetime | None = None,
) -> list[int]:
    """Call ``publish`` again for every queued row of ``model`` that is due (``requeue_due``);
    returns their ids."""
    if requeue_after_s <= 0:
        return []
    now = now or utcnow()
    # The shortest wait narrows the rows in SQL; requeue_due applies each row's back-off.
    earliest = now - timedelta(seconds=requeue_after_s)
    candidates: list[Queued] = list(session.scalars(select(model).where(
        model.status == "queued",
        func.coalesce(model.published_at, model.created_at) <= earliest,
    ).order_by(model.id)))
    requeued = []
    for row in candidates:
        if not requeue_due(row, now=now, requeue_after_s=requeue_after_s):
            continue
        row_id = row.id
        if not take_publish_turn(session, model, row, model.status == "queued", now=now):
            continue  # claimed, cancelled, or another web process published it
        try:
            publish(session, row)
        except Exception:  # broker down: the next interval tries again
            log.exception("re-publishing %s %s failed", model.__tablename__, row_id)
            continue
        requeued.append(row_id)
    if requeued:
        log.warning("re-published %s %s: queued longer than their re-publish interval",
                    model.__tablename__, requeued)
    return requeued


def requeue_lost_runs(
    session: Session, *, requeue_after_s: float, now: datetime | None = None
) -> list[int]:
    """Publish the task of every due queued run again (``train_run`` on the run's queue)."""
    return requeue_lost(session, Run, lambda _session, run: enqueue(run),
                        requeue_after_s=requeue_after_s, now=now)


def requeue_lost_evaluations(
    session: Session, *, requeue_after_s: float, now: datetime | None = None
) -> list[int]:
    """Publish the task of every due queued evaluation again (to its run's queue)."""
    return requeue_lost(session, Evaluation, publish_evaluation,
                        requeue_after_s=requeue_after_s, now=now)


def requeue_lost_exports(
    session: Session, *, requeue_after_s: float, now: datetime | None = None
) -> list[int]:
    """Publish the task of every due queued export again (to its run's queue)."""
    return requeue_lost(session, Export, publish_export, requeue_after_s=requeue_after_s, now=now)


def expire_lost_generations(
    session: Session, *, after_s: float, now: datetime | None = None
) -> list[int]:
    """Fail every playground generation queued for ``after_s`` or longer; returns ids."""
    if after_s <= 0:
        return []
    now = now or utcnow()
    cutoff = now - timedelta(seconds=after_s)
    waiting = [Generation.status == JobStatus.queued, Generation.created_at <= cutoff]
    expired = []
    ids = list(session.scalars(select(Generation.id).where(*waiting).order_by(Generation.id)))
    for generation_id in ids:
        # Re-checked in the UPDATE: a worker that claims it meanwhile wins.
        failed = jobs.transition(
            session, Generation, job_id=generation_id, to=JobStatus.failed,
            only_if=Generation.created_at <= cutoff, finished_at=now,
            error=f"no worker took this request within {after_s:g} s: the workers on its queue "
                  "are busy (e.g. training) or not running; try again later")
        if failed:
            expired.append(generation_id)
    if expired:
        log.warning("failed playground generations %s: no worker took them", expired)
    return expired
