"""The new-run form's dataset pre-selection and the launch's context-length bound (issue 17,
items 2 and 12)."""

from __future__ import annotations

from app.domain.models import Dataset
from app.services.jobs.launch import context_length_problem
from app.services.jobs.launch_fit import fit_rank, reward_names, suggest_dataset


def dataset(id: int, format: str, *columns: str) -> Dataset:
    return Dataset(id=id, name=f"d{id}", format=format, columns=list(columns))


def test_the_dataset_that_holds_the_answer_wins_over_the_newest():
    newest_text = dataset(3, "prompt_completion", "prompt", "completion")
    prompts_only = dataset(2, "prompt_only", "prompt")
    arithmetic = dataset(1, "prompt_only", "prompt", "answer")
    rewards = reward_names("exact_answer:1,soft_format:0.25")
    assert rewards == ["exact_answer", "soft_format"]
    # Newest first, as the form lists them.
    chosen = suggest_dataset([newest_text, prompts_only, arithmetic], strategy="grpo",
                             rewards=rewards)
    assert chosen is arithmetic
    assert fit_rank(newest_text, strategy="grpo", rewards=rewards) == 1  # completion → answer
    assert fit_rank(prompts_only, strategy="grpo", rewards=rewards) is None
    assert suggest_dataset([prompts_only], strategy="grpo", rewards=rewards) is None
    assert suggest_dataset([prompts_only], strategy="grpo", rewards=["soft_format"]) is (
        prompts_only)
    assert suggest_dataset([newest_text, arithmetic], strategy="dpo", rewards=[]) is None


def test_max_length_is_bounded_by_the_catalogue_models_context():
    problem = context_length_problem("tiny-random-llama", {"max_length": 4096})
    assert problem.startswith("hyperparameters.max_length: must be at most 1024")
    assert context_length_problem("tiny-random-llama", {"max_length": 1024}) is None
    assert context_length_problem("org/hub-model", {"max_length": 10**5}) is None
    assert "max_completion_length" in context_length_problem(
        "tiny-random-llama", {"max_prompt_length": 1000, "max_completion_length": 128})
