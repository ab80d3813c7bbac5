"""Supervised fine-tuning: TRL's SFTTrainer on prompt/completion, messages or text rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trl import SFTConfig, SFTTrainer

if TYPE_CHECKING:
    from app.domain.hyperparameters import SFTHyperparameters
    from worker.training import TrainingJob
    from worker.training.backends import TrainerParts


def config_arguments(job: TrainingJob, hp: SFTHyperparameters, *, on_cpu: bool) -> dict:
    """SFTConfig's arguments for this run, before the backend's overrides."""
    return hp.trl_arguments(output_dir=job.output_dir, on_cpu=on_cpu)


def build_sft_trainer(job: TrainingJob, hp: SFTHyperparameters, parts: TrainerParts) -> SFTTrainer:
    return SFTTrainer(
        model=parts.model,
        args=parts.config(SFTConfig, config_arguments(job, hp, on_cpu=parts.on_cpu)),
        train_dataset=parts.train_dataset,
        eval_dataset=parts.eval_dataset,
        processing_class=parts.tokenizer,
        peft_config=parts.peft_config,
        callbacks=parts.callbacks,
    )
