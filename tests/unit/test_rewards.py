"""The built-in GRPO rewards, their config validation, and the demo dataset they score."""

from __future__ import annotations

import json
import math
import pickle
import re

import pytest

from app.demo_data import make_grpo_arithmetic
from app.domain.rewards import (
    REASONING_SYSTEM_PROMPT,
    REWARD_FUNCTIONS,
    ReasoningTags,
    RewardConfig,
    RewardConfigError,
    build_reward_functions,
    completion_text,
    extract_answer,
    reasoning_system_prompt,
    validate_reward_config,
)

GOOD = "<reasoning>\n7 + 5 = 12\n</reasoning>\n<answer>\n12\n</answer>"


def score(name: str, completion, tags: ReasoningTags | None = None, **kwargs) -> float:
    """One completion through the reward exactly as GRPOTrainer calls it."""
    config = {"name": name, "params": kwargs.pop("params", {})}
    [function], _ = build_reward_functions(validate_reward_config([config]), tags=tags)
    rewards = function(prompts=["p"], completions=[completion], completion_ids=[[1, 2]], **kwargs)
    assert len(rewards) == 1 and isinstance(rewards[0], float)
    return rewards[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>42</answer>", "42"),
        ("<answer>\n 42 \n</answer> trailing 7", "42"),
        ("<answer>1</answer> then <answer>2</answer>", "2"),
        ("<answer></answer> so 13", "13"),  # empty tags do not count; fall back
        ("<answer>...</answer> so 13", "13"),  # a copied template placeholder is empty too
        ("5 + 3 = 8\n#### 8", "8"),
        ("#### 1,000 apples", "1,000 apples"),
        ("7 plus 5 is 12.", "12"),
        ("12-5 leaves 7", "7"),
        ("12-5", "5"),  # a hyphen between numbers is not a minus sign
        ("x = -3", "-3"),
        ("it costs 2.50 dollars", "2.50"),
        ("no digits here", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_uses_the_configured_tag():
    assert extract_answer("<final>9</final> 3", answer_tag="final") == "9"
    assert extract_answer("<answer>9</answer> 3", answer_tag="final") == "3"


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "hi"}], "hi"),
        ({"role": "assistant", "content": "hi"}, "hi"),
        ([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}], "hi"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "a"),
        ([{"role": "assistant", "content": None}], ""),
        ([{"role": "assistant"}], ""),
        (["not a message"], ""),
        (None, ""),
        (3.5, ""),
    ],
)
def test_completion_text(completion, expected):
    assert completion_text(completion) == expected


@pytest.mark.parametrize(
    ("completion", "answer", "expected"),
    [
        (GOOD, "12", 1.0),
        (GOOD, "13", 0.0),
        ("<answer>42.0</answer>", "42", 1.0),
        ("<answer>1,000</answer>", "1000", 1.0),
        ("<answer>$5</answer>", "5", 1.0),
        ("<answer> Paris. </answer>", "paris", 1.0),
        ("<answer>New   York</answer>", "new york", 1.0),
        ("<answer>Lyon</answer>", "Paris", 0.0),
        ("<answer>Sam has 12 apples</answer>", "12", 1.0),
        ("Sam has 7 apples and buys 5 more, so 12", "12", 1.0),  # no tags: last number
        ("Sam has 12 apples, then 13", "12", 0.0),
        ("The answer is\n#### 12", "12", 1.0),
        ("so 12", "He buys 7 + 5 = 12 apples.\n#### 12", 1.0),  # GSM8K-style reference
        ("so 12", 12, 1.0),  # a numeric column
        ("<answer></answer>", "12", 0.0),
        ("", "12", 0.0),
        (None, "12", 0.0),
        (["not", "messages"], "12", 0.0),
        ([{"role": "assistant", "content": GOOD}], "12", 1.0),
        ([{"role": "assistant", "content": 12}], "12", 0.0),
        ("12", None, 0.0),
    ],
)
def test_exact_answer(completion, answer, expected):
    assert score("exact_answer", completion, answer=[answer]) == expected


def test_exact_answer_without_the_column_scores_zero():
    assert score("exact_answer", GOOD) == 0.0
    assert score("exact_answer", GOOD, params={"column": "target"}, answer=["12"]) == 0.0
    assert score("exact_answer", GOOD, params={"column": "target"}, target=["12"]) == 1.0


def test_columns_of_another_length_are_ignored():
    [function], _ = build_reward_functions(validate_reward_config([{"name": "exact_answer"}]))
    assert function(completions=["12", "12"], answer=["12"]) == [0.0, 0.0]
    assert function(completions=["12", "12"], answer=["12", "13"]) == [1.0, 0.0]
    assert function(completions=None) == []


