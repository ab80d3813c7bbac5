"""The training layer end to end on CPU: real TRL trainers on tiny-random-llama, a recording
reporter in place of the database. Each run is a few steps with max_length 64 and batch 2."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from app.domain.catalogue import CATALOGUE, ModelNotFound
from app.domain.hyperparameters import HYPERPARAMETER_SCHEMAS
from app.domain.training_rows import drop_long_prompts, prompt_token_count
from tests.conftest import MODEL_CACHE
from worker.training import TrainingJob
from worker.training.backends import train
from worker.training.callbacks import numeric_metrics
from worker.training.models import resolve_model

TINY = "tiny-random-llama"
SMALL = {"per_device_train_batch_size": 2, "max_length": 64, "logging_steps": 1}
CHECKPOINT_FILES = {
    "adapter_model.safetensors",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "optimizer.pt",
    "scheduler.pt",
}


class RecordingReporter:
    """The Reporter protocol, in memory; asks to stop once ``stop_after`` steps are done."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after = stop_after
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.progress_calls: list[tuple[int, int, float | None]] = []
        self.checkpoints: list[tuple[int, Path]] = []
        self.sample_calls: list[tuple[int, list[dict]]] = []
        self.flushes = 0
        self.phases: list[str] = []
        self._step = 0

    def log_metrics(self, step, metrics):
        self.metrics.append((step, metrics))

    def progress(self, step, max_steps, epoch):
        self._step = step
        self.progress_calls.append((step, max_steps, epoch))

    def checkpoint_saved(self, step, path):
        self.checkpoints.append((step, path))

    def samples(self, step, rows):
        self.sample_calls.append((step, rows))

    def should_stop(self):
        return self.stop_after is not None and self._step >= self.stop_after

    def phase(self, name):
        self.phases.append(name)

    def flush(self):
        self.flushes += 1

    def steps_with(self, name: str) -> list[int]:
        return [step for step, metrics in self.metrics if name in metrics]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def sft_job(tmp_path: Path, **hyperparameters) -> TrainingJob:
    rows = [{"prompt": f"What is {i} + {i}?", "completion": f" {2 * i}"} for i in range(12)]
    return TrainingJob(
        run_id=1,
        strategy="sft",
        base_model=TINY,
        dataset_path=write_jsonl(tmp_path / "sft.jsonl", rows),
        dataset_format="prompt_completion",
        hyperparameters={**SMALL, "max_steps": 3, **hyperparameters},
        output_dir=tmp_path / "run",
        model_cache_dir=MODEL_CACHE,
    )


def lora_b_norm(model) -> float:
    return sum(p.abs().sum().item() for n, p in model.named_parameters() if "lora_B" in n)


def test_sft_logs_every_step_and_saves_a_loadable_adapter(tmp_path):
    reporter = RecordingReporter()
    result = train(sft_job(tmp_path), reporter)

    assert (result.backend, result.device, result.final_step, result.stopped) == (
        "trl",
        "cpu",
        3,
        False,
    )
    for name in ("loss", "grad_norm", "learning_rate"):
        assert reporter.steps_with(name) == [1, 2, 3], name
    assert all(math.isfinite(m["loss"]) for _, m in reporter.metrics)
    assert [call[:2] for call in reporter.progress_calls] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    # The end-of-run summary is returned, not mixed into the per-step curves.
    assert "train_runtime" in result.summary and not reporter.steps_with("train_loss")
    assert reporter.flushes >= 1

    # save_steps (20) is beyond max_steps: the final step is saved anyway.
    assert reporter.checkpoints == [(3, tmp_path / "run" / "checkpoint-3")]
    checkpoint = reporter.checkpoints[0][1]
    assert {p.name for p in checkpoint.iterdir()} >= CHECKPOINT_FILES
    base = AutoModelForCausalLM.from_pretrained(resolve_model(TINY, MODEL_CACHE))
    adapted = PeftModel.from_pretrained(base, checkpoint)
    assert lora_b_norm(adapted) > 0  # LoRA B starts at zero: training moved it


def test_sft_eval_split_logs_eval_loss(tmp_path):
    reporter = RecordingReporter()
    train(sft_job(tmp_path, max_steps=2, eval_split=0.25, eval_steps=1), reporter)
    assert reporter.steps_with("eval_loss") == [1, 2]
    assert reporter.steps_with("loss") == [1, 2]  # eval logs are separate entries


