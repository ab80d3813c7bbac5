"""Preference tuning: TRL's DPOTrainer on prompt/chosen/rejected rows.

With a LoRA adapter the reference model is the base model with the adapter switched off, so no
second copy of the weights is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trl import DPOConfig, DPOTrainer

if TYPE_CHECKING:
    from app.domain.hyperparameters import DPOHyperparameters
    from worker.training import TrainingJob
    from worker.training.backends import TrainerParts


def config_arguments(job: TrainingJob, hp: DPOHyperparameters, *, on_cpu: bool) -> dict:
    """DPOConfig's arguments for this run, before the backend's overrides."""
    return hp.trl_arguments(output_dir=job.output_dir, on_cpu=on_cpu)


def build_dpo_trainer(job: TrainingJob, hp: DPOHyperparameters, parts: TrainerParts) -> DPOTrainer:
    return DPOTrainer(
        model=parts.model,
        args=parts.config(DPOConfig, config_arguments(job, hp, on_cpu=parts.on_cpu)),
        train_dataset=parts.train_dataset,
        eval_dataset=parts.eval_dataset,
        processing_class=parts.tokenizer,
        peft_config=parts.peft_config,
        callbacks=parts.callbacks,
    )
