"""Sampled completions (GRPO) of several runs side by side: same prompt, nearest step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.domain.json_values import json_safe
from app.domain.models import Sample

# Completions shown per run and prompt: GRPO samples num_generations of each.
MAX_PER_PROMPT = 4


def nearest_step(steps: Sequence[int], target: int) -> int | None:
    """The step in ``steps`` closest to ``target``; a tie goes to the later step."""
    if not steps:
        return None
    return min(steps, key=lambda step: (abs(step - target), -step))


def side_by_side(
    rows_by_run: Mapping[int, Sequence[Mapping[str, Any]]], *, per_prompt: int = MAX_PER_PROMPT
) -> list[dict[str, Any]]:
    """``[{"prompt", "runs": {run_id: [{"completion", "rewards"}]}}]``, prompts in the order
    they first appear, prompts every run sampled first (those are the comparable ones)."""
    prompts: dict[str, dict[str, list]] = {}
    for run_id, rows in rows_by_run.items():
        for row in rows:
            by_run = prompts.setdefault(row["prompt"], {})
            entries = by_run.setdefault(str(run_id), [])
            if len(entries) < per_prompt:
                entries.append({"completion": row["completion"], "rewards": row["rewards"]})
    ordered = sorted(prompts.items(), key=lambda item: -len(item[1]))  # stable: keeps order
    return [{"prompt": prompt, "runs": by_run} for prompt, by_run in ordered]


def samples_payload(
    session: Session, *, run_ids: list[int], step: int | None = None
) -> dict[str, Any]:
    """Steps each run sampled, the step shown per run (nearest to ``step``, default the latest
    any run sampled) and the completions grouped by prompt."""
    available: dict[int, list[int]] = {run_id: [] for run_id in run_ids}
    query = (select(Sample.run_id, Sample.step).where(Sample.run_id.in_(run_ids))
             .distinct().order_by(Sample.run_id, Sample.step))
    for run_id, sample_step in session.execute(query):
        available[run_id].append(sample_step)
    all_steps = sorted({s for steps in available.values() for s in steps})
    if not all_steps:
        return {"steps": [], "step": None, "shown": {}, "prompts": []}
    target = all_steps[-1] if step is None else step
    shown = {run_id: nearest_step(steps, target) for run_id, steps in available.items()}
    # Every run's shown step in one read; runs keep the order asked (it sets prompt order).
    rows_by_run: dict[int, list[dict[str, Any]]] = {
        run_id: [] for run_id, at in shown.items() if at is not None}
    at_shown = [and_(Sample.run_id == run_id, Sample.step == shown[run_id])
                for run_id in rows_by_run]
    shown_rows = select(Sample).where(or_(*at_shown)).order_by(Sample.run_id, Sample.id)
    for r in session.scalars(shown_rows):
        rows_by_run[r.run_id].append({"prompt": r.prompt, "completion": r.completion,
                                      "rewards": json_safe(r.rewards or {})})
    return {
        "steps": all_steps, "step": target,
        "shown": {str(run_id): at for run_id, at in shown.items()},
        "prompts": side_by_side(rows_by_run),
    }
