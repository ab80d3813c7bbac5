"""The contract between the worker and the training layer: a job in, progress out, a result back.

Free of torch/transformers imports so that the web app and the task module import it cheaply;
the heavy work starts in ``worker.training.backends.train``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class Reporter(Protocol):
    """Where a run's progress goes (the worker's implementation batches database writes)."""

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def progress(self, step: int, max_steps: int, epoch: float | None) -> None: ...

    def checkpoint_saved(self, step: int, path: Path) -> None: ...

    def samples(self, step: int, rows: list[dict]) -> None: ...

    def should_stop(self) -> bool: ...

    def phase(self, name: str) -> None:
        """The run entered phase ``name`` (app.domain.run_phases.PHASES): shown on its page."""

    def flush(self) -> None: ...


def _default_model_cache_dir() -> Path:
    # Imported late: reading settings creates the data directory, which plain imports should not do.
    from app.core.config import settings

    return settings.model_cache_dir


@dataclass
class TrainingJob:
    run_id: int
    strategy: str  # "sft" | "grpo" | "dpo"
    base_model: str  # catalogue key, local folder path, or hub id
    dataset_path: Path  # normalised JSONL, TRL standard/conversational columns
    dataset_format: str  # see app.domain.training_rows.FORMAT_COLUMNS
    hyperparameters: dict[str, Any]  # validated again by app.domain.hyperparameters
    output_dir: Path  # checkpoints go to output_dir / f"checkpoint-{step}"
    reward_functions: list = field(default_factory=list)  # GRPO: TRL-compatible callables
    reward_weights: list[float] | None = None
    backend: str = "auto"  # "auto" | "trl" | "unsloth"
    resume_from: Path | None = None  # a checkpoint dir (optimizer/scheduler state included)
    model_cache_dir: Path = field(default_factory=_default_model_cache_dir)


@dataclass
class TrainResult:
    backend: str  # the backend that actually ran: "trl" or "unsloth"
    device: str  # "cpu" or "cuda"
    final_step: int
    stopped: bool  # True when the reporter asked to stop before max_steps
    # Trainer's end-of-run summary (train_runtime, train_loss, ...), not sent to log_metrics.
    summary: dict[str, float] = field(default_factory=dict)
