"""Run again with changes: launch a copy of a run's configuration with some fields overridden."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RunDep, SessionDep
from app.domain.errors import NotFound
from app.domain.models import Dataset
from app.schemas import RunClone, RunPublic
from app.services.jobs import clone, launch

router = APIRouter(prefix="/api/runs", tags=["runs"])


@router.post("/{run_id}/clone", status_code=201, response_model=RunPublic)
def clone_run(run: RunDep, body: RunClone, session: SessionDep) -> RunPublic:
    """Launch a new run with this run's whole configuration, changed by the body's fields."""
    spec = clone.clone_spec(run, body)
    dataset = session.get(Dataset, spec.dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {spec.dataset_id} not found")
    return launch.run_public(session, launch.launch_run(session, dataset=dataset, spec=spec))
