"""Entry point of the training layer: pick a backend, load the model, build the trainer, train.

Nothing heavy is imported at module level: Unsloth must be imported before transformers, TRL and
PEFT to patch them, so those come in only after the backend is chosen and has loaded its model.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.domain.hyperparameters import TrainingHyperparameters, validate_hyperparameters
from worker.training import Reporter, TrainingJob, TrainResult
from worker.training.models import load_model_and_tokenizer
from worker.training.unsloth_backend import UnslothBackend

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
    # The backend's own TRL config settings (Unsloth: its checkpointing, vLLM generation).
    config_overrides: dict = field(default_factory=dict)

    def config(self, config_class: type, arguments: dict):  # type: ignore[no-untyped-def]
        """The strategy's TRL config: the run's arguments, the backend's overrides, and the
        names the installed TRL version knows."""
        from worker.training.compat import build_config

        return build_config(config_class, self.config_arguments(arguments))

    def config_arguments(self, arguments: dict) -> dict:
        """The run's arguments with the backend's overrides on top (before version adaptation)."""
        return {**arguments, **self.config_overrides}


def select_backend(requested: str, *, cuda_available: bool, unsloth_importable: bool) -> str:
    """The backend that will run: Unsloth when asked for (or on "auto") and usable, else TRL."""
    if requested == "trl":
        return "trl"
    if requested == "auto":
        return "unsloth" if cuda_available and unsloth_importable else "trl"
    if requested == "unsloth":
        if not cuda_available:
            raise ValueError(
                "unsloth backend requested but this worker has no CUDA GPU (Unsloth needs a CUDA "
                "GPU): launch the run with backend 'trl' or 'auto', or on a GPU worker's queue"
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

    def __init__(self, strategy: str) -> None: ...

    def load_model(self, job: TrainingJob, hp: TrainingHyperparameters, *, device: str):
        """(model, tokenizer) on ``device``; the tokenizer has a pad token."""

    def add_lora(self, model, hp: TrainingHyperparameters):
        """(model, peft_config or None): None when the model already carries its LoRA layers."""

    def config_overrides(self, *, device: str) -> dict:
        """TRL config arguments this backend sets differently on ``device``."""


class TrlBackend:
    """Plain transformers + PEFT: works on CPU and GPU."""

    name = "trl"

    def __init__(self, strategy: str = "sft") -> None:
        self.strategy = strategy

    def load_model(self, job: TrainingJob, hp: TrainingHyperparameters, *, device: str):
        if hp.load_in_4bit:
            # Silently training in full precision would hide why memory use is 4x the estimate.
            raise ValueError(
                "load_in_4bit needs the unsloth backend (a CUDA GPU with unsloth installed): "
                "turn it off or launch the run with backend 'unsloth'"
            )
        return load_model_and_tokenizer(job.base_model, job.model_cache_dir, device=device)

    def add_lora(self, model, hp: TrainingHyperparameters):
        """(model, peft_config): the TRL trainer wraps the model in the adapter itself."""
        from peft import LoraConfig

        return model, LoraConfig(**hp.lora_arguments())

    def config_overrides(self, *, device: str) -> dict:
        if device == "cpu":  # the run's own arguments already turn mixed precision off
            return {}
        import torch

        return gpu_precision(bf16_supported=torch.cuda.is_bf16_supported())


def gpu_precision(*, bf16_supported: bool) -> dict[str, bool]:
    """The TRL backend's mixed precision on a GPU: bf16 autocast where the card has bf16, else fp16.

    TRL defaults to bf16=True whatever the card, which transformers refuses on GPUs without bf16
    (T4, V100: "Your setup doesn't support bf16/gpu"). The Unsloth backend needs no such setting:
    its patched trainers derive it from the loaded model's dtype.
    """
    return {"bf16": bf16_supported, "fp16": not bf16_supported}


BACKENDS: dict[str, type[Backend]] = {"trl": TrlBackend, "unsloth": UnslothBackend}


def train(job: TrainingJob, reporter: Reporter) -> TrainResult:
    """Train to max_steps or until the reporter asks to stop; checkpoints go to job.output_dir."""
    hp = validate_hyperparameters(job.strategy, job.hyperparameters)
    if job.resume_from is not None and not Path(job.resume_from).is_dir():
        raise FileNotFoundError(
            f"cannot resume: checkpoint folder {job.resume_from} does not exist"
        )
    name, device = resolve_backend(job.backend)
    rank = process_rank()
    if device == "cuda" and rank.world_size > 1:  # each torchrun rank trains on its own GPU
        import torch

        device = f"cuda:{rank.local_rank}"
        torch.cuda.set_device(rank.local_rank)
    backend = BACKENDS[name](job.strategy)
    reporter.phase("preparing_model")
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
    reporter.phase("loading_data")
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
        config_overrides={
            **backend.config_overrides(device=device),
            **hp.distributed_arguments(
                distributed=hp.distributed, on_cpu=device == "cpu", world_size=rank.world_size
            ),
        },
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
        device=device.split(":")[0],
        final_step=trainer.state.global_step,
        stopped=callback.stopped,
        summary=numeric_metrics(output.metrics),
    )


@dataclass(frozen=True)
class ProcessRank:
    rank: int
    local_rank: int
    world_size: int

    @property
    def reports(self) -> bool:
        """Rank 0 alone writes metrics, progress, checkpoints and samples."""
        return self.rank == 0


def process_rank(environ: dict[str, str] | None = None) -> ProcessRank:
    """This process's place among torchrun's ranks (rank 0 of 1 without torchrun)."""
    env = os.environ if environ is None else environ
    return ProcessRank(rank=int(env.get("RANK", 0)), local_rank=int(env.get("LOCAL_RANK", 0)),
                       world_size=int(env.get("WORLD_SIZE", 1)))


def resolve_backend(requested: str, *, unsloth_usable: bool | None = None) -> tuple[str, str]:
    """(backend, device) a run asking for ``requested`` trains with on this machine.

    ``unsloth_usable``: whether this process managed to import unsloth (None: whether it is
    installed); the training process knows, since it tries before anything else.
    """
    import torch

    cuda = torch.cuda.is_available()
    usable = _unsloth_importable() if unsloth_usable is None else unsloth_usable
    name = select_backend(requested, cuda_available=cuda, unsloth_importable=usable)
    return name, "cuda" if cuda else "cpu"


def _trainer_builder(strategy: str):
    # validate_hyperparameters has already refused any strategy without a module here.
    module = importlib.import_module(f"worker.training.{strategy}")
    return getattr(module, f"build_{strategy}_trainer")


def _unsloth_importable() -> bool:
    # find_spec looks for the package without importing (and so without patching) anything.
    return importlib.util.find_spec("unsloth") is not None
