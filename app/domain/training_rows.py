"""Read a run's normalised JSONL dataset, check its columns, and split off the eval rows.

The row-level functions are pure (lists of dicts in and out); the worker's
``worker.training.data.load_datasets`` reads the file and builds ``datasets`` objects from them.
Prompts are formatted with ``app.domain.prompts`` (the rule evaluation and the playground share)
before they are measured, so long prompts are counted as the trainer will tokenize them.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.core.storage import ArtifactStore
from app.domain.dataset_rules import FORMAT_COLUMNS, STRATEGY_FORMATS
from app.domain.models import Dataset
from app.domain.prompts import format_prompts, has_chat_template
from app.domain.rewards.columns import grpo_rows

logger = logging.getLogger(__name__)

def parse_rows(lines: Iterable[str | bytes], *, name: str, limit: int | None = None
               ) -> list[dict[str, Any]]:
    """One JSON object per non-blank line (at most ``limit``); a bad line is reported with its
    number."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if limit is not None and len(rows) >= limit:
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{name} line {number} is not valid JSON: {error.msg}") from None
        if not isinstance(row, dict):
            raise ValueError(f"{name} line {number} is not a JSON object")
        rows.append(row)
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of a local normalised JSONL file; ValueError when it has none."""
    with open(path, encoding="utf-8") as lines:
        rows = parse_rows(lines, name=path.name)
    if not rows:
        raise ValueError(f"{path.name} has no rows")
    return rows


def read_dataset_rows(store: ArtifactStore, dataset: Dataset, *, limit: int | None = None
                      ) -> list[dict[str, Any]]:
    """The first ``limit`` (default: all) rows of a stored dataset, wherever the storage is."""
    with store.open(dataset.storage_key, "rb") as lines:
        return parse_rows(lines, name=dataset.name, limit=limit)


def check_columns(rows: list[dict[str, Any]], *, strategy: str, dataset_format: str) -> None:
    """Raise ValueError when the format does not suit the strategy or a row lacks a column."""
    if dataset_format not in FORMAT_COLUMNS:
        raise ValueError(
            f"unknown dataset format {dataset_format!r}: "
            f"expected one of {', '.join(FORMAT_COLUMNS)}"
        )
    accepted = STRATEGY_FORMATS[strategy]
    if dataset_format not in accepted:
        raise ValueError(
            f"{strategy} needs a dataset in one of these formats: {', '.join(accepted)}"
        )
    for number, row in enumerate(rows, start=1):
        missing = [column for column in FORMAT_COLUMNS[dataset_format] if row.get(column) is None]
        if missing:
            raise ValueError(f"row {number} has no {', '.join(missing)} (format {dataset_format})")


def split_rows(
    rows: list[dict[str, Any]], *, eval_split: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Deterministic shuffle-split: the same rows and seed always give the same eval rows."""
    if eval_split <= 0:
        return rows, []
    if len(rows) < 2:
        raise ValueError("an eval split needs at least 2 rows")
    eval_count = min(max(1, round(len(rows) * eval_split)), len(rows) - 1)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held_out = set(order[:eval_count])
    train = [row for index, row in enumerate(rows) if index not in held_out]
    return train, [rows[index] for index in sorted(held_out)]


def prompt_token_count(prompt: str | list[dict], tokenizer) -> int:
    if isinstance(prompt, list):
        prompt = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def drop_long_prompts(
    rows: list[dict[str, Any]], *, tokenizer, max_prompt_length: int
) -> list[dict[str, Any]]:
    """TRL 1.16 no longer truncates prompts; half a question would only teach nonsense."""
    if not rows or "prompt" not in rows[0]:
        return rows
    kept = [
        row for row in rows if prompt_token_count(row["prompt"], tokenizer) <= max_prompt_length
    ]
    if not kept:
        raise ValueError(
            f"every prompt is longer than max_prompt_length = {max_prompt_length} tokens"
        )
    if len(kept) < len(rows):
        logger.warning(
            "dropped %d rows with prompts over %d tokens", len(rows) - len(kept), max_prompt_length
        )
    return kept


def drop_prompts_filling_max_length(
    rows: list[dict[str, Any]], *, tokenizer, max_length: int
) -> list[dict[str, Any]]:
    """SFT truncates each example to max_length; a prompt that fills it leaves no completion token
    to learn from, and TRL then drops the example silently (all of them: an empty dataset and an
    obscure sampler error). Drop them here, saying so, and refuse when none would be left."""
    if not rows or "prompt" not in rows[0]:
        return rows
    lengths = [prompt_token_count(row["prompt"], tokenizer) for row in rows]
    kept = [row for row, length in zip(rows, lengths, strict=True) if length < max_length]
    if not kept:
        templated = " with the chat template" if isinstance(rows[0]["prompt"], list) else ""
        raise ValueError(
            f"every prompt fills max_length = {max_length} tokens (the shortest is "
            f"{min(lengths)} tokens{templated}), so no completion token is left to train on: "
            "raise max_length" + (" or set chat_template to 'off'" if templated else "")
        )
    if len(kept) < len(rows):
        logger.warning("dropped %d rows whose prompts fill max_length = %d tokens",
                       len(rows) - len(kept), max_length)
    return kept


def prepare_rows(
    rows: list[dict[str, Any]], *, strategy: str, dataset_format: str, tokenizer: Any,
    chat_template: str, system_prompt: str | None, max_prompt_length: int | None = None,
    max_length: int | None = None,
) -> list[dict[str, Any]]:
    """Rows as the trainer sees them: checked, a GRPO row's completion turned into its answer,
    prompts formatted (``app.domain.prompts``), then the rows the length settings exclude
    dropped. Training and evaluation both call this, so an evaluation's held-out rows are exactly
    the ones training held out."""
    check_columns(rows, strategy=strategy, dataset_format=dataset_format)
    if strategy == "grpo":
        rows = grpo_rows(rows)
    # Convert first, then count: long prompts are measured as the trainer will tokenize them.
    rows = format_prompts(rows, dataset_format=dataset_format, chat_template=chat_template,
                          system_prompt=system_prompt, has_template=has_chat_template(tokenizer))
    if max_prompt_length:
        rows = drop_long_prompts(rows, tokenizer=tokenizer, max_prompt_length=max_prompt_length)
    if strategy == "sft" and max_length:
        rows = drop_prompts_filling_max_length(rows, tokenizer=tokenizer, max_length=max_length)
    return rows
