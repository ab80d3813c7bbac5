"""A run's request as a YAML run file: what `tunedeck runs launch FILE` takes
(app/client/runfile.py) to queue the same configuration again."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Response

from app.api.deps import RunDep
from app.domain.models import Run
from app.schemas import RunCreate

router = APIRouter(tags=["runs"])


def run_request(run: Run) -> dict[str, Any]:
    """The stored run as the API's run request, every default already filled in (so that a
    change of default never changes what relaunching the file trains)."""
    request = RunCreate(
        dataset_id=run.dataset_id, strategy=run.strategy,  # type: ignore[arg-type]
        base_model=run.base_model, name=run.name, hyperparameters=run.hyperparameters or {},
        reward_functions=run.reward_functions or [],
        backend=run.requested_backend,  # type: ignore[arg-type]
        queue=run.queue,
        trackers=run.trackers,
    )
    return request.model_dump(mode="json", exclude_none=True)


def run_yaml(run: Run) -> str:
    header = (f"# TuneDeck run #{run.id} ({run.name}) as a run file.\n"
              "# Launch it again: tunedeck runs launch THIS_FILE [--set key=value]\n")
    return header + yaml.safe_dump(run_request(run), sort_keys=False, allow_unicode=True)


@router.get("/api/runs/{run_id}/run.yaml", response_class=Response,
            responses={200: {"content": {"application/yaml": {}}}})
def download_run_file(run: RunDep) -> Response:
    """The run's configuration as a YAML run file (the same fields as POST /api/runs)."""
    return Response(run_yaml(run), media_type="application/yaml",
                    headers={"Content-Disposition":
                             f'attachment; filename="tunedeck-run{run.id}.yaml"'})
