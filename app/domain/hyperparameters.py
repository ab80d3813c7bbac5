"""Hyperparameter schemas per strategy, and their translation to TRL config arguments.

No torch/transformers imports: the web app validates run requests with these models.
Defaults and accepted values follow TRL 1.16 (checked against its GRPOConfig/DPOConfig source).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "HYPERPARAMETER_SCHEMAS", "DPOHyperparameters", "GRPOHyperparameters", "SFTHyperparameters",
    "TrainingHyperparameters", "validate_hyperparameters",
]  # fmt: skip

LR_SCHEDULERS = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
    "constant_with_warmup", "inverse_sqrt",
]  # fmt: skip
# TRL 1.16 also has "luspo" (needs sequence-level importance sampling) and "vespo" (needs vLLM).
GRPO_LOSS_TYPES = Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo"]
DPO_LOSS_TYPES = Literal[
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard",
    "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
]  # fmt: skip
# FSDP full-shard of a LoRA model: each decoder layer its own unit, original parameters kept so
# that frozen base weights and trainable LoRA weights can share a unit.
FSDP_CONFIG = {
    "use_orig_params": True, "sync_module_states": True, "cpu_ram_efficient_loading": True,
}  # fmt: skip
_TAG = re.compile(r"^[A-Za-z][\w\-]*$")
# Bounds of what the trainer can work with: beyond them a value fails later, on the worker.
MAX_SEED = 2**32 - 1  # numpy's seed range (TRL seeds numpy, torch and random with it)
MAX_STEPS = 10_000_000
MAX_EPOCHS = 10_000
MAX_LORA_ALPHA = 65_536
MAX_TOKENS = 131_072  # the longest context of any model TuneDeck knows
MAX_SYSTEM_PROMPT_CHARS = 20_000
# A module name as peft matches it: a Python identifier, or a dotted path of them.
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


class TrainingHyperparameters(BaseModel):
    """Settings every strategy shares: LoRA, batch, schedule, checkpoints."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(2e-4, gt=0, le=1)
    lora_r: int = Field(16, ge=1, le=1024)
    lora_alpha: int = Field(32, ge=1, le=MAX_LORA_ALPHA)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: Literal["all-linear"] | list[str] = "all-linear"
    num_train_epochs: float = Field(1.0, gt=0, le=MAX_EPOCHS)
    max_steps: int = Field(60, le=MAX_STEPS)  # -1: train for num_train_epochs instead
    per_device_train_batch_size: int = Field(4, ge=1, le=1024)
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    eval_split: float = Field(0.0, ge=0, le=0.5)  # fraction held out for evaluation; 0 = no eval
    eval_steps: int | None = Field(None, ge=1, le=MAX_STEPS)  # default: every save_steps
    save_steps: int = Field(20, ge=1, le=MAX_STEPS)
    logging_steps: int = Field(1, ge=1, le=MAX_STEPS)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler_type: LR_SCHEDULERS = "linear"
    weight_decay: float = Field(0.0, ge=0, le=1)
    seed: int = Field(42, ge=0, le=MAX_SEED)
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT_CHARS)
    # String prompts (and their answers) become chat messages: "auto" when the tokenizer has a chat
    # template, "on" always (fails without one), "off" never. See app.domain.prompts.
    chat_template: Literal["auto", "on", "off"] = "auto"
    # Load the base model quantised to 4 bits (QLoRA): the Unsloth backend only, on CUDA.
    load_in_4bit: bool = False
    # Placement (see worker/tasks.py): processes per host (GPUs, or CPU processes on a CPU host),
    # hosts, and how the processes share the model: ddp copies it, fsdp shards it (CUDA only).
    num_processes: int = Field(1, ge=1, le=64)
    num_hosts: int = Field(1, ge=1, le=64)
    distributed: Literal["ddp", "fsdp"] = "ddp"

    @model_validator(mode="before")
    @classmethod
    def _name_unknown_fields(cls, data: Any) -> Any:
        # extra="forbid" alone says "Extra inputs are not permitted"; a typo deserves a suggestion.
        if isinstance(data, dict):
            unknown = [key for key in data if key not in cls.model_fields]
            if unknown:
                raise ValueError("; ".join(_unknown_field_message(key, cls) for key in unknown))
        return data

    @field_validator("max_steps")
    @classmethod
    def _steps_or_epochs(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError(
                "max_steps must be a positive number of steps, or -1 to use num_train_epochs"
            )
        return value

    @field_validator("lora_target_modules")
    @classmethod
    def _module_names(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and (not value or not all(name.strip() for name in value)):
            raise ValueError(
                'list module names to adapt (e.g. ["q_proj", "v_proj"]) or use "all-linear"'
            )
        if isinstance(value, list):
            if len(value) > 256:
                raise ValueError("at most 256 module names; use \"all-linear\" for every layer")
            for name in value:
                if len(name) > 200 or not _MODULE_NAME.match(name):
                    raise ValueError(
                        f"{name[:60]!r} is not a module name: use names such as q_proj or "
                        "model.layers.0.mlp.up_proj (letters, digits, _ and dots)"
                    )
        return value

    @field_validator("system_prompt")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @model_validator(mode="after")
    def _system_prompt_needs_chat(self) -> TrainingHyperparameters:
        if self.system_prompt and self.chat_template == "off":
            raise ValueError(
                "a system prompt needs the chat template: set chat_template to 'auto' or 'on', "
                "or clear system_prompt"
            )
        return self

    @model_validator(mode="after")
    def _something_to_shard(self) -> TrainingHyperparameters:
        if self.distributed == "fsdp" and self.world_size == 1:
            raise ValueError(
                "distributed = fsdp shards the model over several processes: raise num_processes "
                "or num_hosts, or use ddp"
            )
        if self.distributed == "fsdp" and self.load_in_4bit:
            raise ValueError(
                "distributed = fsdp cannot shard a 4-bit (load_in_4bit) model: use ddp or turn "
                "load_in_4bit off"
            )
        return self

    @property
    def world_size(self) -> int:
        """Training processes over all hosts."""
        return self.num_processes * self.num_hosts

    @property
    def global_batch_size(self) -> int:
        """Examples per optimizer step: per-device batch × processes × hosts × accumulation."""
        return self.per_device_train_batch_size * self.world_size * self.gradient_accumulation_steps

    def lora_arguments(self) -> dict[str, Any]:
        """Keyword arguments for peft.LoraConfig."""
        return {
            "r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "target_modules": self.lora_target_modules,
            "task_type": "CAUSAL_LM",
        }

    def trl_arguments(self, *, output_dir: Path, on_cpu: bool) -> dict[str, Any]:
        """Keyword arguments for the strategy's TRL config (SFTConfig, GRPOConfig, DPOConfig)."""
        evaluate = self.eval_split > 0
        arguments: dict[str, Any] = {
            "output_dir": str(output_dir),
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.num_train_epochs,
            "max_steps": self.max_steps,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "per_device_eval_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            # transformers 5 dropped warmup_ratio: a warmup_steps below 1 is read as a fraction.
            "warmup_steps": self.warmup_ratio,
            "lr_scheduler_type": self.lr_scheduler_type,
            "weight_decay": self.weight_decay,
            "seed": self.seed,
            "data_seed": self.seed,
            "logging_steps": self.logging_steps,
            "save_strategy": "steps",
            "save_steps": self.save_steps,
            "eval_strategy": "steps" if evaluate else "no",
            "eval_steps": (self.eval_steps or self.save_steps) if evaluate else None,
            "report_to": "none",
            "disable_tqdm": True,
        }
        # TRL turns on bf16 and activation (formerly "gradient") checkpointing by default: right for
        # big models on GPU, only slower on CPU.
        arguments["activation_checkpointing"] = not on_cpu
        if on_cpu:
            arguments |= {
                "use_cpu": True,
                "bf16": False,
                "fp16": False,
                "dataloader_pin_memory": False,
            }
        return arguments | self._strategy_arguments()

    def _strategy_arguments(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def distributed_arguments(*, distributed: str, on_cpu: bool, world_size: int) -> dict:
        """TRL config arguments of one process among ``world_size`` started by torchrun.

        Empty for a single process: a backend set without a process group fails at start.
        """
        if world_size == 1:
            return {}
        arguments: dict[str, Any] = {
            "ddp_backend": "gloo" if on_cpu else "nccl",
            # LoRA leaves every base weight frozen: no search for unused parameters each step.
            "ddp_find_unused_parameters": False,
        }
        if distributed == "fsdp":
            arguments |= {"fsdp": "full_shard auto_wrap", "fsdp_config": dict(FSDP_CONFIG)}
        return arguments


class SFTHyperparameters(TrainingHyperparameters):
    max_length: int = Field(512, ge=8, le=131072)

    def _strategy_arguments(self) -> dict[str, Any]:
        return {"max_length": self.max_length}


class GRPOHyperparameters(TrainingHyperparameters):
    learning_rate: float = Field(1e-5, gt=0, le=1)
    num_generations: int = Field(4, ge=2, le=256)
    # TRL 1.16 no longer truncates prompts: longer prompts are dropped from the dataset instead.
    max_prompt_length: int = Field(256, ge=1, le=MAX_TOKENS)
    max_completion_length: int = Field(128, ge=1, le=MAX_TOKENS)
    temperature: float = Field(0.9, gt=0, le=5)
    top_p: float = Field(1.0, gt=0, le=1)
    beta: float = Field(0.04, ge=0)  # KL weight; 0 skips the reference model
    loss_type: GRPO_LOSS_TYPES = "dapo"
    steps_per_generation: int | None = Field(None, ge=1, le=1024)
    generation_batch_size: int | None = Field(None, ge=1, le=65536)
    # How often sampled completions are stored.
    sample_every_steps: int = Field(5, ge=1, le=MAX_STEPS)
    # Used by the format reward functions and their preset system prompt (app.domain.rewards).
    reasoning_tag: str = "reasoning"
    answer_tag: str = "answer"

    @field_validator("reasoning_tag", "answer_tag")
    @classmethod
    def _bare_tag(cls, value: str) -> str:
        if not _TAG.match(value):
            raise ValueError(
                f"{value!r} is not a tag name: use letters, digits, '_' or '-', starting with a "
                "letter, without angle brackets (e.g. 'reasoning', not '<reasoning>')"
            )
        return value

    @model_validator(mode="after")
    def _whole_prompt_groups(self) -> GRPOHyperparameters:
        # Mirrors GRPOConfig.__post_init__ for one process: every generation batch must hold whole
        # groups of num_generations completions of the same prompt.
        if self.reasoning_tag == self.answer_tag:
            raise ValueError("reasoning_tag and answer_tag must be different")
        if self.generation_batch_size is not None and self.steps_per_generation is not None:
            raise ValueError("set generation_batch_size or steps_per_generation, not both")
        if self.generation_batch_size is not None:
            step_batch = self.per_device_train_batch_size * self.world_size
            if self.generation_batch_size % step_batch:
                over = "" if self.world_size == 1 else " × num_processes × num_hosts"
                raise ValueError(
                    f"generation_batch_size = {self.generation_batch_size} must be a multiple of "
                    f"per_device_train_batch_size{over} = {step_batch}"
                )
            label, size = "generation_batch_size", self.generation_batch_size
        else:
            steps_name = (
                "steps_per_generation"
                if self.steps_per_generation
                else "gradient_accumulation_steps"
            )
            steps = self.steps_per_generation or self.gradient_accumulation_steps
            label, size = (
                f"per_device_train_batch_size × {steps_name}",
                self.per_device_train_batch_size * steps,
            )
            if self.world_size > 1:  # TRL's generation batch spans every process
                label += " × num_processes × num_hosts"
                size *= self.world_size
        if size % self.num_generations:
            raise ValueError(divisibility_message(label, size, self.num_generations))
        return self

    def _strategy_arguments(self) -> dict[str, Any]:
        return {
            "num_generations": self.num_generations,
            "max_completion_length": self.max_completion_length,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "beta": self.beta,
            "loss_type": self.loss_type,
            "steps_per_generation": self.steps_per_generation,
            "generation_batch_size": self.generation_batch_size,
            # GRPOConfig requires the eval batch to hold whole prompt groups too.
            "per_device_eval_batch_size": self.num_generations,
            "log_completions": False,  # samples go to the reporter instead
        }


class DPOHyperparameters(TrainingHyperparameters):
    learning_rate: float = Field(5e-6, gt=0, le=1)
    max_length: int = Field(512, ge=8, le=131072)
    # TRL 1.16 no longer truncates prompts. Unset: TRL cuts prompt + answer at max_length;
    # set: rows whose prompt is longer are dropped, so every answer keeps room.
    max_prompt_length: int | None = Field(None, ge=1, le=MAX_TOKENS)
    beta: float = Field(0.1, gt=0)
    loss_type: DPO_LOSS_TYPES = "sigmoid"

    @model_validator(mode="after")
    def _room_for_answers(self) -> DPOHyperparameters:
        if self.max_prompt_length is not None and self.max_prompt_length >= self.max_length:
            raise ValueError(
                f"max_prompt_length = {self.max_prompt_length} leaves no room for the answers "
                f"within max_length = {self.max_length}: lower it or raise max_length"
            )
        return self

    def _strategy_arguments(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "beta": self.beta, "loss_type": [self.loss_type]}


HYPERPARAMETER_SCHEMAS: dict[str, type[TrainingHyperparameters]] = {
    "sft": SFTHyperparameters,
    "grpo": GRPOHyperparameters,
    "dpo": DPOHyperparameters,
}


def validate_hyperparameters(strategy: str, data: dict[str, Any]) -> TrainingHyperparameters:
    """A run's hyperparameters with defaults filled in; raises ValueError (ValidationError)."""
    schema = HYPERPARAMETER_SCHEMAS.get(strategy)
    if schema is None:
        raise ValueError(
            f"unknown strategy {strategy!r}: expected one of {', '.join(HYPERPARAMETER_SCHEMAS)}"
        )
    return schema.model_validate(data)


def divisibility_message(label: str, size: int, num_generations: int) -> str:
    """Explain a generation batch that does not split into whole prompt groups, with both fixes."""
    next_multiple = -(-size // num_generations) * num_generations
    message = f"{label} = {size} is not divisible by num_generations = {num_generations}"
    message += f": use {next_multiple}"
    divisors = [str(d) for d in range(2, size + 1) if size % d == 0]
    if divisors:
        listed = (
            divisors[0] if len(divisors) == 1 else f"{', '.join(divisors[:-1])} or {divisors[-1]}"
        )
        message += f" or set num_generations to {listed}"
    return message


def _unknown_field_message(key: str, schema: type[BaseModel]) -> str:
    close = difflib.get_close_matches(str(key), list(schema.model_fields), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown hyperparameter '{key}'{hint}"
