"""The reasoning/answer tag names shared by the format rewards and the preset system prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.errors import Invalid

_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class RewardConfigError(Invalid):
    """A reward configuration the user has to fix; the message says what to change."""


@dataclass(frozen=True)
class ReasoningTags:
    reasoning: str = "reasoning"
    answer: str = "answer"

    def __post_init__(self) -> None:
        for field, value in (("reasoning", self.reasoning), ("answer", self.answer)):
            if not isinstance(value, str) or not _TAG_NAME.fullmatch(value):
                raise RewardConfigError(
                    f"{field} tag {value!r} is not a valid tag name: use letters, digits, '_' "
                    "or '-', starting with a letter"
                )
        if self.reasoning == self.answer:
            raise RewardConfigError("the reasoning and answer tags must have different names")


def reasoning_system_prompt(reasoning_tag: str = "reasoning", answer_tag: str = "answer") -> str:
    """The preset system prompt asking for a reasoning block followed by an answer block."""
    tags = ReasoningTags(reasoning_tag, answer_tag)
    # The "..." placeholders carry no letters or digits, so a model that copies the template
    # verbatim earns nothing from the format rewards (they treat such blocks as empty).
    return (
        f"Think about the problem step by step inside <{tags.reasoning}> tags, then give only "
        f"the final answer inside <{tags.answer}> tags. Respond in exactly this format:\n"
        f"<{tags.reasoning}>\n...\n</{tags.reasoning}>\n<{tags.answer}>\n...\n</{tags.answer}>"
    )


REASONING_SYSTEM_PROMPT = reasoning_system_prompt()
