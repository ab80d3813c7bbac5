import json

import pytest

from app.services.wizard.decision_tree import (
    ANSWER_TYPES,
    HYPERPARAMETER_PRESETS,
    LEAVES,
    QUESTIONS,
    MissingAnswer,
    StrategyAnswers,
    next_question,
    preset,
    recommend,
    suggest_rewards,
)

T = 1000  # the default large_dataset_threshold


@pytest.mark.parametrize(
    ("answers", "strategy", "leaf", "asked"),
    [
        (
            StrategyAnswers(labelled=False, verifiable=False),
            "dpo",
            "rlhf_dpo",
            ["labelled", "verifiable"],
        ),
        (
            StrategyAnswers(labelled=False, verifiable=True),
            "grpo",
            "rft_grpo_unlabelled",
            ["labelled", "verifiable"],
        ),
        (
            StrategyAnswers(labelled=True, num_examples=5000),
            "sft",
            "sft_large",
            ["labelled", "num_examples"],
        ),
        (
            StrategyAnswers(labelled=True, num_examples=200, reasoning_helps=True),
            "grpo",
            "rft_grpo_reasoning",
            ["labelled", "num_examples", "reasoning_helps"],
        ),
        (
            StrategyAnswers(labelled=True, num_examples=200, reasoning_helps=False),
            "sft",
            "sft_tiny",
            ["labelled", "num_examples", "reasoning_helps"],
        ),
    ],
)
def test_every_leaf(answers, strategy, leaf, asked):
    rec = recommend(answers, large_threshold=T)
    assert (rec.strategy, rec.leaf) == (strategy, leaf)
    assert [step.question_id for step in rec.path] == asked
    assert all(step.question and step.answer_label for step in rec.path)
    assert 2 <= rec.explanation.count(". ") + 1 <= 4
    assert rec.caveats and rec.data_format.description
    json.dumps(rec.data_format.example)  # a JSON row
    assert next_question(answers, large_threshold=T) is None


def test_answers_the_tree_does_not_need_are_ignored():
    rec = recommend(
        StrategyAnswers(labelled=True, verifiable=False, num_examples=5000, reasoning_helps=True),
        large_threshold=T,
    )
    assert rec.leaf == "sft_large"
    assert [step.question_id for step in rec.path] == ["labelled", "num_examples"]


@pytest.mark.parametrize(
    ("answers", "missing", "words"),
    [
        (StrategyAnswers(labelled=None), "labelled", "labelled"),
        (StrategyAnswers(labelled=None, verifiable=True, num_examples=5), "labelled", "labelled"),
        (StrategyAnswers(labelled=False), "verifiable", "checked automatically"),
        (StrategyAnswers(labelled=False, num_examples=10), "verifiable", "labelled is false"),
        (StrategyAnswers(labelled=True), "num_examples", "how many"),
        (StrategyAnswers(labelled=True, reasoning_helps=True), "num_examples", "how many"),
        (StrategyAnswers(labelled=True, num_examples=10), "reasoning_helps", "chain of thought"),
    ],
)
def test_missing_answers(answers, missing, words):
    with pytest.raises(MissingAnswer, match=words) as raised:
        recommend(answers, large_threshold=T)
    assert raised.value.field == missing
    assert isinstance(raised.value, ValueError)
    assert next_question(answers, large_threshold=T) == missing


def test_missing_verifiable_message_is_the_one_the_ui_shows():
    with pytest.raises(MissingAnswer) as raised:
        recommend(StrategyAnswers(labelled=False), large_threshold=T)
    assert str(raised.value) == (
        "the tree needs 'verifiable' when labelled is false: "
        "can correctness be checked automatically?"
    )


@pytest.mark.parametrize(
    ("num_examples", "threshold", "leaf_or_missing"),
    [
        (1000, 1000, "sft_large"),
        (999, 1000, "reasoning_helps"),
        (0, 1000, "reasoning_helps"),
        (50, 50, "sft_large"),
        (49, 50, "reasoning_helps"),
        (1500, 2000, "reasoning_helps"),
        (1, 1, "sft_large"),
    ],
)
def test_threshold_boundary(num_examples, threshold, leaf_or_missing):
    answers = StrategyAnswers(labelled=True, num_examples=num_examples)
    if leaf_or_missing == "sft_large":
        assert recommend(answers, large_threshold=threshold).leaf == "sft_large"
        assert next_question(answers, large_threshold=threshold) is None
    else:
        with pytest.raises(MissingAnswer) as raised:
            recommend(answers, large_threshold=threshold)
        assert raised.value.field == leaf_or_missing
        assert f"{threshold:,}" in str(raised.value)


def test_threshold_shows_in_the_path_label():
    rec = recommend(StrategyAnswers(labelled=True, num_examples=1200), large_threshold=1000)
    assert rec.path[-1].answer_label == "1,200 (>= 1,000)"


@pytest.mark.parametrize("fn", [recommend, next_question])
def test_negative_count_and_bad_threshold_are_value_errors_not_missing_answers(fn):
    with pytest.raises(ValueError, match="negative") as raised:
        fn(StrategyAnswers(labelled=True, num_examples=-1), large_threshold=T)
    assert not isinstance(raised.value, MissingAnswer)
    with pytest.raises(ValueError, match="large_threshold"):
        fn(StrategyAnswers(labelled=True, num_examples=10), large_threshold=0)


