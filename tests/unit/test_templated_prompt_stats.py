"""Prompt lengths as the trainer counts them for max_prompt_length (dataset_stats
``TEMPLATED_PROMPT``), checked against the trainer's own count with the real SmolLM2 tokenizer."""

from __future__ import annotations

import json

import pytest

from app.domain.datasets import tokens
from app.domain.datasets.stats import TEMPLATED_PROMPT, length_stats
from app.domain.prompts import format_prompts
from app.domain.training_rows import prompt_token_count

ROWS = {
    "prompt_only": [{"prompt": "What is 2+2?", "answer": "4"},
                    {"prompt": "  Name three primes.\n", "answer": "2, 3, 5"},
                    {"prompt": "Why is the sky blue? " * 12, "answer": "Rayleigh"}],
    "conversational_prompt_only": [
        {"prompt": [{"role": "system", "content": "Answer in one word."},
                    {"role": "user", "content": "Capital of France?"}], "answer": "Paris"},
        {"prompt": [{"role": "user", "content": "2+2?"}], "answer": "4"}],
    "preference": [{"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."},
                   {"prompt": "Count to three, slowly and clearly.", "chosen": "1 2 3",
                    "rejected": "3"}],
}


def stats_of(rows, dataset_format):
    return length_stats(rows, dataset_format, count_tokens_batch=tokens.count_tokens_batch,
                        count_chat_prompts_batch=tokens.count_chat_prompt_tokens_batch)


@pytest.mark.parametrize("name", list(ROWS))
def test_templated_prompt_lengths_are_what_the_trainer_counts(name):
    rows = ROWS[name]
    dataset_format = "prompt_only" if name.endswith("prompt_only") else name
    stats = stats_of(rows, dataset_format)
    # What load_datasets does under the default chat_template "auto", then drop_long_prompts.
    trained = format_prompts(rows, dataset_format=dataset_format, chat_template="auto",
                             system_prompt=None, has_template=True)
    counts = sorted(prompt_token_count(row["prompt"], tokens.tokenizer()) for row in trained)
    summary = stats[TEMPLATED_PROMPT]["tokens"]
    assert (summary["min"], summary["max"]) == (counts[0], counts[-1])
    assert summary["mean"] == pytest.approx(sum(counts) / len(counts), abs=0.01)
    assert summary["min"] > stats["fields"]["prompt"]["tokens"]["min"]
    json.dumps(stats)  # stored as a JSON column


@pytest.mark.parametrize("dataset_format, row", [
    ("messages", {"messages": [{"role": "user", "content": "hi"}]}),
    ("text", {"text": "plain"}),
])
def test_no_templated_prompt_without_a_prompt_column(dataset_format, row):
    assert TEMPLATED_PROMPT not in stats_of([row], dataset_format)


def test_templated_prompt_is_optional_and_batched():
    rows = [{"prompt": "word " * (i % 7)} for i in range(2500)]
    assert TEMPLATED_PROMPT not in length_stats(rows, "prompt_only", lambda text: 1)
    calls: list[int] = []

    def count(conversations: list[list[dict]]) -> list[int]:  # one per message + its words
        calls.append(len(conversations))
        return [sum(1 + len(m["content"].split()) for m in c) for c in conversations]

    stats = length_stats(rows, "prompt_only", lambda text: len(text.split()),
                         count_chat_prompts_batch=count)
    assert sum(calls) == 2500 and max(calls) <= 1024
    assert stats[TEMPLATED_PROMPT]["tokens"]["max"] == 7 == stats["fields"]["prompt"]["tokens"][
        "max"] + 1
