"""Liveness and dependency health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.api.deps import SessionDep
from app.core.config import settings

router = APIRouter(tags=["health"])


def broker_state() -> str:
    url = settings.celery_broker_url
    if url.startswith("filesystem"):
        return "ok" if settings.broker_dir.is_dir() else "missing broker folder"
    if url.startswith("redis"):
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        except Exception as exc:  # any failure is "down", with the reason
            return f"down: {type(exc).__name__}"
        return "ok"
    return "unchecked"


@router.get("/healthz")
def healthz(session: SessionDep) -> JSONResponse:
    """Database and broker state; 503 when either is down."""
    try:
        session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # report, don't crash
        database = f"down: {type(exc).__name__}"
    broker = broker_state()
    healthy = database == "ok" and broker in ("ok", "unchecked")
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "database": database, "broker": broker},
        status_code=200 if healthy else 503,
    )
