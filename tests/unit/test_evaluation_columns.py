"""An evaluation of a GRPO run on another dataset checks that its rewards' columns arrive there
(app/domain/evaluations.py), with launch's message."""

from __future__ import annotations

from app.domain.evaluations import missing_reward_column
from app.domain.models import Dataset, Run
from app.domain.scorers import resolve_scorers

REWARDS = [{"name": "exact_answer", "weight": 1.0, "params": {"column": "answer"}},
           {"name": "soft_format", "weight": 0.25, "params": {}}]


def grpo_run(**hyperparameters) -> Run:
    return Run(id=7, strategy="grpo", dataset_id=1, reward_functions=REWARDS,
               hyperparameters=hyperparameters)


def dataset(id: int, *columns: str) -> Dataset:
    return Dataset(id=id, name=f"data-{id}", columns=list(columns), format="prompt_only")


def problem(run: Run, data: Dataset, scorers=None):
    chosen = resolve_scorers(run.strategy, scorers, run.reward_functions)
    return missing_reward_column(run=run, dataset=data, scorers=chosen)


def test_columns_rewards_receive_there_pass():
    run = grpo_run()
    assert problem(run, dataset(2, "prompt", "answer", "source")) is None
    # A completion reaches the rewards as "answer" (grpo_rows), as in training.
    assert problem(run, dataset(3, "prompt", "completion")) is None


def test_a_missing_column_names_the_reward_the_columns_there_and_the_fix():
    message = problem(grpo_run(eval_split=0.1), dataset(2, "prompt", "solution", "level"))
    assert message == (
        "dataset 2: reward function 'exact_answer' reads column 'answer', which dataset 'data-2' "
        "does not have (columns rewards receive: solution, level): evaluate on a dataset with "
        "that column, or on the run's eval split")
    # No eval split to fall back on: only the dataset fix is offered.
    assert problem(grpo_run(), dataset(2, "prompt")).endswith(
        "(columns rewards receive: none besides prompt): evaluate on a dataset with that column")


def test_requested_reward_scorers_are_checked_too():
    run = grpo_run()
    extra = [{"name": "numeric_match", "params": {"column": "solution"}}]
    assert "reward function 'numeric_match' reads column 'solution'" in problem(
        run, dataset(2, "prompt", "answer"), extra)
    assert problem(run, dataset(2, "prompt", "answer", "solution"), extra) is None


def test_other_strategies_are_not_checked():
    sft = Run(id=8, strategy="sft", dataset_id=1, reward_functions=[], hyperparameters={})
    chosen = resolve_scorers("sft", ["exact_match", "exact_answer"], [])
    assert missing_reward_column(run=sft, dataset=dataset(2, "prompt", "completion"),
                                 scorers=chosen) is None