def test_should_stop_ends_early_and_keeps_a_checkpoint(tmp_path):
    reporter = RecordingReporter(stop_after=2)
    result = train(sft_job(tmp_path, max_steps=6), reporter)
    assert (result.final_step, result.stopped) == (2, True)
    assert [step for step, _ in reporter.checkpoints] == [2]
    assert (tmp_path / "run" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert max(call[0] for call in reporter.progress_calls) == 2


def test_cancel_between_evaluations_scores_the_cancel_checkpoint(tmp_path):
    # Evaluations every 2 steps; the cancel after step 3 falls between them. The checkpoint of
    # step 3 gets an eval_loss of its own step, so it is never ranked with step 2's.
    reporter = RecordingReporter(stop_after=3)
    result = train(sft_job(tmp_path, max_steps=8, eval_split=0.25, eval_steps=2, save_steps=2),
                   reporter)
    assert (result.final_step, result.stopped) == (3, True)
    assert [step for step, _ in reporter.checkpoints] == [2, 3]
    assert reporter.steps_with("eval_loss") == [2, 3]
    # What the run page shows meanwhile, in order (issue 17, item 8).
    assert reporter.phases[:3] == ["preparing_model", "loading_data", "training"]
    assert reporter.phases[3:] == ["evaluating", "saving", "training"] * 2


def test_resume_continues_the_step_count(tmp_path):
    first = RecordingReporter()
    train(sft_job(tmp_path, max_steps=2), first)
    checkpoint = tmp_path / "run" / "checkpoint-2"

    job = sft_job(tmp_path, max_steps=4)
    job.resume_from, job.output_dir = checkpoint, tmp_path / "resumed"
    second = RecordingReporter()
    result = train(job, second)
    assert result.final_step == 4
    assert second.progress_calls[0][:2] == (2, 4)  # training begins where the checkpoint ended
    assert second.steps_with("loss") == [3, 4]
    # The restored scheduler continues the linear decay instead of restarting at the peak.
    assert second.metrics[0][1]["learning_rate"] < first.metrics[0][1]["learning_rate"]
    assert [step for step, _ in second.checkpoints] == [4]


def test_resume_from_a_missing_checkpoint_fails_before_loading(tmp_path):
    job = sft_job(tmp_path)
    job.resume_from = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        train(job, RecordingReporter())


def test_grpo_logs_rewards_and_reports_samples(tmp_path):
    prompts_seen = []

    def has_answer(prompts, completions, answer, **kwargs):
        prompts_seen.extend(prompts)
        pairs = zip(completions, answer, strict=True)
        return [1.0 if a in c[-1]["content"] else 0.0 for c, a in pairs]

    def brevity(completions, **kwargs):
        return [-len(c[-1]["content"]) / 100 for c in completions]

    rows = [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(8)]
    job = TrainingJob(
        run_id=2,
        strategy="grpo",
        base_model=TINY,
        dataset_path=write_jsonl(tmp_path / "grpo.jsonl", rows),
        dataset_format="prompt_only",
        hyperparameters={
            "max_steps": 2,
            "per_device_train_batch_size": 2,
            "num_generations": 2,
            "max_completion_length": 8,
            "max_prompt_length": 64,
            "sample_every_steps": 1,
            "system_prompt": "Answer with a number.",
        },
        output_dir=tmp_path / "run",
        reward_functions=[has_answer, brevity],
        reward_weights=[1.0, 0.5],
        model_cache_dir=MODEL_CACHE,
    )
    reporter = RecordingReporter()
    result = train(job, reporter)

    assert result.final_step == 2
    for name in ("loss", "reward", "rewards/has_answer/mean", "rewards/brevity/mean"):
        assert reporter.steps_with(name) == [1, 2], name
    assert prompts_seen[0][0] == {"role": "system", "content": "Answer with a number."}
    assert [step for step, _ in reporter.sample_calls] == [1, 2]
    row = reporter.sample_calls[0][1][0]
    assert row["prompt"].startswith("What is ") and isinstance(row["completion"], str)
    assert set(row["rewards"]) == {"has_answer", "brevity"}
    assert row["answer"] == str(2 * int(row["prompt"].split()[2]))  # extra column kept per row
    # A step's batch (2) is one prompt with its num_generations (2) completions.
    assert [r["prompt"] for r in reporter.sample_calls[0][1]] == [row["prompt"]] * 2
    assert [step for step, _ in reporter.checkpoints] == [2]


def test_dpo_logs_preference_metrics(tmp_path):
    rows = [
        {"prompt": f"What is {i} + {i}?", "chosen": f" {2 * i}", "rejected": " I do not know."}
        for i in range(8)
    ]
    job = TrainingJob(
        run_id=3,
        strategy="dpo",
        base_model=TINY,
        dataset_path=write_jsonl(tmp_path / "dpo.jsonl", rows),
        dataset_format="preference",
        # The tokenizer's chat template (on by default) makes each prompt ~38 tokens.
        hyperparameters={**SMALL, "max_steps": 2, "max_prompt_length": 48},
        output_dir=tmp_path / "run",
        model_cache_dir=MODEL_CACHE,
    )
    reporter = RecordingReporter()
    train(job, reporter)
    for name in ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "logps/chosen"):
        assert reporter.steps_with(name) == [1, 2], name
    checkpoint = reporter.checkpoints[-1][1]
    assert (checkpoint / "adapter_model.safetensors").is_file()


