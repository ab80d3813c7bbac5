"""Turn an upload into a stored dataset: stream its rows, check and normalise each one, write them
as JSON lines and measure their lengths in batches (tokens with the fast tokenizer), so memory
stays bounded whatever the file's size.

The web calls ``process_file`` itself for small uploads; bigger ones are stored as received and
processed by a worker (``tunedeck.process_dataset`` → ``process_stored_upload``) while the
dataset row says "processing", with its progress, then "ready" or "failed" with the row and
column to fix. Every status change goes through ``transition``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.core.db import session_scope
from app.core.sql import transition_row, update_one
from app.core.storage import ArtifactStore
from app.domain.dataset_rules import DatasetError
from app.domain.datasets import tokens
from app.domain.datasets.formats import stream_dataset
from app.domain.datasets.stats import TEMPLATED_CONVERSATION, LengthStats, summarize_counts
from app.domain.models import Dataset, DatasetStatus
from app.domain.tool_calls import is_tool_row

log = logging.getLogger(__name__)
# Rows measured at once: the fast tokenizer is quickest on batches, and a bounded batch keeps
# memory flat on a million rows.
BATCH_ROWS = 1024
BATCH_BYTES = 8 * 1024 * 1024  # ... or fewer when rows are long
PROGRESS_EVERY_S = 1.0
# Stats key naming what counted the tokens (or that only characters were counted).
TOKENIZER_KEY = "tokenizer"

ALLOWED_DATASET_TRANSITIONS: dict[DatasetStatus, set[DatasetStatus]] = {
    DatasetStatus.processing: {DatasetStatus.ready, DatasetStatus.failed},
    DatasetStatus.ready: set(),
    DatasetStatus.failed: set(),
}


@dataclass
class Processed:
    format: str
    columns: list[str]
    file_format: str
    num_rows: int
    stats: dict[str, Any]


def process_file(path: Path, *, filename: str, out: Path,
                 on_progress: Callable[[float], None] | None = None,
                 max_row_bytes: int = 1_000_000, max_rows: int = 1_000_000) -> Processed:
    """Check every row of the upload at ``path`` and write it normalised to ``out`` (JSON lines,
    every row with every column); DatasetError, naming the row and column, at the first
    problem. ``on_progress`` gets the fraction of the file read, about once a second."""
    stream = stream_dataset(path, filename=filename, max_row_bytes=max_row_bytes,
                            max_rows=max_rows)
    counter = tokens.counter()
    lengths: LengthStats | None = None
    tools = _ToolConversations(counter, out)
    batch: list[dict] = []
    batch_bytes = num_rows = 0
    reported = time.monotonic()
    with out.open("w", encoding="utf-8") as handle:
        for row in stream:
            line = json.dumps(row, ensure_ascii=False, default=str)
            handle.write(line + "\n")
            batch.append(row)
            num_rows += 1
            batch_bytes += len(line)
            if len(batch) >= BATCH_ROWS or batch_bytes >= BATCH_BYTES:
                lengths = lengths or _lengths(stream.format, counter)
                lengths.add(batch)
                tools.add(stream.format, batch, rows_before=num_rows - len(batch), handle=handle)
                batch, batch_bytes = [], 0
                if on_progress is not None and time.monotonic() - reported >= PROGRESS_EVERY_S:
                    on_progress(stream.fraction)
                    reported = time.monotonic()
        lengths = lengths or _lengths(stream.format, counter)
        lengths.add(batch)
        tools.add(stream.format, batch, rows_before=num_rows - len(batch), handle=handle)
    if stream.columns_changed:  # a later row brought a column the rows before it lack
        _fill_columns(out, stream.columns)
    stats = lengths.result()
    if tools.counts:
        stats[TEMPLATED_CONVERSATION] = {"tokens": summarize_counts(tools.counts)}
    stats[TOKENIZER_KEY] = counter.source
    return Processed(format=stream.format, columns=stream.columns,
                     file_format=stream.file_format, num_rows=num_rows, stats=stats)


class _ToolConversations:
    """Tokens of whole tool-calling conversations as training renders them (with their tools):
    counted for every row once the first tool-calling row is seen, the rows before it re-read
    from the output written so far (so memory stays bounded)."""

    def __init__(self, counter: tokens.TokenCounter, out: Path) -> None:
        self.counts: list[int] = []
        self._on = False
        self._usable = counter.count_batch is not None
        self._out = out

    def add(self, format: str, batch: list[dict], *, rows_before: int, handle: Any) -> None:
        if format != "messages" or not self._usable or not batch:
            return
        if not self._on:
            if not any(is_tool_row(row) for row in batch):
                return
            self._on = True
            handle.flush()
            with self._out.open(encoding="utf-8") as written:
                earlier: list[dict] = []
                for _, line in zip(range(rows_before), written, strict=False):
                    earlier.append(json.loads(line))
                    if len(earlier) >= BATCH_ROWS:
                        self.counts += tokens.count_tool_conversation_tokens_batch(earlier)
                        earlier = []
                if earlier:
                    self.counts += tokens.count_tool_conversation_tokens_batch(earlier)
        self.counts += tokens.count_tool_conversation_tokens_batch(batch)


def _lengths(format: str, counter: tokens.TokenCounter) -> LengthStats:
    return LengthStats(format, count_tokens_batch=counter.count_batch,
                       count_chat_prompts_batch=counter.count_chat_prompts_batch)


def _fill_columns(path: Path, columns: list[str]) -> None:
    filled = path.with_name(path.name + ".filled")
    with path.open(encoding="utf-8") as rows, filled.open("w", encoding="utf-8") as out:
        for line in rows:
            row = json.loads(line)
            for column in columns:
                row.setdefault(column, None)
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    filled.replace(path)


def transition(session: Session, *, dataset_id: int, to: DatasetStatus, **fields: Any) -> bool:
    """Atomically move the dataset to ``to`` if its status allows it (a finished one never
    changes); commits and returns whether it moved."""
    return transition_row(session, Dataset, row_id=dataset_id, to=to,
                          allowed=ALLOWED_DATASET_TRANSITIONS, **fields)


def process_stored_upload(dataset_id: int, *, store: ArtifactStore,
                          max_row_bytes: int = 1_000_000, max_rows: int = 1_000_000) -> str:
    """The worker's side: process the upload stored for a "processing" dataset, store its
    normalised rows and make it ready, or failed with the reason. Returns the outcome."""
    with session_scope() as session:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None or dataset.status != DatasetStatus.processing or not dataset.upload_key:
            return "skipped"
        upload_key, filename = dataset.upload_key, dataset.original_filename
        storage_key = dataset.storage_key

    def progress(fraction: float) -> None:
        with session_scope() as session:
            update_one(session, Dataset, Dataset.id == dataset_id,
                       Dataset.status == DatasetStatus.processing, progress=round(fraction, 3))

    with tempfile.TemporaryDirectory(prefix="tunedeck-dataset-") as folder:
        out = Path(folder) / "rows.jsonl"
        try:
            processed = process_file(store.local_path(upload_key), filename=filename, out=out,
                                     on_progress=progress, max_row_bytes=max_row_bytes,
                                     max_rows=max_rows)
            store.put_file(out, storage_key)
        except DatasetError as exc:
            return _fail(dataset_id, str(exc), store, upload_key)
        except Exception as exc:
            log.exception("processing dataset %s failed", dataset_id)
            return _fail(dataset_id, f"processing failed unexpectedly ({type(exc).__name__}: "
                                     f"{str(exc)[:300]}) — upload it again", store, upload_key)
    with session_scope() as session:
        made_ready = transition(session, dataset_id=dataset_id, to=DatasetStatus.ready,
                                format=processed.format, columns=processed.columns,
                                file_format=processed.file_format, num_rows=processed.num_rows,
                                stats=processed.stats, progress=1.0, upload_key=None)
    if not made_ready:  # deleted while it was processed: leave no file behind
        store.delete(storage_key)
    store.delete(upload_key)
    return "ready"


def _fail(dataset_id: int, error: str, store: ArtifactStore, upload_key: str) -> str:
    with session_scope() as session:
        transition(session, dataset_id=dataset_id, to=DatasetStatus.failed, error=error,
                   upload_key=None)
    store.delete(upload_key)  # the error says what to fix; the user uploads a corrected file
    return "failed"
