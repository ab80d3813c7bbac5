"""Which dataset the new-run form pre-selects, and what it tells the form about each dataset.

A link (the wizard's "Launch with this") names a strategy and maybe reward functions but often
no dataset: the form then selects the newest dataset that fits them, one whose own columns hold
what the rewards read before one that gets it from its completion, and none at all (with a
prompt to pick) when nothing fits, rather than the newest dataset whatever it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.domain.dataset_rules import STRATEGY_FORMATS
from app.domain.models import Dataset
from app.domain.rewards import REWARD_FUNCTIONS
from app.domain.rewards.columns import reward_columns

# Rewards that check the reasoning/answer tags: a prompt has to ask the model for them.
TAG_REWARDS = ("strict_format", "soft_format", "tag_count")


def reward_names(param: str | None) -> list[str]:
    """Names in a ``rewards=exact_answer:1,soft_format:0.25`` link parameter."""
    names = (item.split(":")[0].strip() for item in (param or "").split(","))
    return [name for name in names if name]


def read_columns(names: Sequence[str]) -> set[str]:
    """Dataset columns these built-in rewards read (their default ``column``)."""
    return {str(REWARD_FUNCTIONS[n].defaults["column"]) for n in names
            if n in REWARD_FUNCTIONS and "column" in REWARD_FUNCTIONS[n].defaults}


def fit_rank(dataset: Dataset, *, strategy: str, rewards: Sequence[str]) -> int | None:
    """0: fits as it is; 1: fits once its completion is the rewards' answer; None: does not."""
    if dataset.format not in STRATEGY_FORMATS.get(strategy, ()):
        return None
    if strategy != "grpo":
        return 0
    needed = read_columns(rewards)
    if needed <= set(dataset.columns or []):
        return 0
    return 1 if needed <= set(reward_columns(list(dataset.columns or []))) else None


def suggest_dataset(datasets: Sequence[Dataset], *, strategy: str,
                    rewards: Sequence[str]) -> Dataset | None:
    """The best-fitting dataset, the newest among equals (``datasets`` come newest first)."""
    ranked = [(rank, index, d) for index, d in enumerate(datasets)
              if (rank := fit_rank(d, strategy=strategy, rewards=rewards)) is not None]
    return min(ranked, key=lambda item: item[:2])[2] if ranked else None


def dataset_facts(dataset: Dataset) -> dict[str, Any]:
    """What the form's live checks need about a dataset: its format and the reward columns."""
    return {"format": dataset.format, "name": dataset.name,
            "reward_columns": reward_columns(list(dataset.columns or []))}
