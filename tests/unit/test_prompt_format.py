"""The chat-template rule that training, evaluation and the playground share
(app.domain.prompts ``uses_chat_template`` / ``format_prompts``), and the hyperparameter
that sets it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.domain import evaluation_rows as row_tools
from app.domain.hyperparameters import validate_hyperparameters
from app.domain.prompts import chat_settings, format_prompts, uses_chat_template

SYSTEM = {"role": "system", "content": "Be brief."}
ROWS = {  # one row per string format, each with an extra column that must survive
    "prompt_only": {"prompt": "2+2?", "answer": "4"},
    "prompt_completion": {"prompt": "2+2?", "completion": "4", "source": "s"},
    "preference": {"prompt": "2+2?", "chosen": "4", "rejected": "5", "source": "s"},
}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def fmt(rows, dataset_format, *, mode="auto", system=None, template=True):
    return format_prompts(rows, dataset_format=dataset_format, chat_template=mode,
                          system_prompt=system, has_template=template)


@pytest.mark.parametrize("dataset_format", list(ROWS))
def test_auto_with_a_template_makes_string_rows_conversations_and_keeps_other_columns(
    dataset_format,
):
    row = ROWS[dataset_format]
    (converted,) = fmt([row], dataset_format)
    assert converted["prompt"] == [user("2+2?")]
    for column in ("completion", "chosen", "rejected"):
        if column in row:
            assert converted[column] == [assistant(row[column])]
    extra = {k: v for k, v in row.items() if k in ("answer", "source")}
    assert extra and {k: converted[k] for k in extra} == extra
    (with_system,) = fmt([row], dataset_format, mode="on", system="Be brief.")
    assert with_system["prompt"] == [SYSTEM, user("2+2?")]
    assert row == ROWS[dataset_format]  # the input row is not modified


@pytest.mark.parametrize("dataset_format", list(ROWS))
def test_strings_stay_strings_under_off_or_without_a_template(dataset_format):
    rows = [ROWS[dataset_format]]
    assert fmt(rows, dataset_format, mode="off") == rows
    assert fmt(rows, dataset_format, mode="auto", template=False) == rows
    assert fmt(rows, dataset_format, mode="off", template=False) == rows


def test_on_without_a_template_fails_naming_the_fix():
    for dataset_format in ("prompt_only", "text", "messages"):
        with pytest.raises(ValueError, match="set chat_template to 'auto' or 'off'"):
            fmt([ROWS["prompt_only"]], dataset_format, mode="on", template=False)


def test_a_system_prompt_or_conversational_data_needs_a_template():
    with pytest.raises(ValueError, match="no chat template: .* or clear system_prompt"):
        fmt([ROWS["prompt_only"]], "prompt_only", system="Be brief.", template=False)
    messages = {"messages": [user("hi"), assistant("hello")]}
    with pytest.raises(ValueError, match="messages dataset is made of conversations"):
        fmt([messages], "messages", template=False)


def test_conversations_are_untouched_except_for_the_system_prompt():
    messages = {"messages": [user("hi"), assistant("hello")], "id": 1}
    assert fmt([messages], "messages", mode="off") == [messages]
    assert fmt([messages], "messages", system="Be brief.")[0] == {
        "messages": [SYSTEM, user("hi"), assistant("hello")], "id": 1}
    own = {"prompt": [{"role": "system", "content": "Mine."}, user("hi")],
           "completion": [assistant("hello")]}
    assert fmt([own], "conversational_prompt_completion", system="Be brief.") == [own]


def test_text_rows_never_change():
    rows = [{"text": "plain"}]
    assert fmt(rows, "text", mode="on") == rows
    assert fmt(rows, "text", system="Be brief.") == rows
    assert not uses_chat_template(dataset_format="text", chat_template="auto",
                                  system_prompt=None, has_template=True)


def test_stored_hyperparameters_without_the_key_read_as_they_trained():
    assert chat_settings({}) == ("off", None)  # a run stored before the setting
    assert chat_settings({"system_prompt": "  ", "chat_template": "off"}) == ("off", None)
    assert chat_settings({"system_prompt": "Be brief.", "chat_template": None}) == (
        "off", "Be brief.")


def test_hyperparameter_defaults_to_auto_and_refuses_a_system_prompt_without_chat():
    for strategy in ("sft", "grpo", "dpo"):
        assert validate_hyperparameters(strategy, {}).chat_template == "auto"
        with pytest.raises(ValidationError, match="a system prompt needs the chat template"):
            validate_hyperparameters(strategy, {"chat_template": "off", "system_prompt": "Hi."})
    assert validate_hyperparameters("sft", {"chat_template": "off", "system_prompt": " "})
    with pytest.raises(ValidationError, match="'auto', 'on' or 'off'"):
        validate_hyperparameters("sft", {"chat_template": "yes"})


@pytest.mark.parametrize("hyperparameters, dataset_format, template, expected", [
    ({}, "prompt_completion", True, "hi"),  # stored before chat_template: trained on strings
    ({"chat_template": "auto"}, "prompt_completion", True, [user("hi")]),
    ({}, "prompt_completion", False, "hi"),
    ({"chat_template": "off"}, "prompt_completion", True, "hi"),
    ({"chat_template": "on", "system_prompt": "Be brief."}, "prompt_only", True,
     [SYSTEM, user("hi")]),
    ({"chat_template": "off"}, "messages", True, [user("hi")]),  # conversations always chat
    ({"system_prompt": "Be brief."}, "conversational_preference", True, [SYSTEM, user("hi")]),
    ({"chat_template": "on"}, "text", True, "hi"),  # the run trained on plain text
])
def test_playground_prompt_is_formatted_like_a_training_prompt(
    hyperparameters, dataset_format, template, expected,
):
    playground = row_tools.playground_prompt("hi", dataset_format=dataset_format,
                                             hyperparameters=hyperparameters,
                                             has_template=template)
    assert playground == expected
    if dataset_format in ROWS:  # exactly what training makes of a row with that prompt
        mode, system = chat_settings(hyperparameters)
        (row,) = fmt([{"prompt": "hi"}], dataset_format, mode=mode, system=system,
                     template=template)
        assert playground == row["prompt"]


def test_display_text_of_a_wrapped_prompt_is_its_words():
    assert row_tools.text_of([user("hi")]) == "hi"
    assert row_tools.text_of([assistant("4")]) == "4"
    assert row_tools.text_of([SYSTEM, user("hi")]) == "system: Be brief.\nuser: hi"


def test_prompt_only_rows_with_message_prompts_are_conversations_under_every_mode(tmp_path):
    """Upload classifies message-list prompts as prompt_only (its format does not say they are
    conversations); TRL templates them whatever chat_template says, and so does the rule."""
    from app.domain.datasets.formats import parse_dataset
    from app.domain.prompts import has_message_prompts

    upload = tmp_path / "chat-prompts.jsonl"
    upload.write_text('{"prompt": [{"role": "user", "content": "2+2?"}], "answer": "4"}\n')
    parsed = parse_dataset(upload, filename=upload.name)
    assert parsed.format == "prompt_only" and has_message_prompts(parsed.rows)
    for mode in ("auto", "on", "off"):
        assert uses_chat_template(dataset_format="prompt_only", chat_template=mode,
                                  system_prompt=None, has_template=True, message_prompts=True)
        (row,) = fmt(parsed.rows, "prompt_only", mode=mode)
        assert row == {"prompt": [user("2+2?")], "answer": "4"}
    (with_system,) = fmt(parsed.rows, "prompt_only", mode="on", system="Be brief.")
    assert with_system["prompt"] == [SYSTEM, user("2+2?")]
    assert not has_message_prompts([ROWS["prompt_only"]]) and not has_message_prompts([])


def test_message_prompts_without_a_template_fail_naming_them():
    rows = [{"prompt": [user("2+2?")]}]
    with pytest.raises(ValueError, match="made of message-list prompts, but this model's "
                                         "tokenizer has no chat template: choose a chat"):
        fmt(rows, "prompt_only", mode="off", template=False)
    assert fmt([ROWS["prompt_only"]], "prompt_only", mode="off", template=False) == [
        ROWS["prompt_only"]]  # string prompts under "off" need no template


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_playground_of_a_run_on_message_prompts_is_a_conversation_as_in_training(mode):
    hyperparameters = {"chat_template": mode}
    playground = row_tools.playground_prompt("hi", dataset_format="prompt_only",
                                             hyperparameters=hyperparameters, has_template=True,
                                             message_prompts=True)
    (trained,) = fmt([{"prompt": [user("hi")]}], "prompt_only", mode=mode)
    assert playground == trained["prompt"] == [user("hi")]
    # The same run on string prompts: "off" keeps the typed prompt plain.
    plain = row_tools.playground_prompt("hi", dataset_format="prompt_only",
                                        hyperparameters=hyperparameters, has_template=True)
    assert plain == ("hi" if mode == "off" else [user("hi")])
