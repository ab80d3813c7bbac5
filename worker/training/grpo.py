"""Reinforcement learning from reward functions: TRL's GRPOTrainer on prompt-only rows.

Extra dataset columns (an "answer", say) reach the reward functions as keyword arguments. The
reward functions are wrapped so that sampled completions and their scores reach the reporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trl import GRPOConfig, GRPOTrainer

from worker.training.callbacks import SampleRecorder

if TYPE_CHECKING:
    from worker.training import TrainingJob
    from worker.training.backends import TrainerParts
    from worker.training.config import GRPOHyperparameters


def build_grpo_trainer(
    job: TrainingJob, hp: GRPOHyperparameters, parts: TrainerParts
) -> GRPOTrainer:
    functions, weights = list(job.reward_functions), job.reward_weights
    if not functions:
        raise ValueError("GRPO needs at least one reward function")
    if weights is not None and len(weights) != len(functions):
        raise ValueError(f"{len(weights)} reward weights for {len(functions)} reward functions")
    arguments = hp.trl_arguments(output_dir=job.output_dir, on_cpu=parts.on_cpu)
    # Two prompt groups per sample: enough to compare completions of the same prompt.
    every, rows = hp.sample_every_steps, 2 * hp.num_generations
    recorder = SampleRecorder(parts.reporter, every=every, max_rows=rows)
    return GRPOTrainer(
        model=parts.model,
        reward_funcs=recorder.wrap(functions),
        args=parts.config(GRPOConfig, {**arguments, "reward_weights": weights}),
        train_dataset=parts.train_dataset,
        eval_dataset=parts.eval_dataset,
        processing_class=parts.tokenizer,
        peft_config=parts.peft_config,
        callbacks=[*parts.callbacks, recorder],
    )
