"""The deploy task: starts the deployment's supervisor (worker/deployments/supervisor.py) as its
own process and returns, so a long-lived endpoint never holds the worker's one task slot. The
supervisor claims the row itself (a redelivered message starts one that finds nothing to claim)
and dies with this worker (then the reaper fails the deployment: its heartbeat stops)."""

from __future__ import annotations

import logging
import subprocess
import sys

from app.core.config import settings
from worker.celery_app import celery_app
from worker.children import die_with_parent, environment

log = logging.getLogger(__name__)
SUPERVISORS: list[subprocess.Popen[bytes]] = []  # kept, so exited ones are reaped (poll)


@celery_app.task(name="tunedeck.deploy", ignore_result=True)
def deploy(deployment_id: int) -> str:
    SUPERVISORS[:] = [p for p in SUPERVISORS if p.poll() is None]
    log_path = settings.resolved_data_dir / "deployments" / f"deployment-{deployment_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        SUPERVISORS.append(subprocess.Popen(
            [sys.executable, "-m", "worker.deployments.supervisor", str(deployment_id)],
            stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            env=environment()))
    return "started"
