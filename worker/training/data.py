"""The job's dataset as ``datasets.Dataset`` objects for TRL, through the shared row pipeline
(``app.domain.training_rows``) that evaluation uses too."""

from __future__ import annotations

import logging
from pathlib import Path

from app.domain.tool_calls import for_trainer, is_tool_row, use_tool_template
from app.domain.training_rows import prepare_rows, read_rows, split_rows

logger = logging.getLogger(__name__)


def load_datasets(job, hp, tokenizer):
    """The job's dataset as (train, eval or None) ``datasets.Dataset`` objects ready for TRL."""
    from datasets import Dataset

    if hp.system_prompt and job.dataset_format == "text":
        logger.warning("system_prompt ignored: plain text rows have no place for it")
    rows = prepare_rows(
        read_rows(Path(job.dataset_path)), strategy=job.strategy,
        dataset_format=job.dataset_format, tokenizer=tokenizer, chat_template=hp.chat_template,
        system_prompt=hp.system_prompt, max_prompt_length=getattr(hp, "max_prompt_length", None),
        max_length=getattr(hp, "max_length", None),
    )
    if any(is_tool_row(row) for row in rows):
        # Tool-calling conversations: through a chat template that renders tools and calls
        # (the model's own, or TuneDeck's ChatML one), with tools and arguments as JSON text.
        if use_tool_template(tokenizer):
            logger.warning("the model's chat template ignores tools: using TuneDeck's ChatML "
                           "tool-calling template (saved with the adapter's tokenizer)")
        rows = [for_trainer(row) for row in rows]
    train, held_out = split_rows(rows, eval_split=hp.eval_split, seed=hp.seed)
    return Dataset.from_list(train), Dataset.from_list(held_out) if held_out else None
