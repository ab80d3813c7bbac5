import json
import math

import pytest

from app.services.compare.config_diff import DiffRow, config_diff, flatten, same, to_json_safe


def grpo_config(**hyperparameters):
    return {
        "strategy": "grpo",
        "base_model": "Qwen/Qwen2.5-0.5B-Instruct",
        "dataset": "gsm8k-mini",
        "hyperparameters": {"learning_rate": 5e-6, "num_generations": 4, **hyperparameters},
        "reward_functions": [
            {"name": "exact_answer", "weight": 1.0, "params": {}},
            {"name": "soft_format", "weight": 0.25, "params": {}},
        ],
    }


def rows_by_key(rows):
    return {row.key: row for row in rows}


def test_flatten_dots_nested_keys_and_names_reward_functions():
    flat = flatten(
        {
            "strategy": "sft",
            "hyperparameters": {"lora": {"r": 16}, "target_modules": ["q_proj", "v_proj"]},
            "reward_functions": [
                {"name": "regex_match", "weight": 0.5, "params": {"pattern": r"\d+"}},
                {"name": "json_valid"},
            ],
        }
    )
    assert flat == {
        "strategy": "sft",
        "hyperparameters.lora.r": 16,
        "hyperparameters.target_modules": ["q_proj", "v_proj"],
        "reward_functions.regex_match.weight": 0.5,
        "reward_functions.regex_match.params.pattern": r"\d+",
        "reward_functions.json_valid": True,
    }


def test_same_reward_twice_gets_distinct_keys():
    flat = flatten(
        {
            "reward_functions": [
                {"name": "regex_match", "weight": 1.0},
                {"name": "regex_match", "weight": 0.5},
            ]
        }
    )
    assert flat == {
        "reward_functions.regex_match.weight": 1.0,
        "reward_functions.regex_match#2.weight": 0.5,
    }


def test_unnamed_dicts_in_a_list_are_keyed_by_position():
    assert flatten({"stages": [{"steps": 10}, {"steps": 20}]}) == {
        "stages.0.steps": 10,
        "stages.1.steps": 20,
    }


def test_only_differences_by_default():
    rows = config_diff({1: grpo_config(), 2: grpo_config(learning_rate=1e-5)})
    assert rows == [
        DiffRow(
            key="hyperparameters.learning_rate",
            values={1: 5e-6, 2: 1e-5},
            differs=True,
        )
    ]


def test_all_rows_sorted_identity_first_then_alphabetical():
    a = grpo_config()
    b = grpo_config(beta=0.04)
    b["strategy"] = "sft"
    rows = config_diff({7: a, 3: b}, only_differences=False)
    assert [row.key for row in rows] == [
        "strategy",
        "base_model",
        "dataset",
        "hyperparameters.beta",
        "hyperparameters.learning_rate",
        "hyperparameters.num_generations",
        "reward_functions.exact_answer.weight",
        "reward_functions.soft_format.weight",
    ]
    by_key = rows_by_key(rows)
    assert by_key["strategy"].differs and not by_key["base_model"].differs
    # Missing keys are None, and the values keep the order the runs were given in.
    assert list(by_key["hyperparameters.beta"].values.items()) == [(7, None), (3, 0.04)]


def test_nested_identity_keys_stay_in_front():
    a = {"dataset": {"id": 1, "name": "x"}, "alpha": 1, "base_model": "m"}
    b = {"dataset": {"id": 2, "name": "x"}, "alpha": 1, "base_model": "m"}
    keys = [row.key for row in config_diff({1: a, 2: b}, only_differences=False)]
    assert keys == ["base_model", "dataset.id", "dataset.name", "alpha"]


def test_reward_order_does_not_matter_but_weights_and_presence_do():
    a = grpo_config()
    b = grpo_config()
    b["reward_functions"] = list(reversed(b["reward_functions"]))
    assert config_diff({1: a, 2: b}) == []

    b["reward_functions"][0]["weight"] = 0.5  # soft_format
    b["reward_functions"].append({"name": "numeric_match", "weight": 0.5, "params": {}})
    by_key = rows_by_key(config_diff({1: a, 2: b}))
    assert set(by_key) == {
        "reward_functions.soft_format.weight",
        "reward_functions.numeric_match.weight",
    }
    assert by_key["reward_functions.numeric_match.weight"].values == {1: None, 2: 0.5}


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1e-4, 0.0001, True),
        (1, 1.0, True),
        (0.1 + 0.2, 0.3, True),
        (2e-4, 2e-5, False),
        (0.9, 0.9001, False),
        (1e-9, 2e-9, False),
        (float("nan"), float("nan"), True),
        (float("nan"), 1.0, False),
        (True, 1, False),
        (False, 0.0, False),
        (True, True, True),
        (None, 0, False),
        (None, None, True),
        ("1e-4", 0.0001, False),
        ([1, 2.0], [1.0, 2], True),
        ([1, 2], [1, 2, 3], False),
        ({"a": 1}, {"a": 1.0}, True),
    ],
)
def test_same(a, b, equal):
    assert same(a, b) is equal
    assert same(b, a) is equal


def test_int_and_float_do_not_count_as_a_difference():
    rows = config_diff({1: {"max_steps": 60}, 2: {"max_steps": 60.0}, 3: {"max_steps": 60}})
    assert rows == []


def test_single_run_and_no_runs():
    assert config_diff({}) == []
    assert config_diff({1: grpo_config()}) == []
    rows = config_diff({1: grpo_config()}, only_differences=False)
    assert rows and not any(row.differs for row in rows)


def test_to_json_safe_round_trips_through_strict_json():
    rows = config_diff(
        {1: {"x": float("nan"), "y": (1, float("inf"))}, 2: {"x": 1.0, "y": [1, 2]}},
    )
    data = to_json_safe(rows)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == [
        {"key": "x", "values": {"1": None, "2": 1.0}, "differs": True},
        {"key": "y", "values": {"1": [1, None], "2": [1, 2]}, "differs": True},
    ]
    assert math.isnan(rows[0].values[1])  # the rows themselves are untouched
