"""A run's reward list: built-in rewards plus, when the server allows it, one pasted custom reward.

A custom reward is an item like the built-in ones, so that it keeps its place and its weight:

    {"name": "custom", "weight": 0.5, "params": {"code": "def reward(completions, **kwargs): ..."}}

The web app validates with ``validate_run_rewards`` (no torch import); the training process builds
the TRL callables with ``build_run_rewards`` in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from app.domain.rewards.registry import REWARD_FUNCTIONS, RewardConfig, validate_reward_config
from app.domain.rewards.tags import ReasoningTags, RewardConfigError
from app.domain.sandbox import make_custom_reward_function

CUSTOM_REWARD = "custom"
MAX_CODE_CHARS = 20_000
CUSTOM_DISABLED = (
    "custom reward functions are disabled on this server: an administrator can enable them "
    "with TUNEDECK_ALLOW_CUSTOM_REWARDS=true (pasted code then runs in a limited subprocess)"
)
CUSTOM_TEMPLATE = '''def reward(completions, **kwargs):
    """One number per completion; dataset columns (e.g. answer) arrive as lists in kwargs."""
    answers = kwargs.get("answer") or [""] * len(completions)
    return [1.0 if str(a) in c else 0.0 for c, a in zip(completions, answers)]
'''


def is_custom(item: Any) -> bool:
    return isinstance(item, dict) and item.get("name") == CUSTOM_REWARD


def validate_run_rewards(items: Any, *, allow_custom: bool) -> list[RewardConfig]:
    """The run's rewards in order, checked; raises RewardConfigError saying what to fix."""
    if not isinstance(items, list) or not items:
        raise RewardConfigError("choose at least one reward function")
    custom_items = [item for item in items if is_custom(item)]
    if not custom_items:
        return validate_reward_config(items)
    if not allow_custom:
        raise RewardConfigError(CUSTOM_DISABLED)
    if len(custom_items) > 1:
        raise RewardConfigError("only one custom reward function per run; merge the code")
    custom = _validate_custom(custom_items[0])
    builtins = [item for item in items if not is_custom(item)]
    # Built-in rewards with weight 0 are logged but not trained on; that is fine when the custom
    # reward carries the weight, which validate_reward_config alone cannot know.
    only_custom_trains = custom.weight > 0 and all(_is_zero(i.get("weight")) for i in builtins
                                                   if isinstance(i, dict))
    checked = [{**i, "weight": 1.0} if only_custom_trains and isinstance(i, dict) else i
               for i in builtins]
    configs = iter(validate_reward_config(checked) if builtins else [])
    if only_custom_trains:
        configs = iter([replace(c, weight=0.0) for c in configs])
    if not builtins and custom.weight <= 0:
        raise RewardConfigError("at least one reward function needs a weight above 0")
    return [custom if is_custom(item) else next(configs) for item in items]


def _is_zero(weight: Any) -> bool:
    return isinstance(weight, int | float) and not isinstance(weight, bool) and weight == 0


def _validate_custom(item: dict) -> RewardConfig:
    extra = sorted(set(item) - {"name", "weight", "params"})
    if extra:
        raise RewardConfigError(
            f"custom: unknown field {extra[0]!r}; expected name, weight, params"
        )
    weight = item.get("weight", 1.0)
    if (isinstance(weight, bool) or not isinstance(weight, int | float)
            or not math.isfinite(weight) or weight < 0):
        raise RewardConfigError(f"custom: weight must be a number >= 0, got {weight!r}")
    params = item.get("params") or {}
    if not isinstance(params, dict) or set(params) - {"code"}:
        raise RewardConfigError('custom: params must be {"code": "def reward(completions, ...)"}')
    code = params.get("code")
    if not isinstance(code, str) or not code.strip():
        raise RewardConfigError(
            "custom: paste Python code that defines reward(completions, **kwargs) in params.code"
        )
    if len(code) > MAX_CODE_CHARS:
        raise RewardConfigError(f"custom: code is longer than {MAX_CODE_CHARS:,} characters")
    return RewardConfig(name=CUSTOM_REWARD, weight=float(weight), params={"code": code})


def build_run_rewards(
    configs: list[RewardConfig], *, tags: ReasoningTags | None = None
) -> tuple[list[Callable[..., list]], list[float]]:
    """TRL reward callables and weights, in the configs' order; custom code runs in the sandbox."""
    functions: list[Callable[..., list]] = []
    for config in configs:
        if config.name == CUSTOM_REWARD:
            functions.append(make_custom_reward_function(config.params["code"], name=CUSTOM_REWARD))
        else:
            functions.append(REWARD_FUNCTIONS[config.name].build(config.params, tags))
    return functions, [config.weight for config in configs]


def reward_catalogue() -> list[dict[str, Any]]:
    """The built-in rewards as the UI lists them: name, one-line description, default params."""
    return [{"name": spec.name, "description": spec.description, "defaults": dict(spec.defaults)}
            for spec in REWARD_FUNCTIONS.values()]
