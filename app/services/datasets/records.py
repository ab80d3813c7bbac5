"""Datasets: check an upload, store it normalised under a generated key, record it. Small uploads
are processed here; bigger ones are stored as received and processed by a worker."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.storage import ArtifactStore
from app.domain import publish
from app.domain.datasets.files import check_upload
from app.domain.datasets.formats import DatasetError, rows_for_preview
from app.domain.datasets.processing import process_file, transition
from app.domain.models import Dataset, DatasetStatus, utcnow
from app.domain.training_rows import read_dataset_rows

ALLOWED_EXTENSIONS = (".jsonl", ".json", ".csv", ".parquet")


def create_dataset(
    session: Session,
    *,
    store: ArtifactStore,
    upload_path: Path,
    filename: str,
    name: str | None = None,
    inline_max_bytes: int | None = None,
) -> Dataset:
    """Check ``upload_path``; store it and record a dataset row.

    Uploads up to ``inline_max_bytes`` (default: the ``inline_upload_max_kb`` setting) are
    processed now: DatasetError (nothing stored) when the file is not a usable dataset. Bigger
    ones get the cheap checks only (extension, first bytes, Parquet footer) and are stored as
    received; the row says "processing" until a worker has read every row.
    """
    display_name = (name or Path(filename).stem or "dataset").strip()[:200]
    if not display_name:
        raise DatasetError("the dataset name is empty")
    size = upload_path.stat().st_size
    limit = settings.inline_upload_max_kb * 1024 if inline_max_bytes is None else inline_max_bytes
    kind = check_upload(upload_path, filename=filename)
    key = f"datasets/{uuid.uuid4().hex}.jsonl"
    dataset = Dataset(name=display_name, original_filename=Path(filename).name[:255] or "upload",
                      storage_key=key, size_bytes=size)
    if size > limit:
        return _queue_processing(session, store=store, dataset=dataset, upload_path=upload_path,
                                 kind=kind)
    with tempfile.TemporaryDirectory(prefix="tunedeck-upload-") as folder:
        normalised = Path(folder) / "rows.jsonl"
        processed = process_file(upload_path, filename=filename, out=normalised)
        try:
            store.put_file(normalised, key)
            dataset.file_format, dataset.format = processed.file_format, processed.format
            dataset.num_rows, dataset.columns = processed.num_rows, processed.columns
            dataset.stats = processed.stats
            session.add(dataset)
            session.commit()
        except BaseException:
            session.rollback()
            store.delete(key)  # never leave a file without its row
            raise
    return dataset


def _queue_processing(session: Session, *, store: ArtifactStore, dataset: Dataset,
                      upload_path: Path, kind: str) -> Dataset:
    upload_key = f"uploads/{uuid.uuid4().hex}.{kind}"
    store.put_file(upload_path, upload_key)
    dataset.upload_key, dataset.status, dataset.progress = upload_key, DatasetStatus.processing, 0.0
    dataset.file_format, dataset.format, dataset.num_rows, dataset.columns = kind, "", 0, []
    dataset.stats = {}
    dataset.published_at, dataset.publish_count = utcnow(), 1  # published just below
    try:
        session.add(dataset)
        session.commit()
    except BaseException:
        session.rollback()
        store.delete(upload_key)
        raise
    try:
        publish.publish(publish.PROCESS_DATASET, dataset.id, queue=settings.dataset_queue)
    except Exception as exc:  # the broker is down: say so on the dataset rather than wait forever
        transition(session, dataset_id=dataset.id, to=DatasetStatus.failed,
                   error=f"the upload could not be queued for processing ({exc}) — upload it "
                   "again once the broker is reachable", upload_key=None)
        store.delete(upload_key)
    session.refresh(dataset)
    return dataset


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.id.desc())))


def preview(store: ArtifactStore, dataset: Dataset, *, limit: int = 20, offset: int = 0
            ) -> list[dict]:
    """Rows ``offset + 1`` to ``offset + limit`` as display text (read up to the last of them)."""
    return rows_for_preview(read_dataset_rows(store, dataset, limit=offset + limit)[offset:], limit)