@pytest.mark.parametrize(
    ("completion", "answer", "params", "expected"),
    [
        ("<answer>12</answer>", "12", {}, 1.0),
        ("<answer>12.0</answer>", "12", {}, 1.0),
        ("<answer>11</answer>", "12", {}, 0.5 * (1 - 1 / 12)),
        ("<answer>6</answer>", "12", {}, 0.25),
        ("<answer>50</answer>", "12", {}, 0.0),
        ("<answer>11</answer>", "12", {"partial_credit": False}, 0.0),
        ("<answer>11.9</answer>", "12", {"tolerance": 0.01}, 1.0),
        ("<answer>1</answer>", "0", {}, 0.0),  # a zero target does not divide by zero
        ("<answer>0.5</answer>", "0", {}, 0.25),
        ("so 12", "12", {}, 1.0),
        ("<answer>twelve</answer>", "12", {}, 0.0),
        ("12", "twelve", {}, 0.0),
        ("", "12", {}, 0.0),
        (None, "12", {}, 0.0),
    ],
)
def test_numeric_match(completion, answer, params, expected):
    assert score("numeric_match", completion, params=params, answer=[answer]) == pytest.approx(
        expected
    )


FORMAT_CASES = [
    # (completion, strict_format, soft_format, tag_count)
    (GOOD, 1.0, 1.0, 1.0),
    (GOOD + "\n", 1.0, 1.0, 1.0),
    ("<reasoning>7 + 5 = 12</reasoning><answer>12</answer>", 0.0, 1.0, 1.0),
    ("Sure!\n" + GOOD, 0.0, 1.0, 1.0),
    (GOOD + "\nHope this helps", 0.0, 1.0, 1.0 - 0.001 * len("Hope this helps")),
    (GOOD + "x" * 2000, 0.0, 1.0, 0.0),  # the penalty never goes below zero
    ("<reasoning>\n\n</reasoning>\n<answer>\n12\n</answer>", 0.0, 0.0, 0.5),
    ("<reasoning>\nthink\n</reasoning>\n<answer>\n\n</answer>", 0.0, 0.0, 0.5),
    # Copying the empty template from the instruction earns nothing anywhere.
    ("<reasoning></reasoning><answer></answer>", 0.0, 0.0, 0.0),
    ("<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>", 0.0, 0.0, 0.0),
    ("<reasoning>\n   \n</reasoning>\n<answer>\n \t \n</answer>", 0.0, 0.0, 0.0),
    (
        "<answer>\n12\n</answer>\n<reasoning>\nthink\n</reasoning>",
        0.0,
        0.0,
        1.0 - 0.001 * len("<reasoning>\nthink\n</reasoning>"),
    ),
    ("<answer>12</answer>", 0.0, 0.0, 0.5),
    ("<reasoning>a</reasoning><answer>1</answer><answer>2</answer>", 0.0, 1.0, 0.5),
    ("</reasoning>think<reasoning><answer>12</answer>", 0.0, 0.0, 0.5),
    ("<reasoning>\na\n</reasoning>\n<answer>\n<answer>\n12\n</answer>", 0.0, 1.0, 0.75),
    ("7 + 5", 0.0, 0.0, 0.0),
    ("", 0.0, 0.0, 0.0),
    (None, 0.0, 0.0, 0.0),
    ([{"role": "assistant", "content": GOOD}], 1.0, 1.0, 1.0),
]


@pytest.mark.parametrize(("completion", "strict", "soft", "count"), FORMAT_CASES)
def test_format_rewards(completion, strict, soft, count):
    assert score("strict_format", completion) == strict
    assert score("soft_format", completion) == soft
    assert score("tag_count", completion) == pytest.approx(count)


def test_format_rewards_follow_the_configured_tags():
    tags = ReasoningTags(reasoning="think", answer="final")
    renamed = "<think>\n7 + 5 = 12\n</think>\n<final>\n12\n</final>"
    for name in ("strict_format", "soft_format", "tag_count"):
        assert score(name, renamed, tags=tags) == 1.0
        assert score(name, GOOD, tags=tags) == 0.0
    assert score("exact_answer", "<final>12</final> 3", tags=tags, answer=["12"]) == 1.0


