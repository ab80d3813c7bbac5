"""The built-in rewards, one completion at a time: ``score(text, row, params, tags) -> float``.

``row`` holds the dataset columns of the completion's example; a missing column scores 0.0.
Each ``check_*`` returns what is wrong with a params dict (already type-checked), or None.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import regex

from app.domain.rewards.extract import (
    answers_equal,
    extract_answer,
    has_content,
    last_number,
    parse_number,
    tag_blocks,
    target_answer,
)
from app.domain.rewards.tags import ReasoningTags, RewardConfigError

Params = Mapping[str, Any]
Row = Mapping[str, Any]


def exact_answer(text: str, row: Row, params: Params, tags: ReasoningTags) -> float:
    target = target_answer(row.get(params["column"]))
    predicted = extract_answer(text, answer_tag=tags.answer)
    if predicted is None or target is None:
        return 0.0
    if answers_equal(predicted, target):
        return 1.0
    # "<answer>Sam has 12 apples</answer>" still answers 12 when the reference is a number.
    if parse_number(target) is not None and parse_number(predicted) is None:
        return 1.0 if answers_equal(last_number(predicted), target) else 0.0
    return 0.0


def numeric_match(text: str, row: Row, params: Params, tags: ReasoningTags) -> float:
    target = parse_number(target_answer(row.get(params["column"])))
    predicted = extract_answer(text, answer_tag=tags.answer)
    if target is None or predicted is None:
        return 0.0
    value = parse_number(predicted)
    value = last_number(predicted) if value is None else value
    if value is None:
        return 0.0
    # Relative to |target|, but at least 1 so that a target of 0 does not divide by zero.
    error = abs(value - target) / max(abs(target), 1.0)
    if error <= params["tolerance"]:
        return 1.0
    if not params["partial_credit"]:
        return 0.0
    # Capped at half so that a near miss never looks as good as a right answer.
    return 0.5 * max(0.0, 1.0 - error)


def check_numeric_match(params: Params) -> str | None:
    if not math.isfinite(params["tolerance"]) or params["tolerance"] < 0:
        return "tolerance must be a number >= 0 (a relative error, e.g. 0.01 for 1%)"
    return check_column(params)


def check_column(params: Params) -> str | None:
    if not params["column"].strip():
        return "column must name a dataset column, e.g. 'answer'"
    return None


def strict_format(text: str, row: Row, params: Params, tags: ReasoningTags) -> float:
    r, a = re.escape(tags.reasoning), re.escape(tags.answer)
    pattern = rf"<{r}>\n(.*?)\n</{r}>\n<{a}>\n(.*?)\n</{a}>"
    match = re.fullmatch(pattern, text.strip(), re.DOTALL)
    if not match:
        return 0.0
    tag_texts = [f"<{r}>", f"</{r}>", f"<{a}>", f"</{a}>"]
    blocks = match.groups()
    ok = all(has_content(b) and not any(t in b for t in tag_texts) for b in blocks)
    return 1.0 if ok else 0.0


def soft_format(text: str, row: Row, params: Params, tags: ReasoningTags) -> float:
    r, a = re.escape(tags.reasoning), re.escape(tags.answer)
    pattern = rf"<{r}>(.*?)</{r}>\s*<{a}>(.*?)</{a}>"
    for match in re.finditer(pattern, text, re.DOTALL):
        if all(has_content(block) for block in match.groups()):
            return 1.0
    return 0.0


def tag_count(text: str, row: Row, params: Params, tags: ReasoningTags) -> float:
    score = 0.0
    for tag in (tags.reasoning, tags.answer):
        opened, closed = text.count(f"<{tag}>"), text.count(f"</{tag}>")
        score += 0.25 * (opened == 1) + 0.25 * (closed == 1)
        # A pair only earns its half when it wraps something: "<answer></answer>" copied
        # from the instruction (or closed before it opens) is worth nothing.
        if opened == 1 and closed == 1 and not any(has_content(b) for b in tag_blocks(text, tag)):
            score -= 0.5
    close_answer = f"</{tags.answer}>"
    if close_answer in text:
        trailing = text.rsplit(close_answer, 1)[1].strip()
        score -= params["per_char_penalty"] * len(trailing)
    return max(0.0, score)


def check_tag_count(params: Params) -> str | None:
    penalty = params["per_char_penalty"]
    if not math.isfinite(penalty) or penalty < 0:
        return "per_char_penalty must be a number >= 0, e.g. 0.001"
    return None


# Seconds one user pattern may spend on one completion: a catastrophically backtracking pattern
# (say ^(a|a)*$) would otherwise pin the training process inside the regex engine for ever.
PATTERN_TIMEOUT_S = 1.0


def regex_match(text: str, row: Row, params: Params, tags: ReasoningTags) -> float:
    pattern = params["pattern"]
    try:
        if params["full_match"]:
            matched = regex.fullmatch(pattern, text.strip(), timeout=PATTERN_TIMEOUT_S)
        else:
            matched = regex.search(pattern, text, timeout=PATTERN_TIMEOUT_S)
    except TimeoutError:
        raise RewardConfigError(
            f"regex_match: pattern {pattern!r} took more than {PATTERN_TIMEOUT_S:g} s on one "
            f"completion ({len(text):,} characters): it backtracks catastrophically; avoid "
            "nested or overlapping repeats such as (a|a)* or (\\w+\\s?)*"
        ) from None
    return 1.0 if matched else 0.0


def check_regex_match(params: Params) -> str | None:
    if not params["pattern"]:
        return "pattern is empty: give a regular expression, e.g. '\\d+'"
    try:
        regex.compile(params["pattern"])
    except (regex.error, re.error) as exc:
        return f"pattern is not a valid regular expression: {exc}"
    return None


_FENCE = re.compile(r"```(?:json)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_NOT_JSON = object()


def _parse_json(text: str) -> Any:
    for candidate in [text.strip(), *_FENCE.findall(text)]:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        # A bare 0 or "" is valid JSON but not the structured output this reward asks for.
        if isinstance(value, dict | list):
            return value
    return _NOT_JSON


def json_valid(text: str, row: Row, params: Params, tags: ReasoningTags) -> float:
    value = _parse_json(text)
    if value is _NOT_JSON:
        return 0.0
    required = params["required_keys"]
    if not required:
        return 1.0
    present = sum(key in value for key in required) if isinstance(value, dict) else 0
    return 0.5 + 0.5 * present / len(required)


def check_json_valid(params: Params) -> str | None:
    if not all(key.strip() for key in params["required_keys"]):
        return "required_keys must be non-empty key names"
    return None


def length_target(text: str, row: Row, params: Params, tags: ReasoningTags) -> float:
    length, low, high = len(text.strip()), params["min_chars"], params["max_chars"]
    # Shorter than the band decays towards 0 at empty: never reward shortness by itself,
    # or the model learns to answer "7 + 5" and stop.
    if length < low:
        return length / low
    if length > high:
        return max(0.0, 1.0 - (length - high) / high)
    return 1.0


def check_length_target(params: Params) -> str | None:
    low, high = params["min_chars"], params["max_chars"]
    # min_chars of 0 would give an empty completion full marks.
    if low < 1 or low > high:
        return f"need 1 <= min_chars <= max_chars, got min_chars={low} and max_chars={high}"
    return None
