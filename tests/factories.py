"""Rows that tests insert straight into the database when a real upload would only cost time."""

from __future__ import annotations

import uuid
from typing import Any

from app.domain.models import Dataset


def add_dataset(session, *, name: str = "d", num_rows: int = 1,
                columns: tuple[str, ...] = ("prompt", "completion"), **fields: Any) -> Dataset:
    """A prompt/completion dataset row (no file behind it), flushed so it has an id."""
    dataset = Dataset(name=name, original_filename="d.jsonl",
                      storage_key=f"test-{uuid.uuid4().hex}", file_format="jsonl",
                      format="prompt_completion", num_rows=num_rows, columns=list(columns),
                      size_bytes=10, **fields)
    session.add(dataset)
    session.flush()
    return dataset
