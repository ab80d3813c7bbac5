"""Server-side revocation of login sessions: logout records the session id, and the security
middleware (core/security.py) refuses a cookie whose id is recorded."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.core.db import session_scope
from app.domain.models import RevokedSession, utcnow


def revoke(session: Session, sid: str, *, lifetime_s: int) -> None:
    """Revoke ``sid`` for the rest of its lifetime; forget revocations that have expired."""
    now = utcnow()
    session.execute(delete(RevokedSession).where(RevokedSession.expires_at < now))
    if session.get(RevokedSession, sid) is None:
        session.add(RevokedSession(sid=sid, expires_at=now + timedelta(seconds=lifetime_s)))
    session.commit()


def is_revoked(sid: str) -> bool:
    with session_scope() as session:
        return session.scalar(select(RevokedSession.sid).where(RevokedSession.sid == sid)) \
            is not None
