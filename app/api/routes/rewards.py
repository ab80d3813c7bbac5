"""The GRPO reward-function library, as the new-run form and API clients need it."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.core.config import settings
from app.domain.rewards import reasoning_system_prompt
from app.domain.rewards.run_rewards import CUSTOM_DISABLED, CUSTOM_TEMPLATE, reward_catalogue

router = APIRouter(prefix="/api/reward-functions", tags=["rewards"])


@router.get("")
def list_reward_functions(
    reasoning_tag: str = Query(default="reasoning", max_length=40),
    answer_tag: str = Query(default="answer", max_length=40),
) -> dict:
    """Built-in reward functions, the reasoning-format system prompt, custom-reward availability."""
    preset = reasoning_system_prompt(reasoning_tag, answer_tag)
    enabled = settings.allow_custom_rewards
    return {
        "reward_functions": reward_catalogue(),
        "reasoning_system_prompt": preset,
        "reasoning_tags": {"reasoning_tag": reasoning_tag, "answer_tag": answer_tag},
        "custom_rewards": {
            "enabled": enabled,
            "name": "custom",
            "template": CUSTOM_TEMPLATE if enabled else None,
            "how_to_enable": None if enabled else CUSTOM_DISABLED,
        },
    }
