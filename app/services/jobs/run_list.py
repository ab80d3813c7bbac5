"""The runs list at scale: filtered and paged in SQL (newest first), and its poll, which sends only
the runs of the page that changed since the last one, plus the page's ids so the page can drop
runs that left it (deleted, or no longer matching its filters)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, String, cast, func, select
from sqlalchemy.orm import Session

from app.domain.models import Run, RunStatus, utcnow
from app.domain.runs import as_utc

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Rows are stamped with the clock of whoever wrote them (web or worker): a poll looks this far
# before its cursor, so a worker whose clock is a little behind the web's is not missed. The page
# re-applies the few runs it already has; nothing else changes.
POLL_OVERLAP = timedelta(seconds=5)


@dataclass(frozen=True)
class RunFilters:
    status: str | None = None
    strategy: str | None = None
    dataset_id: int | None = None
    # Part of the run's name, any case.
    q: str | None = None
    sweep_id: int | None = None
    tag: str | None = None

    def apply(self, query: Select) -> Select:
        if self.status:
            query = query.where(Run.status == RunStatus(self.status))
        if self.strategy:
            query = query.where(Run.strategy == self.strategy)
        if self.dataset_id:
            query = query.where(Run.dataset_id == self.dataset_id)
        if self.sweep_id:
            query = query.where(Run.sweep_id == self.sweep_id)
        if self.tag and self.tag.strip():
            # Tags are a JSON list: match the quoted tag in its text (both backends store
            # JSON as text; a tag cannot hold a quote, so "x" matches the whole tag x only).
            tag = json.dumps(self.tag.strip())
            for char in ("\\", "%", "_"):
                tag = tag.replace(char, "\\" + char)
            query = query.where(cast(Run.tags, String).like(f"%{tag}%", escape="\\"))
        if self.q and self.q.strip():
            pattern = self.q.strip().lower()
            for char in ("\\", "%", "_"):
                pattern = pattern.replace(char, "\\" + char)
            query = query.where(func.lower(Run.name).like(f"%{pattern}%", escape="\\"))
        return query

    @property
    def active(self) -> bool:
        return bool(self.status or self.strategy or self.dataset_id or self.sweep_id
                    or (self.q or "").strip() or (self.tag or "").strip())


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class RunChanges:
    runs: list[Run]  # the runs of the page changed since the cursor, in page order
    page_ids: list[int]  # every run on the page now, in order
    total: int
    cursor: datetime  # pass back as ``since`` next time


def count_runs(session: Session, filters: RunFilters) -> int:
    return session.scalar(filters.apply(select(func.count(Run.id)))) or 0


def page_runs(session: Session, *, filters: RunFilters, limit: int = DEFAULT_PAGE_SIZE,
              offset: int = 0) -> RunPage:
    """One page of runs matching ``filters``, newest first, and how many match in all."""
    query = filters.apply(select(Run)).order_by(Run.id.desc()).limit(limit).offset(offset)
    return RunPage(runs=list(session.scalars(query)), total=count_runs(session, filters),
                   limit=limit, offset=offset)


def changed_runs(session: Session, *, filters: RunFilters, since: datetime | None,
                 limit: int = DEFAULT_PAGE_SIZE, offset: int = 0) -> RunChanges:
    """What a page polling with ``since`` (the previous answer's cursor) needs: the page's runs
    that changed since then (all of them without ``since``) and the page's ids now."""
    cursor = utcnow()
    page_ids = list(session.scalars(
        filters.apply(select(Run.id)).order_by(Run.id.desc()).limit(limit).offset(offset)))
    query = select(Run).where(Run.id.in_(page_ids)).order_by(Run.id.desc())
    if since is not None:
        since = as_utc(since)
        assert since is not None
        # Rows written before updated_at existed (NULL) never count as changed.
        query = query.where(Run.updated_at >= since - POLL_OVERLAP)
    runs = list(session.scalars(query)) if page_ids else []
    return RunChanges(runs=runs, page_ids=page_ids, total=count_runs(session, filters),
                      cursor=cursor)
