"""The Unsloth backend's argument mappings and the TRL-version adaptation, on a CPU machine."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from app.domain.hyperparameters import validate_hyperparameters
from worker.training.backends import BACKENDS, TrainerParts, TrlBackend
from worker.training.compat import adapt_arguments, build_config
from worker.training.unsloth_backend import (
    ALL_LINEAR_MODULES,
    UnslothBackend,
    config_overrides,
    load_arguments,
    max_seq_length,
    peft_arguments,
    target_modules,
    use_fast_inference,
)


def test_all_linear_is_spelled_out_for_unsloth():
    assert target_modules("all-linear") == list(ALL_LINEAR_MODULES)
    assert set(ALL_LINEAR_MODULES) == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
    }
    assert target_modules(["q_proj", "v_proj"]) == ["q_proj", "v_proj"]


def test_peft_arguments_carry_the_runs_lora_settings():
    hp = validate_hyperparameters(
        "sft", {"lora_r": 8, "lora_alpha": 24, "lora_dropout": 0.0, "seed": 7,
                "lora_target_modules": ["q_proj", "o_proj"]}
    )
    assert peft_arguments(hp) == {
        "r": 8, "lora_alpha": 24, "lora_dropout": 0.0, "target_modules": ["q_proj", "o_proj"],
        "bias": "none", "use_gradient_checkpointing": "unsloth", "random_state": 7,
    }
    # The same numbers the TRL backend gives peft.LoraConfig.
    trl = hp.lora_arguments()
    assert (trl["r"], trl["lora_alpha"], trl["lora_dropout"]) == (8, 24, 0.0)


def test_max_seq_length_per_strategy():
    assert max_seq_length("sft", validate_hyperparameters("sft", {"max_length": 1024})) == 1024
    assert max_seq_length("dpo", validate_hyperparameters("dpo", {"max_length": 300})) == 300
    grpo = validate_hyperparameters(
        "grpo", {"max_prompt_length": 200, "max_completion_length": 56}
    )
    assert max_seq_length("grpo", grpo) == 256


def test_load_arguments_with_and_without_fast_inference():
    hp = validate_hyperparameters("grpo", {"lora_r": 32, "load_in_4bit": True})
    plain = load_arguments("grpo", hp, model_name="/m", fast_inference=False)
    assert plain == {"model_name": "/m", "max_seq_length": 256 + 128, "dtype": None,
                     "load_in_4bit": True, "local_files_only": True}
    # from_pretrained defaults to 4-bit loading: the run's choice is always passed, False included.
    assert load_arguments("sft", validate_hyperparameters("sft", {}), model_name="/m",
                          fast_inference=False)["load_in_4bit"] is False
    fast = load_arguments("grpo", hp, model_name="/m", fast_inference=True)
    assert fast["fast_inference"] is True and fast["max_lora_rank"] == 32
    assert 0 < fast["gpu_memory_utilization"] < 1
    assert validate_hyperparameters("sft", {}).load_in_4bit is False


def test_vllm_generation_only_for_grpo_when_installed():
    assert use_fast_inference("grpo", vllm_installed=True)
    assert not use_fast_inference("grpo", vllm_installed=False)
    assert not use_fast_inference("sft", vllm_installed=True)
    # Unsloth's patched GRPOTrainer turns use_vllm on itself when the model carries a vLLM engine;
    # mixed precision it takes from the model's dtype. Checkpointing and the optimizer are ours.
    assert config_overrides() == {
        "activation_checkpointing": False, "optim": "adamw_torch_fused"
    }
    backend = UnslothBackend("grpo")  # constructing it imports nothing heavy
    assert backend.config_overrides(device="cuda") == config_overrides()
    assert backend.fast_inference == (importlib.util.find_spec("vllm") is not None)
    assert set(BACKENDS) == {"trl", "unsloth"}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_unsloth_without_cuda_says_so():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        UnslothBackend("sft").add_lora(object(), validate_hyperparameters("sft", {}))


def test_trl_backend_refuses_4bit_before_loading_anything(tmp_path):
    from worker.training import TrainingJob

    job = TrainingJob(run_id=1, strategy="sft", base_model="no-such-model",
                      dataset_path=tmp_path / "d.jsonl", dataset_format="prompt_completion",
                      hyperparameters={}, output_dir=tmp_path, model_cache_dir=tmp_path)
    hp = validate_hyperparameters("sft", {"load_in_4bit": True})
    with pytest.raises(ValueError, match="load_in_4bit needs the unsloth backend"):
        TrlBackend("sft").load_model(job, hp, device="cpu")


# -- TRL version adaptation ------------------------------------------------------------------

OLD_FIELDS = {"output_dir", "gradient_checkpointing", "max_length", "beta"}


def test_new_names_become_old_ones_where_the_class_lacks_them():
    adapted = adapt_arguments(
        {"output_dir": "x", "activation_checkpointing": True, "max_length": 8}, OLD_FIELDS
    )
    assert adapted == {"output_dir": "x", "gradient_checkpointing": True, "max_length": 8}
    both = OLD_FIELDS | {"activation_checkpointing"}
    assert adapt_arguments({"activation_checkpointing": False}, both) == {
        "activation_checkpointing": False
    }


def test_unknown_settings_are_dropped_only_when_unset():
    assert adapt_arguments({"beta": 0.1, "steps_per_generation": None}, OLD_FIELDS) == {"beta": 0.1}
    with pytest.raises(TypeError, match="no 'steps_per_generation' setting"):
        adapt_arguments({"steps_per_generation": 4}, OLD_FIELDS)


def test_build_config_on_an_older_style_config_class():
    older = dataclasses.make_dataclass(
        "OlderConfig", [("output_dir", str), ("gradient_checkpointing", bool, True)]
    )
    config = build_config(older, {"output_dir": "x", "activation_checkpointing": False,
                                  "generation_batch_size": None})
    assert config.gradient_checkpointing is False


@pytest.mark.parametrize("strategy", ["sft", "grpo", "dpo"])
def test_installed_trl_accepts_both_backends_arguments(strategy):
    from trl import DPOConfig, GRPOConfig, SFTConfig

    config_class = {"sft": SFTConfig, "grpo": GRPOConfig, "dpo": DPOConfig}[strategy]
    hp = validate_hyperparameters(strategy, {"num_generations": 2} if strategy == "grpo" else {})
    arguments = hp.trl_arguments(output_dir=Path("unused"), on_cpu=True)
    for overrides in ({}, config_overrides()):
        parts = TrainerParts(model=None, tokenizer=None, peft_config=None, train_dataset=None,
                             eval_dataset=None, callbacks=[], reporter=None, on_cpu=True,
                             config_overrides=overrides)
        config = parts.config(config_class, arguments)
        assert config.learning_rate == hp.learning_rate
        assert not config.gradient_checkpointing


def test_resolve_backend_on_this_cpu_machine():
    import torch

    from worker.training.backends import resolve_backend

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert resolve_backend("auto") == ("trl", "cpu")
    assert resolve_backend("auto", unsloth_usable=True) == ("trl", "cpu")  # no CUDA, no Unsloth
    assert resolve_backend("trl", unsloth_usable=False) == ("trl", "cpu")
    with pytest.raises(ValueError, match="unsloth backend requested but this worker has no CUDA"):
        resolve_backend("unsloth", unsloth_usable=True)