@pytest.mark.parametrize(
    ("completion", "params", "expected"),
    [
        ("The answer is 12", {"pattern": r"\d+"}, 1.0),
        ("The answer is twelve", {"pattern": r"\d+"}, 0.0),
        ("The answer is 12", {"pattern": r"\d+", "full_match": True}, 0.0),
        (" 12\n", {"pattern": r"\d+", "full_match": True}, 1.0),
        ("YES", {"pattern": r"(?i)yes"}, 1.0),
        (None, {"pattern": r".*"}, 1.0),  # an empty completion does match ".*"
        (None, {"pattern": r".+"}, 0.0),
    ],
)
def test_regex_match(completion, params, expected):
    assert score("regex_match", completion, params=params) == expected


@pytest.mark.parametrize(
    ("completion", "keys", "expected"),
    [
        ('{"a": 1}', [], 1.0),
        ("[1, 2]", [], 1.0),
        ('Here you go:\n```json\n{"a": 1}\n```\nDone.', [], 1.0),
        ('```\n{"a": 1}\n```', [], 1.0),
        ('```json\n{"a": 1,}\n```', [], 0.0),
        ("{'a': 1}", [], 0.0),
        ("0", [], 0.0),  # valid JSON, but not structured output
        ('""', [], 0.0),
        ("", [], 0.0),
        (None, [], 0.0),
        ('{"a": 1, "b": 2}', ["a", "b"], 1.0),
        ('{"a": 1}', ["a", "b"], 0.75),
        ('{"c": 1}', ["a", "b"], 0.5),
        ('["a", "b"]', ["a", "b"], 0.5),
    ],
)
def test_json_valid(completion, keys, expected):
    assert score("json_valid", completion, params={"required_keys": keys}) == expected


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 0.0), (5, 0.05), (50, 0.5), (100, 1.0), (500, 1.0), (800, 1.0), (1200, 0.5), (2000, 0.0)],
)
def test_length_target_rewards_the_band_not_shortness(length, expected):
    params = {"min_chars": 100, "max_chars": 800}
    assert score("length_target", "x" * length, params=params) == pytest.approx(expected)


def test_length_target_counts_stripped_characters():
    assert score("length_target", "  " + "x" * 10 + "\n", params={"min_chars": 10}) == 1.0


def test_every_reward_function_is_named_and_picklable_for_trl():
    configs = validate_reward_config(
        [
            {"name": n, "params": {"pattern": "x"} if n == "regex_match" else {}}
            for n in REWARD_FUNCTIONS
        ]
    )
    functions, weights = build_reward_functions(configs)
    assert [f.__name__ for f in functions] == list(REWARD_FUNCTIONS)
    assert weights == [1.0] * len(REWARD_FUNCTIONS)
    for function in functions:
        copy = pickle.loads(pickle.dumps(function))
        assert copy.__name__ == function.__name__
        assert copy(completions=[GOOD], answer=["12"]) == function(
            completions=[GOOD], answer=["12"]
        )
    assert all(
        spec.description and "\n" not in spec.description for spec in REWARD_FUNCTIONS.values()
    )


def test_validate_fills_defaults_and_keeps_weights():
    configs = validate_reward_config(
        [
            {"name": "exact_answer", "weight": 2},
            {"name": "numeric_match", "weight": 0, "params": {"tolerance": 1}},
        ]
    )
    assert configs == [
        RewardConfig("exact_answer", 2.0, {"column": "answer"}),
        RewardConfig(
            "numeric_match", 0.0, {"column": "answer", "tolerance": 1.0, "partial_credit": True}
        ),
    ]
    assert configs[1].as_dict()["params"]["tolerance"] == 1.0
    assert validate_reward_config([c.as_dict() for c in configs]) == configs
    _, weights = build_reward_functions(configs)
    assert weights == [2.0, 0.0]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "at least one reward"),
        (None, "at least one reward"),
        ([{"name": "exact"}], "choose one of: exact_answer, numeric_match"),
        (["exact_answer"], 'expected {"name"'),
        ([{"name": "exact_answer"}, {"name": "exact_answer"}], "listed twice"),
        ([{"name": "exact_answer", "wieght": 1}], "unknown field 'wieght'"),
        ([{"name": "exact_answer", "weight": -1}], "weight must be >= 0"),
        ([{"name": "exact_answer", "weight": math.nan}], "weight must be a number"),
        ([{"name": "exact_answer", "weight": math.inf}], "weight must be a number"),
        ([{"name": "exact_answer", "weight": "1"}], "weight must be a number"),
        ([{"name": "exact_answer", "weight": True}], "weight must be a number"),
        ([{"name": "exact_answer", "weight": 0}], "weight above 0"),
        ([{"name": "exact_answer", "params": {"colum": "a"}}], "unknown parameter 'colum'"),
        ([{"name": "soft_format", "params": {"x": 1}}], "expected parameters: none"),
        ([{"name": "exact_answer", "params": {"column": 3}}], "'column' must be a string"),
        ([{"name": "exact_answer", "params": {"column": " "}}], "column must name"),
        ([{"name": "exact_answer", "params": "answer"}], "params must be an object"),
        ([{"name": "numeric_match", "params": {"tolerance": -0.1}}], "tolerance must be"),
        ([{"name": "numeric_match", "params": {"tolerance": math.nan}}], "finite number"),
        ([{"name": "numeric_match", "params": {"partial_credit": 1}}], "true or false"),
        ([{"name": "tag_count", "params": {"per_char_penalty": -1}}], "per_char_penalty"),
        ([{"name": "regex_match"}], "pattern is empty"),
        ([{"name": "regex_match", "params": {"pattern": "(a"}}], "not a valid regular exp"),
        ([{"name": "json_valid", "params": {"required_keys": "a"}}], "a list of strings"),
        ([{"name": "json_valid", "params": {"required_keys": [""]}}], "non-empty key names"),
        ([{"name": "length_target", "params": {"min_chars": 10.5}}], "a whole number"),
        ([{"name": "length_target", "params": {"min_chars": 0}}], "1 <= min_chars"),
        ([{"name": "length_target", "params": {"min_chars": 900}}], "min_chars=900"),
    ],
)
def test_validate_reward_config_says_what_to_fix(items, message):
    with pytest.raises(RewardConfigError) as caught:
        validate_reward_config(items)
    assert message in str(caught.value)


