"""What each TRL dataset type holds and which strategy trains on it: the one table the upload's
validation, the launch checks, the wizard and the training rows all read."""

from __future__ import annotations

from app.domain.errors import Invalid


class DatasetError(Invalid):
    """A problem with a dataset, worded for the person who uploaded it."""


# Required columns per TRL dataset type, which are exactly the columns that hold training text;
# any other column is kept (GRPO reward kwargs).
FORMAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "prompt_completion": ("prompt", "completion"),
    "conversational_prompt_completion": ("prompt", "completion"),
    "messages": ("messages",),
    "text": ("text",),
    "prompt_only": ("prompt",),
    "preference": ("prompt", "chosen", "rejected"),
    "conversational_preference": ("prompt", "chosen", "rejected"),
}
# Preference rows whose prompt is the shared start of chosen and rejected: detected at upload,
# then stored with the prompt split off (app.domain.preference_rows) as the explicit format.
IMPLICIT_PREFERENCE = {"preference": "implicit prompt preference",
                       "conversational_preference": "implicit prompt conversational preference"}
FORMAT_LABELS = {
    "prompt_completion": "prompt/completion text",
    "conversational_prompt_completion": "prompt/completion message lists",
    "messages": "chat messages",
    "text": "plain text",
    "prompt_only": "prompts only",
    "preference": "prompt/chosen/rejected text",
    "conversational_preference": "prompt/chosen/rejected message lists",
}
CONVERSATIONAL_FORMATS = frozenset(
    {"conversational_prompt_completion", "messages", "conversational_preference"})
STRATEGY_FORMATS: dict[str, tuple[str, ...]] = {
    "sft": ("prompt_completion", "conversational_prompt_completion", "messages", "text"),
    # GRPO generates its own completions from the prompt; a dataset's completion is the reference
    # (see rewards.columns.grpo_rows) and other columns go to reward functions.
    "grpo": ("prompt_only", "prompt_completion", "conversational_prompt_completion"),
    "dpo": ("preference", "conversational_preference"),
}
STRATEGY_NEEDS = {
    "sft": "prompt and completion columns, a messages column, or a text column",
    "grpo": "a prompt column (text or messages), plus any columns your reward functions read "
    "such as answer",
    "dpo": "prompt, chosen and rejected columns",
}


def check_format_for_strategy(
    format: str, strategy: str, *, columns: list[str] | None = None
) -> None:
    """Raise DatasetError naming the columns ``strategy`` needs when ``format`` can't feed it."""
    if strategy not in STRATEGY_FORMATS:
        raise ValueError(f"unknown strategy {strategy!r}")
    if format in STRATEGY_FORMATS[strategy]:
        return
    found = f" (columns {list(columns)})" if columns else ""
    raise DatasetError(
        f"{strategy.upper()} needs {STRATEGY_NEEDS[strategy]}; this dataset is "
        f"{FORMAT_LABELS.get(format, format)}{found}"
    )
