"""Whether an evaluation's reward scorers will find their dataset columns.

Launch checks a GRPO run's reward columns against the run's dataset; an evaluation may score the
run on another dataset, where a column the rewards read can be missing (a missing column scores
0 for every example). The check and its message are launch's, so both read the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.models import Dataset, Run
from app.services.launch import reward_column_problem
from worker.evaluation.scorers import Scorer
from worker.rewards.columns import reward_columns


def missing_reward_column(*, run: Run, dataset: Dataset, scorers: Sequence[Scorer]) -> str | None:
    """Why a reward scorer of a GRPO run's evaluation on ``dataset`` would not get its column,
    naming the columns rewards receive there; None when every column is there. Only GRPO
    evaluations hand rows to rewards as ``grpo_rows`` (see ``reward_columns``)."""
    if run.strategy != "grpo":
        return None
    available = reward_columns(list(dataset.columns or []))
    for scorer in scorers:
        column = (scorer.params or {}).get("column") if scorer.kind == "reward" else None
        if column and column not in available:
            problem = reward_column_problem(scorer.name, column, dataset, available)
            fix = "evaluate on a dataset with that column"
            if dataset.id != run.dataset_id and float(
                    (run.hyperparameters or {}).get("eval_split") or 0) > 0:
                fix += ", or on the run's eval split"
            return f"dataset {dataset.id}: {problem}: {fix}"
    return None
