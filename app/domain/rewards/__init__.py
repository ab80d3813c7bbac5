"""GRPO reward functions: the built-in library, config validation and the preset prompt.

    configs = validate_reward_config([{"name": "exact_answer", "weight": 1.0}])
    reward_funcs, reward_weights = build_reward_functions(configs)
    GRPOTrainer(..., reward_funcs=reward_funcs, args=GRPOConfig(reward_weights=reward_weights))

Pasted Python rewards run in a subprocess instead: see worker/sandbox.py.
"""

from app.domain.rewards.extract import answers_equal, completion_text, extract_answer, parse_number
from app.domain.rewards.registry import (
    REWARD_FUNCTIONS,
    RewardConfig,
    RewardFunction,
    RewardSpec,
    build_reward_functions,
    validate_reward_config,
)
from app.domain.rewards.tags import (
    REASONING_SYSTEM_PROMPT,
    ReasoningTags,
    RewardConfigError,
    reasoning_system_prompt,
)

__all__ = [
    "REASONING_SYSTEM_PROMPT",
    "REWARD_FUNCTIONS",
    "ReasoningTags",
    "RewardConfig",
    "RewardConfigError",
    "RewardFunction",
    "RewardSpec",
    "answers_equal",
    "build_reward_functions",
    "completion_text",
    "extract_answer",
    "parse_number",
    "reasoning_system_prompt",
    "validate_reward_config",
]