def test_threshold_is_keyword_only():
    with pytest.raises(TypeError):
        recommend(StrategyAnswers(labelled=True, num_examples=10), 1000)  # type: ignore[misc]


def test_next_question_walks_the_wizard_one_question_at_a_time():
    answers = StrategyAnswers(labelled=None)
    given = {"labelled": True, "num_examples": 300, "reasoning_helps": True}
    asked = []
    while (qid := next_question(answers, large_threshold=T)) is not None:
        asked.append(qid)
        setattr(answers, qid, given[qid])
    assert asked == ["labelled", "num_examples", "reasoning_helps"]
    assert recommend(answers, large_threshold=T).leaf == "rft_grpo_reasoning"


def test_questions_cover_every_answer_field_in_order():
    assert [q.id for q in QUESTIONS] == [
        "labelled",
        "verifiable",
        "num_examples",
        "reasoning_helps",
    ]
    assert all(q.text.endswith("?") and q.help for q in QUESTIONS)
    count = next(q for q in QUESTIONS if q.id == "num_examples")
    assert count.kind == "count" and "rule of thumb" in count.help


def test_leaves_and_recommendations_do_not_share_mutable_state():
    rec = recommend(StrategyAnswers(labelled=False, verifiable=False), large_threshold=T)
    rec.caveats.append("edited")
    rec.data_format.example["prompt"] = "edited"
    again = recommend(StrategyAnswers(labelled=False, verifiable=False), large_threshold=T)
    assert "edited" not in again.caveats
    assert again.data_format.example["prompt"] != "edited"
    assert set(LEAVES) == {
        "rlhf_dpo",
        "rft_grpo_unlabelled",
        "sft_large",
        "rft_grpo_reasoning",
        "sft_tiny",
    }


def test_data_formats_match_the_strategy():
    def columns(answers):
        return set(recommend(answers, large_threshold=T).data_format.example)

    assert columns(StrategyAnswers(labelled=False, verifiable=False)) == {
        "prompt",
        "chosen",
        "rejected",
    }
    assert columns(StrategyAnswers(labelled=True, num_examples=5000)) == {"prompt", "completion"}
    assert "answer" in columns(StrategyAnswers(labelled=True, num_examples=5, reasoning_helps=True))


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (
            "sft",
            {
                "learning_rate": 2e-4,
                "lora_r": 16,
                "lora_alpha": 32,
                "max_steps": 60,
                "per_device_train_batch_size": 4,
            },
        ),
        (
            "grpo",
            {
                "learning_rate": 5e-6,
                "num_generations": 4,
                "max_completion_length": 128,
                "beta": 0.04,
                "temperature": 0.9,
            },
        ),
        ("dpo", {"learning_rate": 5e-6, "beta": 0.1}),
    ],
)
def test_presets(strategy, expected):
    assert expected.items() <= HYPERPARAMETER_PRESETS[strategy].items()
    copy = preset(strategy)
    copy["learning_rate"] = 1.0
    assert HYPERPARAMETER_PRESETS[strategy]["learning_rate"] == expected["learning_rate"]


def test_grpo_preset_batch_divides_into_generations():
    grpo = HYPERPARAMETER_PRESETS["grpo"]
    batch = grpo["per_device_train_batch_size"] * grpo["gradient_accumulation_steps"]
    assert batch % grpo["num_generations"] == 0


@pytest.mark.parametrize(
    ("answer_type", "expected"),
    [
        ("number", [("exact_answer", 1.0), ("numeric_match", 0.5), ("soft_format", 0.25)]),
        ("text", [("exact_answer", 1.0), ("soft_format", 0.25)]),
        ("json", [("json_valid", 1.0)]),
        ("free", [("length_target", 1.0), ("soft_format", 0.25)]),
    ],
)
def test_suggest_rewards(answer_type, expected):
    rewards = suggest_rewards(answer_type)
    assert [(r["name"], r["weight"]) for r in rewards] == expected
    assert all(set(r) == {"name", "weight", "params"} and r["params"] == {} for r in rewards)
    rewards[0]["weight"] = 99.0
    assert suggest_rewards(answer_type)[0]["weight"] == expected[0][1]


def test_suggested_rewards_are_known_to_the_reward_library():
    known = {
        "exact_answer",
        "numeric_match",
        "strict_format",
        "soft_format",
        "tag_count",
        "regex_match",
        "json_valid",
        "length_target",
    }
    for answer_type in ANSWER_TYPES:
        assert {r["name"] for r in suggest_rewards(answer_type)} <= known


def test_suggested_rewards_pass_the_worker_validation():
    rewards = pytest.importorskip("app.domain.rewards")
    for answer_type in ANSWER_TYPES:
        configs = rewards.validate_reward_config(suggest_rewards(answer_type))
        assert [c.name for c in configs] == [r["name"] for r in suggest_rewards(answer_type)]


def test_unknown_answer_type():
    with pytest.raises(ValueError, match="answer type"):
        suggest_rewards("image")
