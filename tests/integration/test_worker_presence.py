"""A real Celery worker records the queues it consumes while it runs (domain/workers.py), which
is what silences the launch-time "no worker is listening" warning for those queues."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.orm import Session

from app.core.db import make_engine
from app.domain.workers import live_queues


@pytest.mark.slow
def test_a_running_worker_announces_its_queues(live_server):
    engine = make_engine(live_server.env.get("TUNEDECK_DATABASE_URL")
                         or f"sqlite:///{live_server.data_dir / 'tunedeck.db'}")
    try:
        deadline = time.monotonic() + 90
        queues: set[str] = set()
        while time.monotonic() < deadline:
            with Session(engine) as session:
                queues = live_queues(session)
            if "training" in queues:
                break
            time.sleep(1)
        assert "training" in queues, live_server.logs()
        assert "nobody-listens" not in queues
    finally:
        engine.dispose()
