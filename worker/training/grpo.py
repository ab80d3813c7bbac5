"""Reinforcement learning from reward functions: TRL's GRPOTrainer on prompts.

Extra dataset columns (an "answer", say) reach the reward functions as keyword arguments; a
prompt/completion dataset's completion arrives as "answer", the reference, never as text to
imitate (``app.domain.rewards.columns.grpo_rows``). The reward functions are wrapped so that sampled
completions and their scores reach the reporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trl import GRPOConfig, GRPOTrainer

from worker.training.callbacks import SampleRecorder

if TYPE_CHECKING:
    from app.domain.hyperparameters import GRPOHyperparameters
    from worker.training import TrainingJob
    from worker.training.backends import TrainerParts


def config_arguments(job: TrainingJob, hp: GRPOHyperparameters, *, on_cpu: bool) -> dict:
    """GRPOConfig's arguments for this run, before the backend's overrides.

    Three settings are stated although TuneDeck does not expose them: Unsloth's GRPOConfig fills
    them in when left unset, after the papers behind the loss types (DAPO: mask truncated
    completions and epsilon_high 0.28; Dr. GRPO: no reward scaling; CISPO: epsilon_high 5), while
    TRL keeps its own defaults. Stated, both backends train the same run. The values are TRL's
    defaults except where TRL's own documentation recommends otherwise for the loss type (CISPO's
    epsilon_high, Dr. GRPO's reward scaling). Truncated completions stay in the loss: masking them
    leaves no update at all when every completion of a batch hits max_completion_length, as a
    small model's often do.
    """
    arguments = hp.trl_arguments(output_dir=job.output_dir, on_cpu=on_cpu)
    return {
        **arguments,
        "reward_weights": job.reward_weights,
        "mask_truncated_completions": False,
        # TRL: epsilon_high defaults to epsilon (0.2); as CISPO's cap on the importance weight
        # that would keep every weight below 1.
        "epsilon_high": 5.0 if hp.loss_type == "cispo" else 0.2,
        "scale_rewards": "none" if hp.loss_type == "dr_grpo" else "group",
    }


def build_grpo_trainer(
    job: TrainingJob, hp: GRPOHyperparameters, parts: TrainerParts
) -> GRPOTrainer:
    functions, weights = list(job.reward_functions), job.reward_weights
    if not functions:
        raise ValueError("GRPO needs at least one reward function")
    if weights is not None and len(weights) != len(functions):
        raise ValueError(f"{len(weights)} reward weights for {len(functions)} reward functions")
    # Two prompt groups per sample: enough to compare completions of the same prompt.
    every, rows = hp.sample_every_steps, 2 * hp.num_generations
    recorder = SampleRecorder(parts.reporter, every=every, max_rows=rows)
    return GRPOTrainer(
        model=parts.model,
        reward_funcs=recorder.wrap(functions),
        args=parts.config(GRPOConfig, config_arguments(job, hp, on_cpu=parts.on_cpu)),
        train_dataset=parts.train_dataset,
        eval_dataset=parts.eval_dataset,
        processing_class=parts.tokenizer,
        peft_config=parts.peft_config,
        callbacks=[*parts.callbacks, recorder],
    )
