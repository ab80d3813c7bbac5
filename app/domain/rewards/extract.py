"""Pure helpers that turn a model completion into text, an answer, and a comparable number."""

from __future__ import annotations

import math
import re
from typing import Any

# A number as models write it: "-3", "1,000", "2.5". The look-behind keeps "12-5" from
# yielding -5 and "v1.2.3" from yielding .3.
_NUMBER_IN_TEXT = re.compile(r"(?<![\d.])-?\d+(?:,\d{3})*(?:\.\d+)?")
_WHOLE_NUMBER = re.compile(r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)")
_HASH_ANSWER = re.compile(r"####[ \t]*([^\n]*)")


def completion_text(completion: Any) -> str:
    """The text of a completion, standard (a string) or conversational (a list of messages)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, list | tuple):
        return ""
    parts = []
    for message in completion:
        if not isinstance(message, dict) or message.get("role", "assistant") != "assistant":
            continue
        parts.append(_content_text(message.get("content")))
    return "\n".join(part for part in parts if part)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    # Multimodal messages carry a list of typed parts: keep the text ones.
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    return ""


def has_content(text: str) -> bool:
    """Whether a tag's content says anything: blanks and template "..." do not count."""
    return any(ch.isalnum() for ch in text)


def tag_blocks(text: str, tag: str) -> list[str]:
    """The stripped contents of every <tag>...</tag> block, in order."""
    pattern = rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>"
    return [block.strip() for block in re.findall(pattern, text, re.DOTALL)]


def extract_answer(text: Any, *, answer_tag: str = "answer") -> str | None:
    """The answer in a completion: the last non-empty <answer> block, else a "#### 42" line,
    else the last number in the text; None when there is none of these."""
    if not isinstance(text, str) or not text.strip():
        return None
    blocks = [b for b in tag_blocks(text, answer_tag) if has_content(b)]
    if blocks:
        return blocks[-1]
    hashes = [h.strip() for h in _HASH_ANSWER.findall(text) if has_content(h)]
    if hashes:
        return hashes[-1]
    # Small models rarely use the tags but often end on the right number: without this
    # fallback every completion scores 0, rewards have no variance and GRPO learns nothing.
    numbers = _NUMBER_IN_TEXT.findall(text)
    return numbers[-1] if numbers else None


def parse_number(value: Any) -> float | None:
    """A finite number from 42, "42.0", "1,000", "$5" or "7." ; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip().rstrip(".").strip().lstrip("$€£").strip()
    if not _WHOLE_NUMBER.fullmatch(text):
        return None
    return float(text.replace(",", ""))


def last_number(text: str) -> float | None:
    """The last number written anywhere in the text."""
    numbers = _NUMBER_IN_TEXT.findall(text)
    return parse_number(numbers[-1]) if numbers else None


def target_answer(target: Any) -> Any:
    """The reference answer of a dataset row; GSM8K-style solutions keep what follows "####".
    A conversational answer (an SFT row's completion under the chat template, say) is its text."""
    if isinstance(target, list | tuple | dict):
        target = completion_text(target)
    if isinstance(target, str) and "####" in target:
        return target.rsplit("####", 1)[1].strip()
    return target


def normalise_text(value: Any) -> str:
    """Case- and whitespace-insensitive form of an answer ("  Paris. " -> "paris")."""
    return " ".join(str(value).split()).lower().rstrip(".").strip()


def answers_equal(predicted: Any, target: Any) -> bool:
    """Whether two answers agree: as numbers when both are numeric, else as normalised text."""
    if predicted is None or target is None:
        return False
    a, b = parse_number(predicted), parse_number(target)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    a_text, b_text = normalise_text(predicted), normalise_text(target)
    return bool(a_text) and a_text == b_text
