"""The reward registry, config validation, and TRL-callable reward functions."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain.rewards import builtin
from app.domain.rewards.extract import completion_text
from app.domain.rewards.tags import ReasoningTags, RewardConfigError

ScoreFn = Callable[[str, Mapping[str, Any], Mapping[str, Any], ReasoningTags], float]
CheckFn = Callable[[Mapping[str, Any]], str | None]


class RewardFunction:
    """A built-in reward bound to its params, called by TRL GRPOTrainer as
    ``f(prompts=..., completions=..., completion_ids=..., **dataset_columns) -> list[float]``.

    A class rather than a closure so that it pickles; TRL names its metrics after ``__name__``.
    """

    def __init__(self, name: str, score: ScoreFn, params: Mapping[str, Any], tags: ReasoningTags):
        self.__name__ = name
        self.score = score
        self.params = dict(params)
        self.tags = tags

    def __call__(self, completions: Any = None, **kwargs: Any) -> list[float]:
        if not isinstance(completions, list | tuple):
            return []
        n = len(completions)
        # Dataset columns arrive as one list per column; anything else (trainer_state,
        # callbacks) or a list of another length is not a per-completion value.
        columns = {k: v for k, v in kwargs.items() if isinstance(v, list | tuple) and len(v) == n}
        rewards = []
        for i, completion in enumerate(completions):
            row = {key: values[i] for key, values in columns.items()}
            rewards.append(
                float(self.score(completion_text(completion), row, self.params, self.tags))
            )
        return rewards

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__!r}, {self.params!r})"


@dataclass(frozen=True)
class RewardSpec:
    name: str
    description: str  # one line, shown in the UI
    defaults: Mapping[str, Any]
    score: ScoreFn
    check: CheckFn | None = None

    def build(
        self, params: Mapping[str, Any] | None = None, tags: ReasoningTags | None = None
    ) -> RewardFunction:
        merged = {**self.defaults, **(params or {})}
        return RewardFunction(self.name, self.score, merged, tags or ReasoningTags())


@dataclass(frozen=True)
class RewardConfig:
    name: str
    weight: float = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight, "params": dict(self.params)}


_SPECS = [
    RewardSpec(
        "exact_answer",
        "1.0 when the answer (in <answer> tags, after ####, or the last number) equals the "
        "dataset column; numbers compare by value.",
        {"column": "answer"},
        builtin.exact_answer,
        builtin.check_column,
    ),
    RewardSpec(
        "numeric_match",
        "1.0 when the answer is within a relative tolerance of the dataset's number; up to 0.5 "
        "for near misses.",
        {"column": "answer", "tolerance": 0.0, "partial_credit": True},
        builtin.numeric_match,
        builtin.check_numeric_match,
    ),
    RewardSpec(
        "strict_format",
        "1.0 when the completion is exactly a non-empty <reasoning> block then a non-empty "
        "<answer> block, each tag on its own line.",
        {},
        builtin.strict_format,
    ),
    RewardSpec(
        "soft_format",
        "1.0 when a non-empty <reasoning> block is followed by a non-empty <answer> block "
        "anywhere in the completion.",
        {},
        builtin.soft_format,
    ),
    RewardSpec(
        "tag_count",
        "0.25 per reasoning/answer tag used exactly once (pairs must wrap something), minus a "
        "small penalty per character after </answer>.",
        {"per_char_penalty": 0.001},
        builtin.tag_count,
        builtin.check_tag_count,
    ),
    RewardSpec(
        "regex_match",
        "1.0 when the completion matches your regular expression (anywhere, or the whole "
        "completion with full_match).",
        {"pattern": "", "full_match": False},
        builtin.regex_match,
        builtin.check_regex_match,
    ),
    RewardSpec(
        "json_valid",
        "1.0 for a JSON object or array, bare or in a ```json fence; with required_keys, 0.5 "
        "plus a share for the keys present.",
        {"required_keys": []},
        builtin.json_valid,
        builtin.check_json_valid,
    ),
    RewardSpec(
        "length_target",
        "1.0 when the completion is min_chars to max_chars characters long, falling linearly "
        "to 0 outside (shorter is not better).",
        {"min_chars": 100, "max_chars": 800},
        builtin.length_target,
        builtin.check_length_target,
    ),
]

REWARD_FUNCTIONS: dict[str, RewardSpec] = {spec.name: spec for spec in _SPECS}


def validate_reward_config(items: Any) -> list[RewardConfig]:
    """Check the rewards a user chose; raise RewardConfigError saying what to fix."""
    if not isinstance(items, list) or not items:
        raise RewardConfigError("choose at least one reward function")
    configs, seen = [], set()
    for position, item in enumerate(items, start=1):
        config = _validate_item(position, item)
        if config.name in seen:
            raise RewardConfigError(f"reward function {config.name!r} is listed twice; keep one")
        seen.add(config.name)
        configs.append(config)
    if not any(config.weight > 0 for config in configs):
        raise RewardConfigError("at least one reward function needs a weight above 0")
    return configs


def _validate_item(position: int, item: Any) -> RewardConfig:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise RewardConfigError(
            f'reward #{position}: expected {{"name": ..., "weight": 1.0, "params": {{...}}}}'
        )
    name = item["name"]
    if name not in REWARD_FUNCTIONS:
        raise RewardConfigError(
            f"unknown reward function {name!r}; choose one of: {', '.join(REWARD_FUNCTIONS)}"
        )
    extra = sorted(set(item) - {"name", "weight", "params"})
    if extra:
        raise RewardConfigError(
            f"{name}: unknown field {extra[0]!r}; expected name, weight, params"
        )
    weight = item.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise RewardConfigError(f"{name}: weight must be a number >= 0, got {weight!r}")
    if weight < 0:
        raise RewardConfigError(f"{name}: weight must be >= 0, got {weight!r}")
    params = _validate_params(REWARD_FUNCTIONS[name], item.get("params") or {})
    return RewardConfig(name=name, weight=float(weight), params=params)


def _validate_params(spec: RewardSpec, params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise RewardConfigError(f"{spec.name}: params must be an object, got {params!r}")
    for key in params:
        if key not in spec.defaults:
            expected = ", ".join(spec.defaults) or "none"
            raise RewardConfigError(
                f"{spec.name}: unknown parameter {key!r}; expected parameters: {expected}"
            )
    merged = {
        key: _typed(spec.name, key, params.get(key, default), default)
        for key, default in spec.defaults.items()
    }
    problem = spec.check(merged) if spec.check else None
    if problem:
        raise RewardConfigError(f"{spec.name}: {problem}")
    return merged


def _typed(reward: str, key: str, value: Any, default: Any) -> Any:
    """The value if it has the type of the default (ints welcome where floats are)."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok, kind = ok and math.isfinite(value), "a finite number"
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    else:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        kind = "a list of strings"
    if not ok:
        raise RewardConfigError(f"{reward}: parameter {key!r} must be {kind}, got {value!r}")
    return list(value) if isinstance(value, list) else value


def build_reward_functions(
    configs: list[RewardConfig], *, tags: ReasoningTags | None = None
) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """The reward functions and their weights, for GRPOTrainer and GRPOConfig.reward_weights."""
    functions: list[Callable[..., list[float]]] = []
    weights: list[float] = []
    for config in configs:
        spec = REWARD_FUNCTIONS.get(config.name)
        if spec is None:
            raise RewardConfigError(f"unknown reward function {config.name!r}")
        functions.append(spec.build(config.params, tags))
        weights.append(config.weight)
    return functions, weights
