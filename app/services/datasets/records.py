"""Datasets: validate an uploaded file, store it normalised under a generated key, record it."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.storage import ArtifactStore
from app.domain.models import Dataset
from app.domain.tool_calls import is_tool_row
from app.domain.training_rows import read_dataset_rows
from app.services.datasets import tokens
from app.services.datasets.formats import (
    DatasetError,
    length_stats,
    parse_dataset,
    rows_for_preview,
)
from app.services.datasets.stats import TEMPLATED_CONVERSATION, summarize_counts

ALLOWED_EXTENSIONS = (".jsonl", ".json", ".csv", ".parquet")


def create_dataset(
    session: Session,
    *,
    store: ArtifactStore,
    upload_path: Path,
    filename: str,
    name: str | None = None,
) -> Dataset:
    """Parse and validate ``upload_path``; on success store normalised JSONL and a row.

    Raises DatasetError (nothing stored) when the file is not a usable dataset.
    """
    display_name = (name or Path(filename).stem or "dataset").strip()[:200]
    if not display_name:
        raise DatasetError("the dataset name is empty")
    parsed = parse_dataset(upload_path, filename=filename)
    stats = length_stats(
        parsed.rows,
        parsed.format,
        count_tokens=lambda text: tokens.count_tokens_batch([text])[0],
        count_tokens_batch=tokens.count_tokens_batch,
        count_chat_prompts_batch=tokens.count_chat_prompt_tokens_batch,
    )
    if parsed.format == "messages" and any(is_tool_row(row) for row in parsed.rows):
        stats[TEMPLATED_CONVERSATION] = {"tokens": summarize_counts(
            tokens.count_tool_conversation_tokens_batch(parsed.rows))}
    key = f"datasets/{uuid.uuid4().hex}.jsonl"
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as out:
        for row in parsed.rows:
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        normalised = Path(out.name)
    try:
        store.put_file(normalised, key)
        dataset = Dataset(
            name=display_name,
            original_filename=Path(filename).name[:255] or "upload",
            storage_key=key,
            file_format=parsed.file_format,
            format=parsed.format,
            num_rows=len(parsed.rows),
            columns=parsed.columns,
            stats=stats,
            size_bytes=upload_path.stat().st_size,
        )
        session.add(dataset)
        session.commit()
    except BaseException:
        session.rollback()
        store.delete(key)  # never leave a file without its row
        raise
    finally:
        normalised.unlink(missing_ok=True)
    return dataset


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.id.desc())))


def preview(store: ArtifactStore, dataset: Dataset, *, limit: int = 20, offset: int = 0
            ) -> list[dict]:
    """Rows ``offset + 1`` to ``offset + limit`` as display text (read up to the last of them)."""
    return rows_for_preview(read_dataset_rows(store, dataset, limit=offset + limit)[offset:], limit)
