"""The GPU install's TRL (1.15, pinned by Unsloth) against the arguments TuneDeck really builds.

TRL 1.15 cannot be installed beside the CPU install's 1.16, and the Unsloth backend never runs
without a GPU, so its config field names are checked in (tests/fixtures/trl_1_15_fields.json, the
file says how it was made) and every strategy's arguments, with each backend's overrides on top,
are adapted to them here: the TypeError a GPU worker would raise on its first run shows up on CPU.
"""

from __future__ import annotations

import dataclasses
import importlib
import json

import pytest

from app.domain.hyperparameters import validate_hyperparameters
from tests.conftest import ROOT
from worker.training import TrainingJob
from worker.training.backends import TrainerParts, TrlBackend, gpu_precision
from worker.training.compat import adapt_arguments
from worker.training.unsloth_backend import UnslothBackend

FIELDS_1_15 = json.loads((ROOT / "tests" / "fixtures" / "trl_1_15_fields.json").read_text())
CONFIG_CLASS = {"sft": "SFTConfig", "grpo": "GRPOConfig", "dpo": "DPOConfig"}
# Hyperparameters that switch on every optional TRL argument the builders can pass.
HYPERPARAMETERS = {
    "sft": [{}, {"eval_split": 0.2, "eval_steps": 5, "warmup_ratio": 0.1, "max_length": 1024}],
    "grpo": [{}, {"eval_split": 0.1, "steps_per_generation": 2, "loss_type": "cispo", "beta": 0.0},
             {"generation_batch_size": 8, "num_generations": 4, "loss_type": "dr_grpo"}],
    "dpo": [{}, {"eval_split": 0.1, "max_prompt_length": 128, "loss_type": "ipo"}],
}
# (backend, device, GPU has bf16): the combinations a worker can run.
SETUPS = [("trl", "cpu", False), ("trl", "cuda", True), ("trl", "cuda", False),
          ("unsloth", "cuda", True)]


def _overrides(backend: str, device: str, bf16: bool) -> dict:
    if backend == "unsloth":
        return UnslothBackend("sft").config_overrides(device=device)
    return gpu_precision(bf16_supported=bf16) if device == "cuda" else {}


def _config_arguments(strategy: str, hp_data: dict, tmp_path, device: str, overrides: dict) -> dict:
    """What the strategy's builder hands TrainerParts.config, overrides included."""
    hp = validate_hyperparameters(strategy, hp_data)
    job = TrainingJob(run_id=1, strategy=strategy, base_model="unused", dataset_path=tmp_path,
                      dataset_format="prompt_completion", hyperparameters=hp_data,
                      output_dir=tmp_path, model_cache_dir=tmp_path,
                      reward_weights=[1.0, 0.5] if strategy == "grpo" else None)
    builder = importlib.import_module(f"worker.training.{strategy}")
    arguments = builder.config_arguments(job, hp, on_cpu=device == "cpu")
    parts = TrainerParts(model=None, tokenizer=None, peft_config=None, train_dataset=None,
                         eval_dataset=None, callbacks=[], reporter=None, on_cpu=device == "cpu",
                         config_overrides=overrides)
    return parts.config_arguments(arguments)


def test_the_fixture_is_trl_1_15_without_the_new_checkpointing_name():
    assert (FIELDS_1_15["trl"], FIELDS_1_15["transformers"]) == ("1.15.0", "5.17.0")
    for name in CONFIG_CLASS.values():
        fields = set(FIELDS_1_15[name])
        assert {"gradient_checkpointing", "bf16", "fp16", "eval_strategy"} <= fields
        assert "activation_checkpointing" not in fields
    assert {"max_length"} <= set(FIELDS_1_15["SFTConfig"]) & set(FIELDS_1_15["DPOConfig"])
    assert {"num_generations", "max_completion_length", "use_vllm", "reward_weights"} <= set(
        FIELDS_1_15["GRPOConfig"]
    )


@pytest.mark.parametrize("backend,device,bf16", SETUPS)
@pytest.mark.parametrize("strategy", ["sft", "grpo", "dpo"])
def test_every_argument_fits_trl_1_15(strategy, backend, device, bf16, tmp_path):
    fields = frozenset(FIELDS_1_15[CONFIG_CLASS[strategy]])
    for hp_data in HYPERPARAMETERS[strategy]:
        overrides = _overrides(backend, device, bf16)
        arguments = _config_arguments(strategy, hp_data, tmp_path, device, overrides)
        adapted = adapt_arguments(arguments, fields)  # raises TypeError on a field 1.15 lacks
        assert set(adapted) <= fields
        assert "activation_checkpointing" not in adapted
        # Unsloth keeps its own checkpointing; the TRL backend checkpoints on a GPU only.
        assert adapted["gradient_checkpointing"] is (backend == "trl" and device == "cuda")
        if strategy == "grpo":  # stated, or Unsloth's config fills them after the papers
            loss = validate_hyperparameters("grpo", hp_data).loss_type
            assert adapted["mask_truncated_completions"] is False
            assert adapted["epsilon_high"] == (5.0 if loss == "cispo" else 0.2)
            assert adapted["scale_rewards"] == ("none" if loss == "dr_grpo" else "group")
        if backend == "unsloth":
            # Its patched trainers pick mixed precision from the model's dtype and vLLM from the
            # model's engine: passing either could contradict them. Its optimizer is TRL's.
            assert not {"bf16", "fp16", "use_vllm", "vllm_mode"} & set(arguments)
            assert adapted["optim"] == "adamw_torch_fused"
        elif device == "cpu":
            assert (adapted["bf16"], adapted["fp16"], adapted["use_cpu"]) == (False, False, True)
        else:
            assert (adapted["bf16"], adapted["fp16"]) == (bf16, not bf16)


def test_on_a_gpu_the_trl_backend_sets_a_precision_the_card_has():
    assert gpu_precision(bf16_supported=True) == {"bf16": True, "fp16": False}
    assert gpu_precision(bf16_supported=False) == {"bf16": False, "fp16": True}
    # On CPU the run's own arguments (bf16=False, use_cpu=True) stand.
    assert TrlBackend("sft").config_overrides(device="cpu") == {}


@pytest.mark.parametrize("strategy", ["sft", "grpo", "dpo"])
def test_installed_trl_takes_the_gpu_arguments_names(strategy, tmp_path):
    """The same argument dicts against the installed TRL: every name is known there too."""
    trl = importlib.import_module("trl")
    config_class = getattr(trl, CONFIG_CLASS[strategy])
    fields = frozenset(field.name for field in dataclasses.fields(config_class))
    for backend, device, bf16 in SETUPS:
        for hp_data in HYPERPARAMETERS[strategy]:
            overrides = _overrides(backend, device, bf16)
            arguments = _config_arguments(strategy, hp_data, tmp_path, device, overrides)
            adapted = adapt_arguments(arguments, fields)
            if "activation_checkpointing" in fields:  # TRL 1.16 on transformers 5.24
                assert "gradient_checkpointing" not in adapted
