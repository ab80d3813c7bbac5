"""Which dataset columns reach GRPO reward functions, and how a prompt/completion row gets there.

GRPO samples its own completions, so a dataset's completion is the reference answer the rewards
check, not text to imitate. Training and evaluation prepare rows with ``grpo_rows``; the web app
checks a reward's ``column`` against ``reward_columns`` before it queues a run. No torch here.
"""

from __future__ import annotations

from typing import Any

from app.domain.rewards.extract import completion_text

# The column the answer rewards read by default, and where a row's completion goes.
ANSWER_COLUMN = "answer"


def grpo_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GRPO rows: a row's completion becomes its reference answer, as plain text in "answer".

    It cannot stay "completion": TRL's GRPOTrainer hands the reward functions every column except
    prompt and completion, and the chat template would make it an assistant message. As text
    ([{"role": "assistant", "content": "42"}] -> "42") in the column the answer rewards read by
    default, it works with no settings. A row with its own answer keeps it and loses the
    completion. Rows without a completion come back unchanged; input rows are not modified.
    """
    prepared = []
    for row in rows:
        if "completion" not in row:
            prepared.append(row)
            continue
        updated = {key: value for key, value in row.items() if key != "completion"}
        if ANSWER_COLUMN not in row:
            updated[ANSWER_COLUMN] = reference_text(row["completion"])
        prepared.append(updated)
    return prepared


def reward_columns(columns: list[str]) -> list[str]:
    """The columns GRPO reward functions receive by name, after ``grpo_rows``: all but prompt
    (TRL passes the prompts on their own) and completion (it arrives as "answer")."""
    named = [column for column in columns if column not in ("prompt", "completion")]
    if "completion" in columns and ANSWER_COLUMN not in columns:
        named.append(ANSWER_COLUMN)
    return named


def reference_text(value: Any) -> str:
    """A reference answer as text: a string as is, a conversational completion its assistant
    text, anything else (a JSON number, say) as written."""
    if isinstance(value, str | list | tuple | dict):
        return completion_text(value)
    return "" if value is None else str(value)
