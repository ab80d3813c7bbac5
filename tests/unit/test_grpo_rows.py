"""GRPO on prompt/completion datasets: the completion becomes the reference answer the rewards
check (plain text in "answer"), prompts follow the usual chat-template rule, and evaluation reads
the same reference (app.domain.rewards.columns)."""

from __future__ import annotations

import pytest

from app.domain import evaluation_rows as row_tools
from app.domain.prompts import format_prompts
from app.domain.rewards import REWARD_FUNCTIONS
from app.domain.rewards.columns import grpo_rows, reference_text, reward_columns
from app.domain.scorers import resolve_scorers, reward_scores
from app.domain.training_rows import check_columns

SYSTEM = {"role": "system", "content": "Be brief."}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


STRING_ROW = {"prompt": "2+2?", "completion": "4", "source": "s"}
CHAT_ROW = {"prompt": [user("2+2?")], "completion": [assistant("4")], "source": "s"}


def prepare(rows, dataset_format, *, mode="auto", system=None, template=True):
    """As load_datasets and evaluation's prepare_rows do for a GRPO run."""
    check_columns(rows, strategy="grpo", dataset_format=dataset_format)
    return format_prompts(grpo_rows(rows), dataset_format=dataset_format, chat_template=mode,
                          system_prompt=system, has_template=template)


@pytest.mark.parametrize(("mode", "template", "prompt"), [
    ("auto", True, [user("2+2?")]),
    ("on", True, [user("2+2?")]),
    ("off", True, "2+2?"),
    ("auto", False, "2+2?"),
])
def test_a_string_completion_becomes_the_plain_answer_whatever_the_template(
    mode, template, prompt,
):
    (row,) = prepare([STRING_ROW], "prompt_completion", mode=mode, template=template)
    # No "completion" left for the trainer to imitate (or for TRL to withhold from rewards).
    assert row == {"prompt": prompt, "answer": "4", "source": "s"}
    assert STRING_ROW == {"prompt": "2+2?", "completion": "4", "source": "s"}  # input untouched


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_a_conversational_completion_becomes_its_text_and_the_prompt_stays_a_conversation(mode):
    (row,) = prepare([CHAT_ROW], "conversational_prompt_completion", mode=mode)
    assert row == {"prompt": [user("2+2?")], "answer": "4", "source": "s"}
    (with_system,) = prepare([CHAT_ROW], "conversational_prompt_completion", system="Be brief.")
    assert with_system["prompt"] == [SYSTEM, user("2+2?")] and with_system["answer"] == "4"
    several = {**CHAT_ROW, "completion": [assistant("Two and two"), assistant("make 4")]}
    assert prepare([several], "conversational_prompt_completion")[0]["answer"] == (
        "Two and two\nmake 4")


def test_a_dataset_answer_column_wins_over_the_completion():
    row = {"prompt": "Sam has 2+2 apples?", "completion": "2 + 2 = 4\n#### 4", "answer": "4"}
    (prepared,) = prepare([row], "prompt_completion", mode="off")
    assert prepared == {"prompt": "Sam has 2+2 apples?", "answer": "4"}
    assert reward_columns(["prompt", "completion", "answer"]) == ["answer"]


def test_reward_columns_are_what_the_prepared_rows_pass_to_rewards():
    assert reward_columns(["prompt", "completion", "source"]) == ["source", "answer"]
    assert reward_columns(["prompt", "answer"]) == ["answer"]
    assert reward_columns(["prompt"]) == []
    prompt_only = [{"prompt": "2+2?", "answer": "4"}]
    assert grpo_rows(prompt_only) == prompt_only
    assert [reference_text(v) for v in (42, None, [assistant("7")])] == ["42", "", "7"]


def test_grpo_takes_prompt_completion_formats_but_not_messages():
    check_columns([STRING_ROW], strategy="grpo", dataset_format="prompt_completion")
    check_columns([CHAT_ROW], strategy="grpo", dataset_format="conversational_prompt_completion")
    with pytest.raises(ValueError, match="grpo needs a dataset in one of these formats"):
        check_columns([{"messages": [user("hi")]}], strategy="grpo", dataset_format="messages")


@pytest.mark.parametrize(("rows", "dataset_format"), [
    ([STRING_ROW], "prompt_completion"),
    ([CHAT_ROW], "conversational_prompt_completion"),
])
def test_answer_rewards_and_evaluation_read_the_same_plain_reference(rows, dataset_format):
    prepared = prepare(rows, dataset_format)
    exact = REWARD_FUNCTIONS["exact_answer"].build()  # default column: answer
    columns = {key: [row[key] for row in prepared] for key in prepared[0] if key != "prompt"}
    assert exact(completions=["<answer>4</answer>"], **columns) == [1.0]
    assert exact(completions=[[assistant("It is 5")]], **columns) == [0.0]
    # Evaluation: the reward scorers on the prepared rows, and the reference shown beside them.
    scorers = resolve_scorers("grpo", None, [{"name": "exact_answer", "weight": 1.0,
                                              "params": {"column": "answer"}}])
    assert reward_scores(scorers, ["so 4"], prepared)[0] == {"exact_answer": 1.0,
                                                             "reward_total": 1.0}
    parts = row_tools.example_parts(prepared[0], dataset_format=dataset_format)
    assert parts["reference"] == "4" and parts["prompt"] == [user("2+2?")]


def test_answer_rewards_read_a_conversational_column_as_its_text():
    # An SFT run evaluated with exact_answer on its completion column, under the chat template.
    exact = REWARD_FUNCTIONS["exact_answer"].build({"column": "completion"})
    assert exact(completions=["#### 4"], completion=[[assistant("4")]]) == [1.0]
    numeric = REWARD_FUNCTIONS["numeric_match"].build({"column": "completion"})
    assert numeric(completions=["4"], completion=[[assistant("The answer is #### 4")]]) == [1.0]
