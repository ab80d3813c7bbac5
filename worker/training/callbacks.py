"""How a TRL run talks to its reporter: metrics, progress, checkpoints, cancellation, GRPO samples.

Everything here runs inside the training loop, so each hook does O(1) work and leaves batching
to the reporter.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from torch import nn
from transformers import TrainerCallback
from trl.trainer.utils import get_callable_name, is_async_callable

from worker.training import Reporter

# Marks the trainer's end-of-run summary, which goes to TrainResult.summary rather than to the
# curves: its "train_loss" is a whole-run mean that would read as one more point of "loss".
SUMMARY_KEY = "train_runtime"
# Arguments TRL passes to reward functions that are plumbing rather than dataset columns.
_NOT_COLUMNS = {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}


def numeric_metrics(logs: dict[str, Any]) -> dict[str, float]:
    """Every number in a log entry as a float (NaN/inf kept); None, strings and bools skipped."""
    return {
        key: float(value)
        for key, value in logs.items()
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    }


class ReporterCallback(TrainerCallback):
    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.stopped = False

    def on_train_begin(self, args, state, control, **kwargs):
        # Tells the reporter max_steps (and, on resume, the starting step) before the first step.
        self.reporter.progress(state.global_step, state.max_steps, state.epoch)
        self.reporter.phase("training")

    def on_step_end(self, args, state, control, **kwargs):
        self.reporter.progress(state.global_step, state.max_steps, state.epoch)
        if self.reporter.should_stop():
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True  # a cancelled run keeps its last step
        if control.should_save and args.eval_strategy != "no":
            # Every checkpoint gets a held-out score of its own step (a cancel or the last step
            # falls between evaluations): the best one is never ranked by an older step's score.
            control.should_evaluate = True
        if control.should_evaluate or control.should_save:
            self.reporter.phase("evaluating" if control.should_evaluate else "saving")

    def on_evaluate(self, args, state, control, **kwargs):
        self.reporter.phase("saving" if control.should_save else "training")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or SUMMARY_KEY in logs:
            return
        metrics = numeric_metrics(logs)
        if metrics:
            self.reporter.log_metrics(state.global_step, metrics)

    def on_save(self, args, state, control, **kwargs):
        # Trainer calls on_save once the adapter, tokenizer and optimizer state are on disk.
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.reporter.checkpoint_saved(state.global_step, path)
        self.reporter.phase("training")


class SampleRecorder(TrainerCallback):
    """Wraps GRPO reward functions so that, every ``every`` steps, one scored batch is reported.

    TRL calls every reward function on the same batch in turn; once all of them have scored it,
    the recorder sends the first ``max_rows`` prompt/completion pairs with each function's value.
    Between samples a wrapper costs one comparison. Pass the recorder to the trainer as a
    callback too: it tells training batches from evaluation ones, which are not sampled.
    """

    def __init__(self, reporter: Reporter, *, every: int, max_rows: int = 8):
        self.reporter = reporter
        self.every = every
        self.max_rows = max_rows
        self._in_training_step = False
        self._last_step: int | None = None
        self._pending: dict[str, list] = {}
        self._expected = 0

    def on_step_begin(self, args, state, control, **kwargs):
        self._in_training_step = True

    def on_step_end(self, args, state, control, **kwargs):
        self._in_training_step = False

    def wrap(self, reward_functions: list) -> list:
        wrapped: list = []
        for function in reward_functions:
            if isinstance(function, (str, nn.Module)):  # reward models: TRL scores them itself
                wrapped.append(function)
                continue
            wrapper = _AsyncRecordingReward if is_async_callable(function) else _RecordingReward
            wrapped.append(wrapper(function, get_callable_name(function), self))
            self._expected += 1
        return wrapped

    def due(self, step: int) -> bool:
        if not self._in_training_step:  # evaluation scores held-out prompts between steps
            return False
        return self._last_step is None or step - self._last_step >= self.every

    def record(
        self, name: str, step: int, prompts: list, completions: list, values: list, kwargs: dict
    ) -> None:
        self._pending[name] = values
        if len(self._pending) < self._expected:
            return
        columns = {key: value for key, value in kwargs.items() if key not in _NOT_COLUMNS}
        rows = []
        for index in range(min(self.max_rows, len(completions))):
            row = {
                "prompt": _as_text(prompts[index], role="user"),
                "completion": _as_text(completions[index], role="assistant"),
                "rewards": {fn: _as_float(scores[index]) for fn, scores in self._pending.items()},
            }
            row.update({key: column[index] for key, column in columns.items()})
            rows.append(row)
        self._pending = {}
        self._last_step = step
        self.reporter.samples(step, rows)


class _RecordingReward:
    def __init__(self, function, name: str, recorder: SampleRecorder):
        self.function = function
        self.__name__ = name  # TRL names the rewards/<name>/mean metric after this
        self.recorder = recorder

    def __call__(self, prompts, completions, **kwargs):
        values = self.function(prompts=prompts, completions=completions, **kwargs)
        self._maybe_record(prompts, completions, values, kwargs)
        return values

    def _maybe_record(self, prompts: list, completions: list, values: list, kwargs: dict) -> None:
        # Completions generated now are trained on in the coming optimizer step.
        state = kwargs.get("trainer_state")
        step = state.global_step + 1 if state is not None else 0
        if self.recorder.due(step):
            self.recorder.record(self.__name__, step, prompts, completions, values, kwargs)


class _AsyncRecordingReward(_RecordingReward):
    async def __call__(self, prompts, completions, **kwargs):
        values = await self.function(prompts=prompts, completions=completions, **kwargs)
        self._maybe_record(prompts, completions, values, kwargs)
        return values


def _as_text(value: str | list[dict], *, role: str) -> str:
    """A conversational prompt/completion shown as its last user/assistant message."""
    if isinstance(value, str):
        return value
    contents = [message.get("content", "") for message in value if message.get("role") == role]
    return str(contents[-1]) if contents else str(value)


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)