def test_long_prompts_are_dropped_not_truncated():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(TINY, MODEL_CACHE))
    short, long = {"prompt": "Two plus two?"}, {"prompt": "Count: " + "one two three " * 20}
    assert drop_long_prompts([short, long], tokenizer=tokenizer, max_prompt_length=16) == [short]
    chat = {"prompt": [{"role": "user", "content": "Two plus two?"}]}
    # A conversation is measured with its chat template, which adds tokens of its own.
    templated = prompt_token_count(chat["prompt"], tokenizer)
    assert templated > prompt_token_count(short["prompt"], tokenizer)
    with pytest.raises(ValueError, match="every prompt is longer than max_prompt_length = 2"):
        drop_long_prompts([short, chat], tokenizer=tokenizer, max_prompt_length=2)


def test_wrong_format_for_the_strategy_is_refused(tmp_path):
    job = sft_job(tmp_path)
    job.strategy, job.hyperparameters = "dpo", {}
    with pytest.raises(ValueError, match="dpo needs a dataset in one of these formats"):
        train(job, RecordingReporter())


def test_unsloth_without_cuda_is_refused(tmp_path):
    job = sft_job(tmp_path)
    job.backend = "unsloth"
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        train(job, RecordingReporter())


def test_trl_arguments_are_accepted_by_trl():
    # Field names and values must survive TRL's own __post_init__ checks.
    from trl import DPOConfig, GRPOConfig, SFTConfig

    classes = {"sft": SFTConfig, "grpo": GRPOConfig, "dpo": DPOConfig}
    for strategy, schema in HYPERPARAMETER_SCHEMAS.items():
        hp = schema(eval_split=0.1)
        config = classes[strategy](**hp.trl_arguments(output_dir=Path("unused"), on_cpu=True))
        assert config.use_cpu and not config.bf16 and not config.gradient_checkpointing
        assert config.eval_strategy == "steps"


@pytest.mark.parametrize("batch,accumulation,generations", [(3, 2, 4), (2, 2, 4), (1, 1, 2)])
def test_grpo_divisibility_rule_matches_trl(batch, accumulation, generations):
    from pydantic import ValidationError
    from trl import GRPOConfig

    data = {
        "per_device_train_batch_size": batch,
        "gradient_accumulation_steps": accumulation,
        "num_generations": generations,
    }
    try:
        GRPOConfig(
            output_dir="unused", use_cpu=True, bf16=False, activation_checkpointing=False, **data
        )
        trl_accepts = True
    except ValueError:
        trl_accepts = False
    try:
        HYPERPARAMETER_SCHEMAS["grpo"](**data)
        we_accept = True
    except ValidationError:
        we_accept = False
    assert we_accept == trl_accepts


def test_numeric_metrics_keeps_numbers_only():
    logs = {"loss": 1, "nan": float("nan"), "inf": math.inf, "flag": True, "none": None, "s": "x"}
    metrics = numeric_metrics({**logs, "t": torch.tensor(2.0).item()})
    assert set(metrics) == {"loss", "nan", "inf", "t"}
    assert math.isnan(metrics["nan"]) and metrics["inf"] == math.inf
    assert all(isinstance(v, float) for v in metrics.values())


def test_tiny_model_matches_its_catalogue_entry():
    entry = next(model for model in CATALOGUE if model.key == TINY)
    folder = resolve_model(TINY, MODEL_CACHE)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert sum(p.numel() for p in model.parameters()) == entry.parameters
    assert (folder / "chat_template.jinja").is_file() or "chat_template" in (
        folder / "tokenizer_config.json"
    ).read_text()


def test_made_up_hub_id_fails_fast_with_a_clear_error(tmp_path):
    start = time.monotonic()
    with pytest.raises(ModelNotFound, match="could not load 'made-up-org/no-such-model-x1'"):
        resolve_model("made-up-org/no-such-model-x1", tmp_path)
    assert time.monotonic() - start < 10


def test_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFound, match="has no config.json"):
        resolve_model(str(tmp_path), tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("TUNEDECK_GGUF_CHECK"), reason="converts a 135M model; opt in"
)
def test_smollm2_from_gguf_trains_one_sft_step(tmp_path):
    cache = tmp_path / "models"
    start = time.monotonic()
    resolve_model("smollm2-135m-instruct", cache)
    converted = time.monotonic() - start
    job = sft_job(tmp_path, max_steps=1)
    job.base_model, job.model_cache_dir = "smollm2-135m-instruct", cache
    start = time.monotonic()
    result = train(job, reporter := RecordingReporter())
    print(
        f"GGUF conversion {converted:.1f} s, cached load + 1 step {time.monotonic() - start:.1f} s"
    )
    assert result.final_step == 1 and reporter.steps_with("loss") == [1]
