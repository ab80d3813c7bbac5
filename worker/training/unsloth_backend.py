"""The Unsloth backend: Unsloth's patched kernels and LoRA layers on a CUDA GPU.

Same interface as TrlBackend (load_model, add_lora, config_overrides); the trainer builders then
run unchanged. Unsloth is imported only inside the methods, only when CUDA is there, and only in
the training child process, which has imported it before transformers/TRL (worker.train_process).
The argument mappings are plain functions, tested on machines without a GPU; they were checked
against the sources of unsloth 2026.10.9 and TRL 1.15.0 (the versions the "gpu" extra pins).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.domain.hyperparameters import TrainingHyperparameters
    from worker.training import TrainingJob

# What "all-linear" means for the decoder models TuneDeck trains (Llama, SmolLM2, Qwen, Mistral):
# every projection of attention and MLP. Unsloth wants the names spelled out.
ALL_LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Share of GPU memory vLLM reserves (weights + KV cache) for GRPO generation; the rest trains.
# from_pretrained's default is 0.5; Unsloth's GRPO notebooks use 0.5-0.7.
VLLM_GPU_MEMORY_UTILIZATION = 0.6


def target_modules(value: str | list[str]) -> list[str]:
    """Module names for Unsloth's get_peft_model: "all-linear" spelled out, lists kept."""
    if value == "all-linear":
        return list(ALL_LINEAR_MODULES)
    return list(value)


def peft_arguments(hp: TrainingHyperparameters) -> dict[str, Any]:
    """Keyword arguments for FastLanguageModel.get_peft_model: the TRL backend's LoRA settings."""
    return {
        "r": hp.lora_r,
        "lora_alpha": hp.lora_alpha,
        "lora_dropout": hp.lora_dropout,
        "target_modules": target_modules(hp.lora_target_modules),
        "bias": "none",
        # Unsloth's offloaded checkpointing: its measured VRAM savings depend on it. (Unsloth falls
        # back to plain checkpointing below 512 tokens, where offloading costs more than it saves.)
        "use_gradient_checkpointing": "unsloth",
        "random_state": hp.seed,
    }


def max_seq_length(strategy: str, hp: TrainingHyperparameters) -> int:
    """The longest sequence a run feeds the model: Unsloth (and vLLM) size for it."""
    if strategy == "grpo":
        return hp.max_prompt_length + hp.max_completion_length  # type: ignore[attr-defined]
    return hp.max_length  # type: ignore[attr-defined]


def load_arguments(
    strategy: str, hp: TrainingHyperparameters, *, model_name: str, fast_inference: bool
) -> dict[str, Any]:
    """Keyword arguments for FastLanguageModel.from_pretrained."""
    arguments: dict[str, Any] = {
        "model_name": model_name,  # a local folder: resolve_model has built or downloaded it
        "max_seq_length": max_seq_length(strategy, hp),
        "dtype": None,  # Unsloth picks bfloat16 where the GPU supports it, else float16
        # Explicit: from_pretrained defaults to True (QLoRA).
        "load_in_4bit": hp.load_in_4bit,
        # The folder is local, so nothing needs the Hub: this also skips Unsloth's download-counter
        # request and model-name lookups, which would stall a worker without internet access.
        "local_files_only": True,
    }
    if fast_inference:
        # vLLM serves GRPO's completions from the same weights; it must know the largest rank.
        arguments |= {
            "fast_inference": True,
            "max_lora_rank": hp.lora_r,
            "gpu_memory_utilization": VLLM_GPU_MEMORY_UTILIZATION,
        }
    return arguments


def use_fast_inference(strategy: str, *, vllm_installed: bool) -> bool:
    """Unsloth's vLLM generation pays off for GRPO only (SFT and DPO generate nothing)."""
    return strategy == "grpo" and vllm_installed


def config_overrides() -> dict[str, Any]:
    """TRL config arguments that differ from, or must be stated for, the TRL backend's.

    Checkpointing off: get_peft_model has set up Unsloth's own, which its patched trainers keep
    (model._unsloth_gradient_checkpointing); the trainer's would wrap the model again. The
    optimizer stated: Unsloth's configs default to bitsandbytes' adamw_8bit where TRL's default
    is transformers' adamw_torch_fused, and a run should not change optimizer with its backend.

    Left out on purpose: bf16/fp16, which the patched trainers set from the loaded model's dtype
    (and refuse when they contradict it), and use_vllm/vllm_mode, which the patched GRPOTrainer
    turns on ("colocate") exactly when the model carries the vLLM engine fast_inference attached.
    Setting use_vllm ourselves would send TRL to a vLLM engine that is not there whenever Unsloth
    had to load without one (on a GPU older than compute capability 7, say).
    """
    return {"activation_checkpointing": False, "optim": "adamw_torch_fused"}


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


class UnslothBackend:
    """Unsloth's FastLanguageModel on CUDA; 4-bit loading and vLLM generation (GRPO) optional."""

    name = "unsloth"

    def __init__(self, strategy: str = "sft") -> None:
        self.strategy = strategy
        self.fast_inference = use_fast_inference(strategy, vllm_installed=vllm_installed())

    def load_model(self, job: TrainingJob, hp: TrainingHyperparameters, *, device: str):
        from worker.training.models import resolve_model

        fast_language_model = self._fast_language_model()
        folder = resolve_model(job.base_model, job.model_cache_dir)
        model, tokenizer = fast_language_model.from_pretrained(
            **load_arguments(
                job.strategy, hp, model_name=str(folder), fast_inference=self.fast_inference
            )
        )
        if tokenizer.pad_token is None:  # as load_model_and_tokenizer does for the TRL backend
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer

    def add_lora(self, model, hp: TrainingHyperparameters):
        """(peft model, None): Unsloth adds its own LoRA layers; the trainer gets no peft_config."""
        fast_language_model = self._fast_language_model()
        return fast_language_model.get_peft_model(model, **peft_arguments(hp)), None

    def config_overrides(self, *, device: str) -> dict[str, Any]:
        return config_overrides()

    @staticmethod
    def _fast_language_model():
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("unsloth backend requested but this worker has no CUDA GPU")
        import unsloth

        return unsloth.FastLanguageModel
