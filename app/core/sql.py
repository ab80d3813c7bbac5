"""The conditional UPDATE that every state change here is built on (claims, transitions, the
reaper, re-publishing): ``UPDATE … WHERE <the state we expect>``, and whether it matched.

Concurrent callers are then harmless: exactly one of them sees its row change. The caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, update
from sqlalchemy.orm import Session


def update_one(session: Session, model: type, *where: ColumnElement[bool], **values: Any) -> bool:
    """Set ``values`` on the one row of ``model`` matching every ``where`` condition; returns
    whether it matched (False: another caller changed that row first, or it never qualified)."""
    result = cast("CursorResult[Any]", session.execute(
        update(model).where(*where).values(**values).execution_options(synchronize_session=False)
    ))
    return result.rowcount == 1


def transition_row(session: Session, model: Any, *, row_id: int, to: Any,
                   allowed: Mapping[Any, set], only_if: ColumnElement[bool] | None = None,
                   **values: Any) -> bool:
    """Move row ``row_id`` to status ``to`` if ``allowed`` (status -> reachable statuses) lets
    its current status go there, checked in the UPDATE itself (``only_if`` adds a condition to
    the same statement); commits and returns whether it moved."""
    sources = [status for status, targets in allowed.items() if to in targets]
    conditions = [model.id == row_id, model.status.in_(sources)]
    if only_if is not None:
        conditions.append(only_if)
    changed = update_one(session, model, *conditions, status=to, **values)
    session.commit()
    return changed