@pytest.mark.parametrize(("reasoning", "answer"), [("a b", "answer"), ("x", "x"), ("", "y")])
def test_invalid_tag_names_are_refused(reasoning, answer):
    with pytest.raises(RewardConfigError):
        ReasoningTags(reasoning, answer)


def test_reasoning_system_prompt_names_the_tags_and_scores_nothing_when_copied():
    assert "<reasoning>" in REASONING_SYSTEM_PROMPT and "</answer>" in REASONING_SYSTEM_PROMPT
    prompt = reasoning_system_prompt("think", "final")
    assert "<think>" in prompt and "</final>" in prompt and "<answer>" not in prompt
    template = REASONING_SYSTEM_PROMPT[REASONING_SYSTEM_PROMPT.rindex("<reasoning>") :]
    for name in ("strict_format", "soft_format", "tag_count"):
        assert score(name, template) == 0.0


def test_demo_dataset_is_generated_and_correct():
    problems = make_grpo_arithmetic.make_problems()
    committed = make_grpo_arithmetic.OUTPUT.read_text(encoding="utf-8")
    assert committed == make_grpo_arithmetic.to_jsonl(problems), "rerun the generator"
    rows = [json.loads(line) for line in committed.splitlines()]
    assert len(rows) == 200 and len({row["prompt"] for row in rows}) == 200
    for row in rows:
        a, b = (int(n) for n in re.findall(r"\d+", row["prompt"]))
        prompt = row["prompt"].lower()
        if "each" in prompt:
            expected = a * b
        elif any(word in prompt for word in ("gives", "sold", "needs")):
            expected = a - b
        else:
            expected = a + b
        assert row["answer"] == str(expected) and expected > 0, row
    [function], _ = build_reward_functions(validate_reward_config([{"name": "exact_answer"}]))
    answers = [row["answer"] for row in rows]
    assert function(completions=[f"#### {a}" for a in answers], answer=answers) == [1.0] * 200


@pytest.mark.parametrize(("pattern", "text"), [
    (r"^(\w+\s?)*$", "a" * 40 + "!"),  # the probe's pattern: hangs the re module for hours
    (r"^(a|a)*$", "a" * 40 + "!"),  # backtracks catastrophically in the regex module as well
])
def test_a_catastrophic_pattern_ends_within_a_deadline(pattern, text):
    """Run in a child: a pattern stuck in the regex engine holds the GIL, so only a process
    deadline can fail this test instead of hanging the suite."""
    import subprocess
    import sys

    script = f"""
from app.domain.rewards import RewardConfigError, build_reward_functions, validate_reward_config
config = validate_reward_config([{{"name": "regex_match", "params": {{"pattern": {pattern!r}}}}}])
[function], _ = build_reward_functions(config)
try:
    print("score", function(prompts=["p"], completions=[{text!r}], completion_ids=[[1]]))
except RewardConfigError as exc:
    print("refused", exc)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("score [0.0]") or (
        out.startswith("refused regex_match: pattern") and "took more than 1 s" in out), out
