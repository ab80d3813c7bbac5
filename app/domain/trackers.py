"""Metric mirrors: which trackers a run's curves are copied to (MLflow, TensorBoard, W&B,
Trackio), how that goes, and the health warning an unreachable tracker raises. The worker does
the copying (worker/trackers.py); TuneDeck's own database stays the source of truth."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.core.config import settings
from app.domain.models import Run


def server_defaults() -> dict[str, Any]:
    """The mirrors a run gets when its request names none (TUNEDECK_MLFLOW_TRACKING_URI,
    TUNEDECK_MLFLOW_EXPERIMENT, TUNEDECK_TENSORBOARD, TUNEDECK_WANDB_PROJECT,
    TUNEDECK_WANDB_ENTITY, TUNEDECK_TRACKIO_PROJECT)."""
    mlflow = ({"tracking_uri": settings.mlflow_tracking_uri,
               "experiment": settings.mlflow_experiment}
              if settings.mlflow_tracking_uri else None)
    # The mode stays the worker's (WANDB_MODE), read by wandb itself.
    wandb = ({"project": settings.wandb_project, "entity": settings.wandb_entity or None,
              "mode": None} if settings.wandb_project else None)
    trackio = {"project": settings.trackio_project} if settings.trackio_project else None
    return {"mlflow": mlflow, "tensorboard": settings.tensorboard, "wandb": wandb,
            "trackio": trackio}


def run_trackers(requested: dict[str, Any] | None) -> dict[str, Any]:
    """What a new run mirrors to, fixed at launch: its own choice, or the server's defaults."""
    chosen = server_defaults() if requested is None else requested
    return {"mlflow": chosen.get("mlflow"), "tensorboard": bool(chosen.get("tensorboard")),
            "wandb": chosen.get("wandb"), "trackio": chosen.get("trackio")}


def tensorboard_key(run_id: int) -> str:
    """Where a run's TensorBoard event files live in artifact storage."""
    return f"runs/{run_id}/tensorboard"


def record_status(session: Session, run_id: int, tracker: str, **fields: Any) -> None:
    """Merge fields into one tracker's status on the run row (a new dict, so the JSON column
    is written)."""
    run = session.get(Run, run_id)
    if run is None:
        return
    status = dict(run.tracker_status or {})
    status[tracker] = {**status.get(tracker, {}), **fields}
    run.tracker_status = status
    session.commit()


TRACKER_NAMES = {"mlflow": "MLflow", "tensorboard": "TensorBoard", "wandb": "W&B",
                 "trackio": "Trackio"}


def health_flags(run: Run) -> list[dict[str, Any]]:
    """A warning per tracker that could not be written (same fields as the metric health flags);
    the run itself is unaffected."""
    flags = []
    for tracker, status in sorted((run.tracker_status or {}).items()):
        if status.get("state") != "failing":
            continue
        name = TRACKER_NAMES.get(tracker, tracker)
        at = status.get("failed_at_step")
        flags.append({
            "code": f"tracker_unreachable:{tracker}",
            "severity": "warning",
            "message": f"{name} mirror failed"
                       + (f" at step {at}" if at is not None else "")
                       + f": {status.get('error', 'unknown error')}",
            "explanation": (f"The run trains on and keeps every metric in TuneDeck; {name} "
                            "stopped receiving them"
                            + (f" after {status.get('points', 0)} values" if "points" in status
                               else "")
                            + ". Check that the tracker is up and reachable from the worker."),
            "step": at,
        })
    return flags
