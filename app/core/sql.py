"""The conditional UPDATE that every state change here is built on (claims, transitions, the
reaper, re-publishing): ``UPDATE … WHERE <the state we expect>``, and whether it matched.

Concurrent callers are then harmless: exactly one of them sees its row change. The caller commits.
"""

from __future__ import annotations

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
