"""Deployments: a run's checkpoint served behind an OpenAI-compatible endpoint on a worker host.

The web stores the request (``starting``) and publishes ``tunedeck.deploy`` to the run's queue; a
worker there starts a supervisor process (worker/deployments/supervisor.py) that claims the row,
merges the checkpoint, runs the engine on localhost with an authenticated pass-through in front,
heartbeats while it serves, stops it when asked, and marks the row ``failed`` with the engine's
last log lines if it dies. The reaper fails a deployment whose heartbeat stopped (a lost host).
Every status change goes through ``transition``.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.sql import transition_row, update_one
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.evaluations import EvaluationError, resolve_checkpoint
from app.domain.models import Deployment, DeploymentStatus, Run, utcnow
from app.domain.publish import DEPLOY, publish

S = DeploymentStatus
ALLOWED_DEPLOYMENT_TRANSITIONS: dict[DeploymentStatus, set[DeploymentStatus]] = {
    S.starting: {S.serving, S.stopped, S.failed},
    S.serving: {S.stopped, S.failed},
    S.stopped: set(),
    S.failed: set(),
}
ACTIVE = (S.starting, S.serving)
ENGINES = ("transformers", "vllm")
WORKER_LOST = "worker lost"


def transition(session: Session, *, deployment_id: int, to: DeploymentStatus,
               only_if: ColumnElement[bool] | None = None, **fields: Any) -> bool:
    """Atomically move the deployment to ``to`` if its status allows it; commits."""
    if not ALLOWED_DEPLOYMENT_TRANSITIONS[to]:
        fields.setdefault("finished_at", utcnow())
    return transition_row(session, Deployment, row_id=deployment_id, to=to,
                          allowed=ALLOWED_DEPLOYMENT_TRANSITIONS, only_if=only_if, **fields)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_deployment(session: Session, *, run: Run, checkpoint: int | str = "best",
                      engine: str = "transformers", port: int | None = None
                      ) -> tuple[Deployment, str | None]:
    """Queue a deployment; (row, the API key to show once, or None when TuneDeck has no token)."""
    if engine not in ENGINES:
        raise Invalid(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if port is not None and not 1024 <= port <= 65535:
        raise Invalid(f"port {port} is out of range: choose one from 1024 to 65535, or none to "
                      "let the worker pick a free one")
    try:
        step = resolve_checkpoint(session, run=run, which=checkpoint).step
    except EvaluationError as exc:
        raise Invalid(str(exc).replace("nothing to evaluate", "nothing to deploy")) from exc
    same = session.scalar(select(Deployment).where(
        Deployment.run_id == run.id, Deployment.checkpoint_step == step,
        Deployment.queue == run.queue, Deployment.status.in_(ACTIVE)))
    if same is not None:
        raise Conflict(f"deployment {same.id} already serves step {step} of run {run.id} on "
                       f"queue {run.queue} ({same.status}): use it, or stop it first")
    if port is not None:
        taken = session.scalar(select(Deployment).where(
            Deployment.port == port, Deployment.queue == run.queue,
            Deployment.status.in_(ACTIVE)))
        if taken is not None:
            raise Conflict(f"port {port} is already used by deployment {taken.id}: choose another "
                           "port, or none to let the worker pick one")
    key = secrets.token_urlsafe(24) if settings.auth_token else None
    deployment = Deployment(
        run_id=run.id, checkpoint_step=step, engine=engine, queue=run.queue, port=port,
        model_name=f"tunedeck-run{run.id}-step{step}",
        api_key_hash=hash_key(key) if key else None, phase="waiting for a worker")
    session.add(deployment)
    session.commit()
    publish(DEPLOY, deployment.id, queue=deployment.queue)
    return deployment, key


def get_deployment(session: Session, deployment_id: int) -> Deployment:
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return deployment


def list_deployments(session: Session, *, run_id: int | None = None) -> list[Deployment]:
    query = select(Deployment).order_by(Deployment.id.desc())
    if run_id is not None:
        query = query.where(Deployment.run_id == run_id)
    return list(session.scalars(query))


def request_stop(session: Session, deployment: Deployment) -> Deployment:
    """Ask the supervisor to stop; a deployment no worker claimed yet stops at once."""
    if deployment.status not in ACTIVE:
        raise Conflict(f"deployment {deployment.id} is already {deployment.status}")
    if deployment.worker is None and transition(
            session, deployment_id=deployment.id, to=S.stopped,
            only_if=Deployment.worker.is_(None), phase=None):
        session.refresh(deployment)
        return deployment
    update_one(session, Deployment, Deployment.id == deployment.id, stop_requested=True)
    session.commit()
    session.refresh(deployment)
    return deployment


def delete_deployment(session: Session, deployment: Deployment) -> None:
    if deployment.status in ACTIVE:
        raise Conflict(f"deployment {deployment.id} is {deployment.status}: stop it first")
    session.delete(deployment)
    session.commit()


def reap_lost_deployments(session: Session, *, lost_after_s: float) -> list[int]:
    """Fail every claimed deployment whose supervisor stopped heartbeating (its host is lost)."""
    cutoff = utcnow() - timedelta(seconds=lost_after_s)
    stale = and_(Deployment.worker.is_not(None),
                 or_(Deployment.heartbeat_at.is_(None), Deployment.heartbeat_at < cutoff))
    reaped = []
    for row in session.scalars(select(Deployment).where(Deployment.status.in_(ACTIVE), stale)):
        error = (f"{WORKER_LOST}: no heartbeat from {row.worker} for {lost_after_s:g} s; its "
                 "endpoint is gone")
        if transition(session, deployment_id=row.id, to=S.failed, only_if=stale, error=error):
            reaped.append(row.id)
    return reaped
