"""The run page's "waiting for a worker" notice: which command starts a worker for a queued run's
queue, and whether the run has waited long enough to say so."""

from __future__ import annotations

import re
from typing import Any

from app.core.config import settings
from app.domain.models import utcnow
from app.domain.runs import as_utc
from app.schemas import RunPublic

# A queued run's page says how to start a worker once it has waited this long (or was re-sent).
QUEUE_HINT_AFTER_S = 30


def worker_command_for(queue: str) -> str:
    """The ``tunedeck worker`` command whose worker listens on ``queue`` (queue names: app/cli.py:
    --gpus N adds queue "gpu-N" to the default one)."""
    gpu = re.fullmatch(r"gpu-(\d+)", queue)
    if gpu:
        return f"tunedeck worker --gpus {gpu.group(1)}"
    if queue == settings.default_queue:
        return "tunedeck worker"
    return f"tunedeck worker --queues {queue}"


def queue_notice(run: RunPublic, *, no_worker: bool = False) -> dict[str, Any]:
    """What the run page's "waiting for a worker" notice shows; run_detail.js keeps it current.
    ``no_worker``: no live worker consumes the run's queue (domain/workers.py): say so at once."""
    now = utcnow()
    since = as_utc(run.published_at or run.created_at) or now
    waited_long = run.publish_count > 1 or (now - since).total_seconds() > QUEUE_HINT_AFTER_S
    return {"command": worker_command_for(run.queue), "hint": waited_long or no_worker,
            "no_worker": no_worker, "now": now.isoformat(),
            "after_s": QUEUE_HINT_AFTER_S, "requeue_after_s": settings.requeue_after_s}
