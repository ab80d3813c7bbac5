"""How a run's prompts are formatted: the one rule that training, evaluation and the playground
share, so a run is judged and tried on prompts shaped as it trained on them.

``uses_chat_template`` decides whether prompts go through the tokenizer's chat template (and
says what to fix when they must but cannot); ``format_prompts`` applies the decision to rows,
turning them into conversations with ``as_conversation``. Pure functions: the tokenizer is only
asked whether it has a chat template.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.dataset_rules import CONVERSATIONAL_FORMATS


def as_conversation(
    row: dict[str, Any], *, dataset_format: str, system_prompt: str | None = None
) -> dict[str, Any]:
    """The row as a conversation: a string prompt becomes a user message and a string
    completion/chosen/rejected an assistant message; the system prompt, when set, goes first.

    Other columns (a GRPO "answer", say) are kept: TRL hands them to the reward functions. A row
    that already starts with a system message keeps it. "text" rows and preference rows without
    a prompt have nowhere to put one and come back unchanged.
    """
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    if dataset_format == "messages":
        return {**row, "messages": _prepend(system, row["messages"])}
    if "prompt" not in row or dataset_format == "text":
        return row
    prompt = row["prompt"]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    updated = {**row, "prompt": _prepend(system, prompt)}
    # A conversational prompt needs conversational answers too.
    for column in ("completion", "chosen", "rejected"):
        if isinstance(row.get(column), str):
            updated[column] = [{"role": "assistant", "content": row[column]}]
    return updated


def chat_settings(hyperparameters: Mapping[str, Any]) -> tuple[str, str | None]:
    """(chat_template, system_prompt) of a run's stored hyperparameters; a blank system prompt
    is none. Launch stores every default, so only runs stored before chat_template existed lack
    the key: they trained string prompts as strings (unless a system prompt made them
    conversations), which is "off" here, so evaluating them later formats prompts as they
    trained."""
    system_prompt = hyperparameters.get("system_prompt")
    if not isinstance(system_prompt, str) or not system_prompt.strip():
        system_prompt = None
    return hyperparameters.get("chat_template") or "off", system_prompt


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer has a chat template (an empty one is none)."""
    return bool(getattr(tokenizer, "chat_template", None))


def has_message_prompts(rows: list[dict[str, Any]]) -> bool:
    """Whether the rows' prompts are message lists. A prompt-only dataset may hold text or
    message lists (one kind throughout, checked at upload), so the first row decides."""
    return bool(rows) and isinstance(rows[0].get("prompt"), list)


def uses_chat_template(
    *, dataset_format: str, chat_template: str, system_prompt: str | None, has_template: bool,
    message_prompts: bool = False,
) -> bool:
    """Whether the run's prompts go through the chat template: the one rule that training,
    evaluation and the playground share.

    Conversations always do (TRL applies the template to them): the conversational formats, and
    a prompt-only dataset whose prompts are message lists (``message_prompts``: its format does
    not say so). String prompts do under "on", under "auto" when the tokenizer has a template,
    and whenever there is a system prompt (it needs a system turn). "text" rows have no prompt
    and never do. Raises ValueError when the template is needed but the tokenizer has none.
    """
    if chat_template == "on" and not has_template:
        raise ValueError(
            "chat_template is 'on' but this model's tokenizer has no chat template: set "
            "chat_template to 'auto' or 'off', or choose a chat/instruct model"
        )
    if dataset_format == "text":
        return False
    conversations = dataset_format in CONVERSATIONAL_FORMATS or message_prompts
    if conversations:
        made_of = "conversations" if dataset_format in CONVERSATIONAL_FORMATS else (
            "message-list prompts")
        needed, why = True, f"the {dataset_format} dataset is made of {made_of}"
    elif system_prompt:
        needed, why = True, "system_prompt needs a system turn"
    else:
        needed, why = chat_template != "off" and has_template, ""
    if needed and not has_template:
        raise ValueError(
            f"{why}, but this model's tokenizer has no chat template: choose a chat/instruct model"
            + ("" if conversations else " or clear system_prompt")
        )
    return needed


def format_prompts(
    rows: list[dict[str, Any]], *, dataset_format: str, chat_template: str,
    system_prompt: str | None, has_template: bool,
) -> list[dict[str, Any]]:
    """Rows as the trainer sees them: conversations (with the system prompt) when
    ``uses_chat_template`` says so, else unchanged."""
    if not uses_chat_template(dataset_format=dataset_format, chat_template=chat_template,
                              system_prompt=system_prompt, has_template=has_template,
                              message_prompts=has_message_prompts(rows)):
        return rows
    return [as_conversation(r, dataset_format=dataset_format, system_prompt=system_prompt)
            for r in rows]


def _prepend(system: list[dict[str, str]], messages: list[dict]) -> list[dict]:
    if messages and messages[0].get("role") == "system":
        return messages
    return [*system, *messages]
