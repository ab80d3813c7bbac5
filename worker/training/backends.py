"""Entry point of the training layer: pick a backend, load the model, build the trainer, train.

Nothing heavy is imported at module level: Unsloth must be imported before transformers, TRL and
PEFT to patch them, so those come in only after the backend is chosen and has loaded its model.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from worker.training import Reporter, TrainingJob, TrainResult
from worker.training.config import TrainingHyperparameters, validate_hyperparameters
from worker.training.models import load_model_and_tokenizer

BACKEND_CHOICES = ("auto", "trl", "unsloth")


@dataclass
class TrainerParts:
    """What a strategy's trainer builder needs besides the job and its hyperparameters."""

    model: Any
    tokenizer: Any
    peft_config: Any  # None when the backend has already added the LoRA layers
    train_dataset: Any
    eval_dataset: Any  # None without an eval split
    callbacks: list
    reporter: Reporter
    on_cpu: bool


def select_backend(requested: str, *, cuda_available: bool, unsloth_importable: bool) -> str:
    """The backend that will run: Unsloth when asked for (or on "auto") and usable, else TRL."""
    if requested == "trl":
        return "trl"
    if requested == "auto":
        return "unsloth" if cuda_available and unsloth_importable else "trl"
    if requested == "unsloth":
        if not cuda_available:
            raise ValueError(
                "the unsloth backend needs a CUDA GPU and none is available: use 'trl' or 'auto'"
            )
        if not unsloth_importable:
            raise ValueError(
                "the unsloth backend was requested but unsloth is not installed on this worker "
                "(pip install 'tunedeck[gpu]'): use 'trl' or 'auto'"
            )
        return "unsloth"
    raise ValueError(f"unknown backend {requested!r}: expected one of {', '.join(BACKEND_CHOICES)}")


class Backend(Protocol):
    name: str

    def load_model(self, job: TrainingJob, hp: TrainingHyperparameters, *, device: str):
        """(model, tokenizer) on ``device``; the tokenizer has a pad token."""

    def add_lora(self, model, hp: TrainingHyperparameters):
        """(model, peft_config or None): None when the model already carries its LoRA layers."""


class TrlBackend:
    """Plain transformers + PEFT: works on CPU and GPU."""

    name = "trl"

    def load_model(self, job: TrainingJob, hp: TrainingHyperparameters, *, device: str):
        return load_model_and_tokenizer(job.base_model, job.model_cache_dir, device=device)

    def add_lora(self, model, hp: TrainingHyperparameters):
        """(model, peft_config): the TRL trainer wraps the model in the adapter itself."""
        from peft import LoraConfig

        return model, LoraConfig(**hp.lora_arguments())


class UnslothBackend:
    """Unsloth's patched kernels on CUDA: TrlBackend's interface, completed in the GPU issue."""

    name = "unsloth"

    def load_model(self, job: TrainingJob, hp: TrainingHyperparameters, *, device: str):
        fast_language_model = self._fast_language_model()
        # To come: folder = resolve_model(job.base_model, job.model_cache_dir), then
        # fast_language_model.from_pretrained(model_name=str(folder), max_seq_length=...,
        # dtype=None, load_in_4bit=...), and the pad-token fix of load_model_and_tokenizer.
        del fast_language_model
        raise NotImplementedError("Unsloth model loading is completed in the GPU issue")

    def add_lora(self, model, hp: TrainingHyperparameters):
        """(peft model, None): Unsloth adds its own LoRA layers; the trainer gets no peft_config."""
        fast_language_model = self._fast_language_model()
        # To come: fast_language_model.get_peft_model(model, r=hp.lora_r, lora_alpha=hp.lora_alpha,
        # lora_dropout=hp.lora_dropout, target_modules=..., use_gradient_checkpointing="unsloth",
        # random_state=hp.seed), returned with peft_config=None.
        del fast_language_model
        raise NotImplementedError("Unsloth LoRA setup is completed in the GPU issue")

    @staticmethod
    def _fast_language_model():
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("unsloth runs on CUDA only")
        import unsloth

        return unsloth.FastLanguageModel


BACKENDS: dict[str, type[Backend]] = {"trl": TrlBackend, "unsloth": UnslothBackend}


def train(job: TrainingJob, reporter: Reporter) -> TrainResult:
    """Train to max_steps or until the reporter asks to stop; checkpoints go to job.output_dir."""
    import torch

    hp = validate_hyperparameters(job.strategy, job.hyperparameters)
    if job.resume_from is not None and not Path(job.resume_from).is_dir():
        raise FileNotFoundError(
            f"cannot resume: checkpoint folder {job.resume_from} does not exist"
        )
    cuda = torch.cuda.is_available()
    backend = BACKENDS[
        select_backend(job.backend, cuda_available=cuda, unsloth_importable=_unsloth_importable())
    ]()
    device = "cuda" if cuda else "cpu"
    model, tokenizer = backend.load_model(job, hp, device=device)

    from datasets.utils.logging import disable_progress_bar as quiet_datasets
    from transformers import PrinterCallback, set_seed
    from transformers.utils.logging import disable_progress_bar as quiet_transformers

    from worker.training.callbacks import ReporterCallback, numeric_metrics
    from worker.training.data import load_datasets

    quiet_datasets()  # progress bars would flood the worker log with one line per dataset pass
    quiet_transformers()
    set_seed(hp.seed)  # before the LoRA weights are initialised
    model, peft_config = backend.add_lora(model, hp)
    train_dataset, eval_dataset = load_datasets(job, hp, tokenizer)
    callback = ReporterCallback(reporter)
    parts = TrainerParts(
        model=model,
        tokenizer=tokenizer,
        peft_config=peft_config,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        callbacks=[callback],
        reporter=reporter,
        on_cpu=device == "cpu",
    )
    trainer = _trainer_builder(job.strategy)(job, hp, parts)
    trainer.remove_callback(PrinterCallback)  # disable_tqdm would print every log dict to stdout
    try:
        output = trainer.train(
            resume_from_checkpoint=str(job.resume_from) if job.resume_from else None
        )
    finally:
        reporter.flush()
    return TrainResult(
        backend=backend.name,
        device=device,
        final_step=trainer.state.global_step,
        stopped=callback.stopped,
        summary=numeric_metrics(output.metrics),
    )


def _trainer_builder(strategy: str):
    # validate_hyperparameters has already refused any strategy without a module here.
    module = importlib.import_module(f"worker.training.{strategy}")
    return getattr(module, f"build_{strategy}_trainer")


def _unsloth_importable() -> bool:
    # find_spec looks for the package without importing (and so without patching) anything.
    return importlib.util.find_spec("unsloth") is not None
