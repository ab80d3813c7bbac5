"""Dataset upload, listing, preview and delete."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from app.api.deps import DatasetDep, SessionDep, StoreDep
from app.core.config import settings
from app.domain.models import DatasetStatus
from app.schemas import DatasetPublic
from app.services.datasets import records as service
from app.services.datasets.uploads import receive_upload
from app.services.jobs import deletion

router = APIRouter(prefix="/api/datasets", tags=["datasets"])


@router.post("", status_code=201, response_model=DatasetPublic,
             responses={202: {"model": DatasetPublic, "description": "stored; a worker is "
                              "processing it (status \"processing\", then ready or failed)"}})
async def upload_dataset(request: Request, response: Response, session: SessionDep,
                         store: StoreDep) -> DatasetPublic:
    """Upload a dataset (multipart field `file`, optional `name`): JSONL, CSV or Parquet; a big
    file answers 202 at once and is processed in the background (poll the dataset)."""
    tmp_dir = settings.resolved_data_dir / "tmp"
    tmp_dir.mkdir(exist_ok=True)
    upload = await receive_upload(
        request, file_field="file", max_bytes=settings.max_upload_mb * 1024 * 1024,
        tmp_dir=tmp_dir,
    )
    try:
        dataset = await run_in_threadpool(
            # receive_upload raises UploadInvalid rather than return without a file
            service.create_dataset, session, store=store, upload_path=cast(Path, upload.path),
            filename=upload.filename, name=upload.fields.get("name") or None,
        )
    finally:
        upload.discard()
    if dataset.status == DatasetStatus.processing:
        response.status_code = 202
    return DatasetPublic.model_validate(dataset)


@router.get("", response_model=list[DatasetPublic])
def list_datasets(session: SessionDep) -> list[DatasetPublic]:
    """List datasets, newest first."""
    return [DatasetPublic.model_validate(d) for d in service.list_datasets(session)]


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset: DatasetDep) -> DatasetPublic:
    """Retrieve a dataset's metadata and statistics."""
    return DatasetPublic.model_validate(dataset)


@router.get("/{dataset_id}/preview")
def preview_dataset(
    dataset: DatasetDep, store: StoreDep, limit: int = Query(default=20, ge=1, le=200),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> dict:
    """A page of a dataset's rows as display text: `limit` rows from row `offset` (0-based)."""
    return {"columns": dataset.columns, "offset": offset, "total": dataset.num_rows,
            "rows": service.preview(store, dataset, limit=limit, offset=offset)}


@router.delete("/{dataset_id}", status_code=204,
               responses={409: {"description": "runs or evaluations use it"}})
def delete_dataset(
    dataset: DatasetDep, session: SessionDep, store: StoreDep,
    cascade: bool = Query(default=False, description="also delete the runs and evaluations "
                          "that use it (refused while any of them is in progress)"),
) -> Response:
    """Delete a dataset and its file; refused while runs or evaluations use it, unless cascade."""
    deletion.delete_dataset(session, dataset=dataset, store=store, cascade=cascade)
    return Response(status_code=204)
