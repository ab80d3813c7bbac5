"""Rows that tests insert straight into the database when a real upload would only cost time."""

from __future__ import annotations

import uuid
from typing import Any

from app.domain.models import Checkpoint, Dataset, Run, RunStatus


def add_dataset(session, *, name: str = "d", num_rows: int = 1,
                columns: tuple[str, ...] = ("prompt", "completion"), **fields: Any) -> Dataset:
    """A dataset row (no file behind it; prompt/completion unless ``format`` says otherwise),
    flushed so it has an id."""
    fields.setdefault("format", "prompt_completion")
    dataset = Dataset(name=name, original_filename="d.jsonl",
                      storage_key=f"test-{uuid.uuid4().hex}", file_format="jsonl",
                      num_rows=num_rows, columns=list(columns), size_bytes=10, **fields)
    session.add(dataset)
    session.flush()
    return dataset


def add_run(session, *, dataset: Dataset | None = None, status: RunStatus = RunStatus.queued,
            name: str = "r", strategy: str = "sft", base_model: str = "m", **fields: Any) -> Run:
    """A run row on ``dataset`` (a placeholder one when omitted), committed."""
    fields.setdefault("hyperparameters", {})
    run = Run(name=name, strategy=strategy, base_model=base_model, status=status,
              dataset=dataset or add_dataset(session, name=f"data-{name}", columns=("prompt",)),
              **fields)
    session.add(run)
    session.commit()
    return run


def add_checkpoint(session, *, run: Run, step: int, storage_key: str | None = None,
                   **fields: Any) -> Checkpoint:
    """A checkpoint row of ``run`` at ``step`` (no files behind it unless the caller adds them)."""
    checkpoint = Checkpoint(run_id=run.id, step=step,
                            storage_key=storage_key or f"runs/{run.id}/checkpoint-{step}", **fields)
    session.add(checkpoint)
    session.commit()
    return checkpoint
