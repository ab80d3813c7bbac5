"""A run's reward list: built-in and custom rewards validated in order, built in the same order."""

from __future__ import annotations

import pytest

from app.domain.rewards import ReasoningTags, RewardConfigError
from app.domain.rewards.run_rewards import (
    CUSTOM_TEMPLATE,
    build_run_rewards,
    reward_catalogue,
    validate_run_rewards,
)
from app.domain.sandbox import CustomRewardError, CustomRewardFunction

CODE = "def reward(completions, **kwargs):\n    return [float(len(c) > 3) for c in completions]\n"


def custom(weight=1.0, code=CODE, **extra):
    return {"name": "custom", "weight": weight, "params": {"code": code}, **extra}


def test_builtin_only_lists_are_the_registry_validation():
    configs = validate_run_rewards([{"name": "exact_answer"}], allow_custom=False)
    assert [(c.name, c.weight, dict(c.params)) for c in configs] == [
        ("exact_answer", 1.0, {"column": "answer"})]


def test_custom_reward_keeps_its_place_and_weight():
    items = [{"name": "soft_format", "weight": 0.25}, custom(0.5), {"name": "exact_answer"}]
    configs = validate_run_rewards(items, allow_custom=True)
    assert [(c.name, c.weight) for c in configs] == [
        ("soft_format", 0.25), ("custom", 0.5), ("exact_answer", 1.0)]
    assert configs[1].params == {"code": CODE}


def test_custom_reward_refused_when_the_server_does_not_allow_it():
    with pytest.raises(RewardConfigError, match="TUNEDECK_ALLOW_CUSTOM_REWARDS=true"):
        validate_run_rewards([{"name": "exact_answer"}, custom()], allow_custom=False)


def test_builtins_may_have_weight_zero_when_the_custom_reward_trains():
    configs = validate_run_rewards([{"name": "soft_format", "weight": 0}, custom(1)],
                                   allow_custom=True)
    assert [(c.name, c.weight) for c in configs] == [("soft_format", 0.0), ("custom", 1.0)]
    with pytest.raises(RewardConfigError, match="weight above 0"):
        validate_run_rewards([{"name": "soft_format", "weight": 0}, custom(0)], allow_custom=True)
    with pytest.raises(RewardConfigError, match="weight above 0"):
        validate_run_rewards([custom(0)], allow_custom=True)


@pytest.mark.parametrize(("items", "message"), [
    ([], "at least one"),
    ([custom(), custom()], "only one custom"),
    ([custom(code="")], "paste Python code"),
    ([custom(code=None)], "paste Python code"),
    ([custom(code="x" * 20_001)], "longer than"),
    ([custom(weight=-1)], "weight must be a number >= 0"),
    ([custom(weight=float("inf"))], "weight must be a number >= 0"),
    ([custom(weight="1")], "weight must be a number >= 0"),
    ([custom(colour="red")], "unknown field 'colour'"),
    ([{"name": "custom", "params": {"code": CODE, "timeout": 99}}], "params must be"),
    ([custom(), {"name": "nope"}], "unknown reward function 'nope'"),
    ([custom(), {"name": "soft_format", "weight": "0"}], "weight must be a number"),
])
def test_bad_custom_lists_say_what_to_fix(items, message):
    with pytest.raises(RewardConfigError, match=message):
        validate_run_rewards(items, allow_custom=True)


def test_build_uses_the_run_tags_and_the_sandbox_in_order():
    configs = validate_run_rewards([{"name": "soft_format"}, custom(0.5)], allow_custom=True)
    functions, weights = build_run_rewards(configs, tags=ReasoningTags("think", "final"))
    assert weights == [1.0, 0.5]
    assert [f.__name__ for f in functions] == ["soft_format", "custom"]
    assert isinstance(functions[1], CustomRewardFunction)
    # The format reward reads the run's tag names, not the default ones.
    good = "<think>\n2 and 2\n</think>\n<final>\n4\n</final>"
    default = "<reasoning>\n2 and 2\n</reasoning>\n<answer>\n4\n</answer>"
    assert functions[0](completions=[good, default]) == [1.0, 0.0]
    assert functions[1](prompts=["p", "p"], completions=["abcd", "ab"]) == [1.0, 0.0]


def test_a_failing_custom_reward_raises_its_message():
    configs = validate_run_rewards([custom(code="def reward(completions, **kw):\n    1 / 0\n")],
                                   allow_custom=True)
    functions, _ = build_run_rewards(configs)
    with pytest.raises(CustomRewardError, match="ZeroDivisionError.*line 2"):
        functions[0](completions=["a"])


def test_catalogue_lists_every_builtin_with_defaults_and_the_template_runs():
    catalogue = {entry["name"]: entry for entry in reward_catalogue()}
    assert {"exact_answer", "soft_format", "strict_format", "json_valid"} <= set(catalogue)
    assert catalogue["exact_answer"]["defaults"] == {"column": "answer"}
    assert all(entry["description"] for entry in catalogue.values())
    configs = validate_run_rewards([custom(code=CUSTOM_TEMPLATE)], allow_custom=True)
    functions, _ = build_run_rewards(configs)
    assert functions[0](completions=["it is 42", "no"], answer=["42", "7"]) == [1.0, 0.0]
