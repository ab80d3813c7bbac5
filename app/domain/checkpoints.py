"""Checkpoints: record them as workers save them, rank them by a stated metric, zip adapters."""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Sequence
from typing import cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.storage import ArtifactStore
from app.domain.models import Checkpoint, Run

# Files a checkpoint folder holds only so training can resume; not part of the adapter download.
RESUME_ONLY = (
    "optimizer.pt",
    "scheduler.pt",
    "rng_state",
    "trainer_state.json",
    "training_args.bin",
    "scaler.pt",
)
MOVING_AVERAGE_WINDOW = 5


def checkpoint_metric(
    strategy: str, series: dict[str, list[tuple[int, float]]], step: int,
    *, held_out: bool | None = None,
) -> tuple[str | None, float | None, str]:
    """Which metric ranks a checkpoint saved at ``step``, its value then, and "lower"/"higher".

    Held-out metrics win when the run has an eval split; otherwise a moving average of the train
    metric (one step's loss or reward is too noisy to rank by). A held-out score counts only when
    it was measured at ``step`` itself: a checkpoint saved between evaluations (a cancel, the last
    step) stays unranked rather than carry an older step's score. ``held_out``: whether the run
    evaluates (its eval split); then a checkpoint without its own score is unranked instead of
    ranked by a train average that cannot be compared with the others' held-out scores.
    """

    def last(name: str) -> float | None:
        points = [v for s, v in series.get(name, []) if s == step and not math.isnan(v)]
        return points[-1] if points else None

    def moving_average(name: str) -> float | None:
        points = [v for s, v in series.get(name, []) if s <= step and math.isfinite(v)]
        window = points[-MOVING_AVERAGE_WINDOW:]
        return sum(window) / len(window) if window else None

    if strategy == "grpo":
        candidates = [("eval_reward", last, "higher"), ("reward", moving_average, "higher")]
    elif strategy == "dpo":
        candidates = [
            ("eval_rewards/margins", last, "higher"),
            ("eval_loss", last, "lower"),
            ("loss", moving_average, "lower"),
        ]
    else:
        candidates = [("eval_loss", last, "lower"), ("loss", moving_average, "lower")]
    for name, read, mode in candidates:
        if held_out and read is moving_average:
            break
        value = read(name)
        if value is not None:
            label = name if read is last else f"{name} (moving average of {MOVING_AVERAGE_WINDOW})"
            return label, value, mode
    return None, None, candidates[0][2]


def record_checkpoint(
    session: Session,
    *,
    run: Run,
    step: int,
    storage_key: str,
    series: dict[str, list[tuple[int, float]]],
) -> Checkpoint:
    held_out = float((run.hyperparameters or {}).get("eval_split") or 0) > 0
    name, value, mode = checkpoint_metric(run.strategy, series, step, held_out=held_out)
    checkpoint = session.scalar(
        select(Checkpoint).where(Checkpoint.run_id == run.id, Checkpoint.step == step)
    )
    if checkpoint is None:
        checkpoint = Checkpoint(run_id=run.id, step=step)
        session.add(checkpoint)
    checkpoint.storage_key = storage_key
    checkpoint.metric_name, checkpoint.metric_value, checkpoint.metric_mode = name, value, mode
    session.flush()
    mark_best(session, run_id=run.id)
    return checkpoint


def mark_best(session: Session, *, run_id: int) -> Checkpoint | None:
    checkpoints = list(session.scalars(select(Checkpoint).where(Checkpoint.run_id == run_id)))
    ranked = [c for c in checkpoints if c.metric_value is not None]
    # Held-out scores and train averages do not compare: once any checkpoint has a held-out
    # score, only those compete.
    if any((c.metric_name or "").startswith("eval_") for c in ranked):
        ranked = [c for c in ranked if (c.metric_name or "").startswith("eval_")]
    if ranked:
        sign = -1 if ranked[0].metric_mode == "higher" else 1
        # Ties go to the later checkpoint: it saw more data.
        best = min(ranked, key=lambda c: (sign * cast(float, c.metric_value), -c.step))
    elif checkpoints:
        best = max(checkpoints, key=lambda c: c.step)
    else:
        return None
    session.execute(update(Checkpoint).where(Checkpoint.run_id == run_id).values(is_best=False))
    session.execute(update(Checkpoint).where(Checkpoint.id == best.id).values(is_best=True))
    session.flush()
    session.refresh(best)
    return best


def best_checkpoint(session: Session, *, run_id: int) -> Checkpoint | None:
    return best_checkpoints(session, run_ids=[run_id]).get(run_id)


def best_checkpoints(session: Session, *, run_ids: Sequence[int]) -> dict[int, Checkpoint]:
    """Each run's best checkpoint (the one ``mark_best`` or an evaluation marked), by run id.

    One query per 500 runs, so listing runs costs the same number of queries for 2 or 200.
    """
    best: dict[int, Checkpoint] = {}
    ids = list(dict.fromkeys(run_ids))
    for start in range(0, len(ids), 500):
        rows = session.scalars(
            select(Checkpoint)
            .where(Checkpoint.run_id.in_(ids[start:start + 500]), Checkpoint.is_best.is_(True))
            # Only one is marked; should two ever be, the later step wins, as in mark_best.
            .order_by(Checkpoint.run_id, Checkpoint.step.desc())
        )
        for checkpoint in rows:
            best.setdefault(checkpoint.run_id, checkpoint)
    return best


def latest_checkpoint(session: Session, *, run_id: int) -> Checkpoint | None:
    return session.scalar(
        select(Checkpoint)
        .where(Checkpoint.run_id == run_id)
        .order_by(Checkpoint.step.desc())
        .limit(1)
    )


def adapter_zip(store: ArtifactStore, checkpoint: Checkpoint, *, readme: str | None = None,
                base_model: str | None = None) -> bytes:
    """The adapter, its config and the tokenizer: what ``PeftModel.from_pretrained`` needs.
    ``readme`` replaces PEFT's empty model card; ``base_model`` replaces the config's
    ``base_model_name_or_path`` (the worker's local copy of the model, a server path)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        names = store.list_files(checkpoint.storage_key)
        for name in names:
            if name.split("/")[0].startswith(RESUME_ONLY) or (readme is not None
                                                                and name == "README.md"):
                continue
            with store.open(f"{checkpoint.storage_key}/{name}") as handle:
                data = handle.read()
            if name == "adapter_config.json" and base_model is not None:
                config = json.loads(data)
                config["base_model_name_or_path"] = base_model
                data = json.dumps(config, indent=2).encode()
            archive.writestr(name, data)
        if readme is not None:
            archive.writestr("README.md", readme)
    return buffer.getvalue()
