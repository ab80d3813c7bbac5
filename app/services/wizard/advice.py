"""The strategy wizard around the decision tree (app.services.wizard.decision_tree): answers read
from a query string, the advice POST /api/strategy and the /wizard page show, and the pre-filled
launch link.

Pure functions: the caller looks up datasets and settings and passes in what they say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from app.core.numbers import parse_count
from app.domain.datasets.formats import FORMAT_LABELS, STRATEGY_FORMATS
from app.domain.errors import Invalid
from app.domain.rewards import reasoning_system_prompt
from app.services.jobs.launch_fit import TAG_REWARDS
from app.services.wizard.decision_tree import (
    ANSWER_TYPES,
    MissingAnswer,
    PathStep,
    StrategyAnswers,
    preset,
    recommend,
    suggest_rewards,
)

ANSWER_FIELDS = ("labelled", "verifiable", "num_examples", "reasoning_helps")
_YES_NO = {"yes": True, "no": False, "true": True, "false": False}

# Per-leaf changes to the strategy's preset: with a tiny dataset SFT memorises, so train less
# and hold out an eval split to see it happen (the sft_tiny caveat says the same).
LEAF_PRESETS: dict[str, dict[str, Any]] = {"sft_tiny": {"max_steps": 30, "eval_split": 0.1}}

# Which answer types fit a GRPO leaf. Without labels there is no answer column, so only rewards
# that judge the completion alone (json_valid, length/format) can work.
LEAF_ANSWER_TYPES: dict[str, tuple[str, ...]] = {
    "rft_grpo_reasoning": ANSWER_TYPES,
    "rft_grpo_unlabelled": ("json", "free"),
}
ANSWER_TYPE_LABELS = {
    "number": "A number (maths, counting, prices)",
    "text": "A short exact text (a label, a name, a yes/no)",
    "json": "Valid JSON (extraction, structured output)",
    "free": "Free text judged by format and length",
}


class InvalidAnswer(Invalid):
    """An answer the tree cannot use; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def parse_answers(query: Mapping[str, str]) -> StrategyAnswers:
    """Answers from a query string ('yes'/'no', a count); unreadable values count as unanswered."""

    def flag(name: str) -> bool | None:
        return _YES_NO.get((query.get(name) or "").strip().lower())

    raw_count = (query.get("num_examples") or "").replace(",", "").replace("_", "").strip()
    return StrategyAnswers(
        labelled=flag("labelled"),
        verifiable=flag("verifiable"),
        num_examples=parse_count(raw_count),
        reasoning_helps=flag("reasoning_helps"),
    )


def answered_path(answers: StrategyAnswers, *, large_threshold: int) -> list[PathStep]:
    """The steps answered so far, up to the leaf or to the first missing answer."""
    try:
        return recommend(answers, large_threshold=large_threshold).path
    except MissingAnswer as missing:
        return missing.path


def answers_query(
    answers: StrategyAnswers, path: list[PathStep], *, dataset_id: int | None = None,
    answer_type: str | None = None, drop_last: bool = False,
) -> dict[str, str]:
    """The query string of the answers on ``path`` (stale answers off the path are left out).

    drop_last: leave the last answered question out too, which is what the Back button links to.
    A count that came from the dataset goes back with its dataset.
    """
    steps = path[:-1] if drop_last and path else path
    query: dict[str, str] = {}
    for step in steps:
        value = getattr(answers, step.question_id)
        if step.question_id == "num_examples":
            if dataset_id is None:
                query["num_examples"] = str(value)
        else:
            query[step.question_id] = "yes" if value else "no"
    count_dropped = drop_last and path and path[-1].question_id == "num_examples"
    if dataset_id is not None and not count_dropped:
        query["dataset_id"] = str(dataset_id)
    if answer_type:
        query["answer_type"] = answer_type
    return query


def advise(
    answers: StrategyAnswers, *, large_threshold: int, answer_type: str | None = None,
    dataset_id: int | None = None, dataset_format: str | None = None,
) -> dict[str, Any]:
    """The recommendation, its preset and launch link; MissingAnswer / InvalidAnswer otherwise.

    dataset_format: the chosen dataset's format, to warn when it cannot feed the strategy.
    """
    recommendation = recommend(answers, large_threshold=large_threshold)
    strategy, leaf = recommendation.strategy, recommendation.leaf
    hyperparameters = preset(strategy) | LEAF_PRESETS.get(leaf, {})
    rewards: list[dict[str, Any]] = []
    if strategy == "grpo":
        allowed = LEAF_ANSWER_TYPES[leaf]
        answer_type = answer_type or allowed[0]
        if answer_type not in allowed:
            raise InvalidAnswer(
                "answer_type",
                f"answer_type {answer_type!r} does not fit this path: choose one of "
                f"{', '.join(allowed)} (without labels there is no answer column to compare with)",
            )
        rewards = suggest_rewards(answer_type)
        if any(r["name"] in TAG_REWARDS for r in rewards):
            # A format reward scores the tags: the prompt has to ask for them (issue 17, 2).
            hyperparameters["system_prompt"] = reasoning_system_prompt("reasoning", "answer")
    else:
        answer_type = None  # rewards are a GRPO input; an answer kept in the URL is harmless
    caveats = list(recommendation.caveats)
    if dataset_format and dataset_format not in STRATEGY_FORMATS[strategy]:
        shown = FORMAT_LABELS.get(dataset_format, dataset_format)
        caveats.insert(0, f"The chosen dataset is {shown}: {strategy.upper()} needs the format "
                          "below, so upload a dataset in it before launching.")
    return {
        "strategy": strategy,
        "leaf": leaf,
        "path": [{"question_id": s.question_id, "question": s.question, "answer": s.answer_label}
                 for s in recommendation.path],
        "explanation": recommendation.explanation,
        "data_format": asdict(recommendation.data_format),
        "caveats": caveats,
        "preset": hyperparameters,
        "answer_type": answer_type,
        "suggested_rewards": rewards,
        "launch_url": launch_url(strategy, hyperparameters, dataset_id=dataset_id, rewards=rewards),
        "num_examples": answers.num_examples,
        "large_threshold": large_threshold,
    }


def launch_url(
    strategy: str, hyperparameters: Mapping[str, Any], *, dataset_id: int | None,
    rewards: list[dict[str, Any]],
) -> str:
    """/runs/new pre-filled: the form reads any field from the query string.

    Rewards travel as ``rewards=name:weight,name:weight`` (the GRPO section parses that).
    """
    query: list[tuple[str, str]] = [("strategy", strategy)]
    query += [(name, _query_value(value)) for name, value in hyperparameters.items()]
    if dataset_id is not None:
        query.append(("dataset_id", str(dataset_id)))
    if rewards:
        query.append(("rewards", ",".join(f"{r['name']}:{r['weight']:g}" for r in rewards)))
    return "/runs/new?" + urlencode(query, safe=":,")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
