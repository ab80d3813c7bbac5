"""Hyperparameter schemas, backend selection and the pure dataset helpers of worker.training."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.domain.hyperparameters import (
    HYPERPARAMETER_SCHEMAS,
    DPOHyperparameters,
    GRPOHyperparameters,
    SFTHyperparameters,
    divisibility_message,
    validate_hyperparameters,
)
from app.domain.prompts import as_conversation
from app.domain.training_rows import check_columns, read_rows, split_rows
from worker.training.backends import select_backend

ROOT = Path(__file__).resolve().parents[2]


def error_text(strategy: str, data: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_hyperparameters(strategy, data)
    return str(caught.value)


# -- schemas ---------------------------------------------------------------------------------


def test_defaults_per_strategy():
    sft, grpo, dpo = (validate_hyperparameters(s, {}) for s in ("sft", "grpo", "dpo"))
    assert isinstance(sft, SFTHyperparameters) and sft.learning_rate == 2e-4
    assert (sft.lora_r, sft.lora_alpha, sft.lora_dropout) == (16, 32, 0.05)
    assert (sft.max_steps, sft.save_steps, sft.eval_split, sft.seed) == (60, 20, 0.0, 42)
    assert isinstance(grpo, GRPOHyperparameters)
    assert (grpo.num_generations, grpo.max_completion_length, grpo.beta) == (4, 128, 0.04)
    assert (grpo.reasoning_tag, grpo.answer_tag) == ("reasoning", "answer")
    assert isinstance(dpo, DPOHyperparameters)
    assert (dpo.learning_rate, dpo.beta, dpo.loss_type) == (5e-6, 0.1, "sigmoid")


def test_typo_is_rejected_with_a_suggestion():
    text = error_text("sft", {"learnig_rate": 1e-4})
    assert "unknown hyperparameter 'learnig_rate'" in text
    assert "did you mean 'learning_rate'?" in text


def test_unknown_field_without_a_close_match_is_still_named():
    text = error_text("dpo", {"num_generations": 4})  # a GRPO field sent to DPO
    assert "unknown hyperparameter 'num_generations'" in text


def test_field_errors_name_the_field():
    with pytest.raises(ValidationError) as caught:
        validate_hyperparameters("sft", {"eval_split": 0.6, "lora_r": 0})
    assert {error["loc"][0] for error in caught.value.errors()} == {"eval_split", "lora_r"}


@pytest.mark.parametrize("steps", [0, -2])
def test_max_steps_is_positive_or_minus_one(steps):
    assert "-1 to use num_train_epochs" in error_text("sft", {"max_steps": steps})
    assert validate_hyperparameters("sft", {"max_steps": -1}).max_steps == -1


def test_target_modules_all_linear_or_a_list():
    assert error_text("sft", {"lora_target_modules": []}).count("list module names") == 1
    assert "lora_target_modules" in error_text("sft", {"lora_target_modules": "q_proj"})
    hp = validate_hyperparameters("sft", {"lora_target_modules": ["q_proj", "v_proj"]})
    assert hp.lora_arguments()["target_modules"] == ["q_proj", "v_proj"]


def test_blank_system_prompt_means_none():
    assert validate_hyperparameters("sft", {"system_prompt": "  "}).system_prompt is None


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy 'ppo': expected one of sft, grpo, dpo"):
        validate_hyperparameters("ppo", {})
    assert set(HYPERPARAMETER_SCHEMAS) == {"sft", "grpo", "dpo"}


def test_grpo_divisibility_message_names_both_fixes():
    text = error_text(
        "grpo",
        {"per_device_train_batch_size": 3, "gradient_accumulation_steps": 2, "num_generations": 4},
    )
    assert (
        "per_device_train_batch_size × gradient_accumulation_steps = 6 is not divisible by "
        "num_generations = 4: use 8 or set num_generations to 2, 3 or 6"
    ) in text


def test_grpo_divisibility_uses_steps_per_generation_or_generation_batch_size():
    text = error_text("grpo", {"per_device_train_batch_size": 2, "steps_per_generation": 3})
    assert "per_device_train_batch_size × steps_per_generation = 6" in text
    text = error_text("grpo", {"per_device_train_batch_size": 2, "generation_batch_size": 10})
    assert "generation_batch_size = 10 is not divisible by num_generations = 4: use 12" in text
    text = error_text("grpo", {"per_device_train_batch_size": 4, "generation_batch_size": 6})
    assert "must be a multiple of per_device_train_batch_size = 4" in text
    text = error_text("grpo", {"steps_per_generation": 2, "generation_batch_size": 8})
    assert "not both" in text


def test_divisibility_message_without_alternative_group_sizes():
    assert divisibility_message("x", 1, 4) == "x = 1 is not divisible by num_generations = 4: use 4"
    assert divisibility_message("x", 5, 2).endswith("use 6 or set num_generations to 5")


@pytest.mark.parametrize(
    "batch,accumulation,generations",
    [(4, 1, 4), (2, 2, 4), (3, 2, 3), (1, 8, 8), (6, 1, 2)],
)
def test_grpo_accepts_whole_prompt_groups(batch, accumulation, generations):
    hp = validate_hyperparameters(
        "grpo",
        {
            "per_device_train_batch_size": batch,
            "gradient_accumulation_steps": accumulation,
            "num_generations": generations,
        },
    )
    assert hp.num_generations == generations


def test_grpo_needs_two_generations_and_distinct_bare_tags():
    assert "num_generations" in error_text("grpo", {"num_generations": 1})
    assert "without angle brackets" in error_text("grpo", {"reasoning_tag": "<think>"})
    text = error_text("grpo", {"reasoning_tag": "answer"})
    assert "reasoning_tag and answer_tag must be different" in text


def test_dpo_prompt_must_leave_room_for_answers():
    text = error_text("dpo", {"max_length": 128, "max_prompt_length": 128})
    assert "leaves no room for the answers" in text
    assert validate_hyperparameters("dpo", {"max_length": 64}).max_prompt_length is None


@pytest.mark.parametrize("strategy", ["sft", "grpo", "dpo"])
def test_stored_hyperparameters_validate_again_unchanged(strategy):
    # The web app stores model_dump(mode="json"); the worker validates that dict again.
    first = validate_hyperparameters(strategy, {"eval_split": 0.1, "seed": 7})
    stored = json.loads(json.dumps(first.model_dump(mode="json")))
    assert validate_hyperparameters(strategy, stored) == first


def test_trl_arguments_on_cpu_and_with_eval():
    hp = validate_hyperparameters("sft", {"eval_split": 0.2, "save_steps": 5, "max_length": 64})
    arguments = hp.trl_arguments(output_dir=Path("/tmp/run"), on_cpu=True)
    assert arguments["output_dir"] == "/tmp/run"
    assert (arguments["use_cpu"], arguments["bf16"], arguments["fp16"]) == (True, False, False)
    assert arguments["activation_checkpointing"] is False
    assert (arguments["eval_strategy"], arguments["eval_steps"]) == ("steps", 5)
    assert (arguments["report_to"], arguments["disable_tqdm"]) == ("none", True)
    assert (arguments["save_strategy"], arguments["logging_steps"]) == ("steps", 1)
    assert arguments["max_length"] == 64
    on_gpu = hp.trl_arguments(output_dir=Path("/tmp/run"), on_cpu=False)
    assert "use_cpu" not in on_gpu and on_gpu["activation_checkpointing"] is True
    no_eval = validate_hyperparameters("sft", {}).trl_arguments(output_dir=Path("x"), on_cpu=True)
    assert (no_eval["eval_strategy"], no_eval["eval_steps"]) == ("no", None)


def test_strategy_specific_trl_arguments():
    grpo = validate_hyperparameters("grpo", {"num_generations": 2, "loss_type": "dr_grpo"})
    arguments = grpo.trl_arguments(output_dir=Path("x"), on_cpu=True)
    assert arguments["loss_type"] == "dr_grpo"
    assert arguments["per_device_eval_batch_size"] == 2  # whole prompt groups in eval too
    assert "max_length" not in arguments and "max_prompt_length" not in arguments
    dpo = validate_hyperparameters("dpo", {"loss_type": "ipo"})
    assert dpo.trl_arguments(output_dir=Path("x"), on_cpu=True)["loss_type"] == ["ipo"]


def test_config_imports_no_torch():
    # The web app validates requests with these schemas and must not pay for torch.
    code = (
        "import sys, app.domain.hyperparameters, worker.training.backends; "
        "import app.domain.training_rows; "
        "heavy = {'torch', 'transformers', 'trl', 'unsloth'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# -- backend selection -----------------------------------------------------------------------


@pytest.mark.parametrize("cuda,importable", list(itertools.product([False, True], [False, True])))
def test_select_backend_every_combination(cuda, importable):
    def pick(requested):
        return select_backend(requested, cuda_available=cuda, unsloth_importable=importable)

    assert pick("trl") == "trl"
    assert pick("auto") == ("unsloth" if cuda and importable else "trl")
    if cuda and importable:
        assert pick("unsloth") == "unsloth"
    elif not cuda:
        with pytest.raises(ValueError, match="needs a CUDA GPU"):
            pick("unsloth")
    else:
        with pytest.raises(ValueError, match="unsloth is not installed"):
            pick("unsloth")
    with pytest.raises(ValueError, match="unknown backend 'vllm'"):
        pick("vllm")


# -- dataset helpers -------------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "Be brief."}


def add_system(row, dataset_format):
    return as_conversation(row, dataset_format=dataset_format, system_prompt="Be brief.")


def test_system_prompt_turns_string_prompts_into_conversations():
    row = add_system({"prompt": "2+2?", "completion": "4"}, "prompt_completion")
    assert row == {
        "prompt": [SYSTEM, {"role": "user", "content": "2+2?"}],
        "completion": [{"role": "assistant", "content": "4"}],
    }
    row = add_system({"prompt": "2+2?", "answer": "4"}, "prompt_only")
    assert row == {"prompt": [SYSTEM, {"role": "user", "content": "2+2?"}], "answer": "4"}
    row = add_system({"prompt": "2+2?", "chosen": "4", "rejected": "5"}, "preference")
    assert row["chosen"] == [{"role": "assistant", "content": "4"}]
    assert row["rejected"] == [{"role": "assistant", "content": "5"}]


def test_system_prompt_is_prepended_once_to_conversations():
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert add_system({"messages": messages}, "messages")["messages"] == [SYSTEM, *messages]
    own = [{"role": "system", "content": "Mine."}, *messages]
    assert add_system({"messages": own}, "messages")["messages"] == own
    implicit = {"chosen": messages, "rejected": messages}  # preference without a prompt column
    assert add_system(implicit, "conversational_preference") == implicit
    assert add_system({"text": "plain"}, "text") == {"text": "plain"}


def test_split_is_deterministic_and_disjoint():
    rows = [{"i": i} for i in range(20)]
    train, held_out = split_rows(rows, eval_split=0.25, seed=3)
    assert (len(train), len(held_out)) == (15, 5)
    assert sorted(r["i"] for r in train + held_out) == list(range(20))
    assert split_rows(rows, eval_split=0.25, seed=3) == (train, held_out)
    assert split_rows(rows, eval_split=0.25, seed=4)[1] != held_out
    assert split_rows(rows, eval_split=0.0, seed=3) == (rows, [])
    assert [len(part) for part in split_rows(rows[:2], eval_split=0.01, seed=0)] == [1, 1]
    with pytest.raises(ValueError, match="at least 2 rows"):
        split_rows(rows[:1], eval_split=0.5, seed=0)


def test_columns_and_formats_are_checked():
    check_columns(
        [{"prompt": "a", "completion": "b"}], strategy="sft", dataset_format="prompt_completion"
    )
    with pytest.raises(
        ValueError, match="grpo needs a dataset in one of these formats: prompt_only"
    ):
        check_columns([{"prompt": "a"}], strategy="grpo", dataset_format="messages")
    with pytest.raises(ValueError, match="row 2 has no rejected"):
        check_columns(
            [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": "a"}],
            strategy="dpo",
            dataset_format="preference",
        )
    with pytest.raises(ValueError, match="unknown dataset format 'csv'"):
        check_columns([{}], strategy="sft", dataset_format="csv")


def test_read_rows_reports_the_bad_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": \n')
    with pytest.raises(ValueError, match="rows.jsonl line 3 is not valid JSON"):
        read_rows(path)
    path.write_text('{"text": "a"}\n\n[1]\n')
    with pytest.raises(ValueError, match="line 3 is not a JSON object"):
        read_rows(path)
    path.write_text('{"text": "a"}\n\n{"text": "b"}\n')
    assert read_rows(path) == [{"text": "a"}, {"text": "b"}]
