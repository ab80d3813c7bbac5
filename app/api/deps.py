"""Shared dependencies: the injected session and load-or-404 lookups."""

from __future__ import annotations

from collections.abc import Generator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from app.api.errors import id_in_range
from app.core.db import get_db
from app.core.storage import ArtifactStore, store
from app.domain.errors import NotFound
from app.domain.models import Dataset, Run

SessionDep = Annotated[Session, Depends(get_db)]


def get_store() -> Generator[ArtifactStore]:
    yield store


StoreDep = Annotated[ArtifactStore, Depends(get_store)]


def valid_dataset_id(dataset_id: int, session: SessionDep) -> Dataset:
    dataset = session.get(Dataset, dataset_id) if id_in_range(dataset_id) else None
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} not found")
    return dataset


def valid_run_id(run_id: int, session: SessionDep) -> Run:
    run = session.get(Run, run_id) if id_in_range(run_id) else None
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


DatasetDep = Annotated[Dataset, Depends(valid_dataset_id)]
RunDep = Annotated[Run, Depends(valid_run_id)]
