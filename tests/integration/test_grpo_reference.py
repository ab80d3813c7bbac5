"""GRPO on prompt/completion datasets, for real: the tiny model trains, the reward functions get
each row's completion as the plain reference text in "answer", evaluation reads the same
reference, and a launch whose reward reads a column the rewards never receive is a 422."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from app.domain import evaluation_rows as row_tools
from app.domain.hyperparameters import validate_hyperparameters
from app.domain.rewards import REWARD_FUNCTIONS
from tests.conftest import MODEL_CACHE
from tests.integration.test_training_backend import RecordingReporter, write_jsonl
from worker.training import TrainingJob
from worker.training.backends import train
from worker.training.data import load_datasets
from worker.training.models import resolve_model

TINY = "tiny-random-llama"
STRING_ROWS = [{"prompt": f"What is {i} + {i}?", "completion": str(2 * i)} for i in range(8)]
CHAT_ROWS = [{"prompt": [{"role": "user", "content": r["prompt"]}],
              "completion": [{"role": "assistant", "content": r["completion"]}]}
             for r in STRING_ROWS]
FORMATS = {"prompt_completion": STRING_ROWS, "conversational_prompt_completion": CHAT_ROWS}


def grpo_job(tmp_path, dataset_format: str, **hyperparameters) -> TrainingJob:
    return TrainingJob(
        run_id=7, strategy="grpo", base_model=TINY, dataset_format=dataset_format,
        dataset_path=write_jsonl(tmp_path / "sums.jsonl", FORMATS[dataset_format]),
        hyperparameters={"per_device_train_batch_size": 2, "num_generations": 2,
                         "max_completion_length": 8, **hyperparameters},
        output_dir=tmp_path / "run", model_cache_dir=MODEL_CACHE)


def test_grpo_rewards_receive_the_completion_as_the_plain_reference_answer(tmp_path):
    exact = REWARD_FUNCTIONS["exact_answer"].build({"column": "answer"})
    seen: list[dict] = []

    def spy(prompts, completions, **kwargs):
        """exact_answer, recording what TRL handed it."""
        seen.append({"prompts": prompts, **kwargs})
        return exact(prompts=prompts, completions=completions, **kwargs)

    job = grpo_job(tmp_path, "prompt_completion", max_steps=2)
    job.reward_functions = [spy]
    assert train(job, RecordingReporter()).final_step == 2
    assert len(seen) == 2
    for call in seen:
        assert "completion" not in call
        # Plain strings, one per completion, each the answer to its own (conversational) prompt.
        for prompt, answer in zip(call["prompts"], call["answer"], strict=True):
            question = prompt[-1]["content"]
            assert prompt[-1]["role"] == "user" and question.startswith("What is ")
            assert answer == str(2 * int(question.split()[2]))
        # The reward scores the reference itself as right: the column is usable as it arrives.
        assert exact(completions=list(call["answer"]), answer=call["answer"]) == [1.0] * len(
            call["answer"])


@pytest.mark.parametrize("dataset_format", list(FORMATS))
@pytest.mark.parametrize("chat_template", ["auto", "off"])
def test_evaluation_reads_the_reference_the_trainer_gave_the_rewards(
    tmp_path, dataset_format, chat_template,
):
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(TINY, MODEL_CACHE))
    job = grpo_job(tmp_path, dataset_format, eval_split=0.25, seed=3, chat_template=chat_template)
    hp = validate_hyperparameters("grpo", job.hyperparameters)
    train_set, eval_set = load_datasets(job, hp, tokenizer)
    assert eval_set is not None
    trained = train_set.to_list() + eval_set.to_list()
    assert all(set(r) == {"prompt", "answer"} and isinstance(r["answer"], str) for r in trained)
    conversational = chat_template == "auto" or dataset_format != "prompt_completion"
    assert all(isinstance(r["prompt"], list) == conversational for r in trained)
    held_out = row_tools.held_out_rows(FORMATS[dataset_format], strategy="grpo",
                                       dataset_format=dataset_format,
                                       hyperparameters=hp.model_dump(), tokenizer=tokenizer)
    assert held_out == eval_set.to_list()
    parts = [row_tools.example_parts(r, dataset_format=dataset_format) for r in held_out]
    assert [p["reference"] for p in parts] == [r["answer"] for r in held_out]


@pytest.fixture
def pc_dataset(client):
    body = "\n".join(json.dumps(row) for row in STRING_ROWS[:6]).encode()
    response = client.post("/api/datasets", files={"file": ("pc-sums.jsonl", body)})
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["format"] == "prompt_completion"
    return dataset


def launch(client, dataset, rewards):
    return client.post("/api/runs", json={
        "dataset_id": dataset["id"], "strategy": "grpo", "base_model": TINY,
        "queue": "nobody-listens", "reward_functions": rewards,
        "hyperparameters": {"per_device_train_batch_size": 2, "num_generations": 2}})


@pytest.mark.parametrize(("column", "fragment"), [
    ("solution", "reads column 'solution', which dataset 'pc-sums' does not have"),
    ("completion", "GRPO hands a dataset's completion to reward functions as 'answer'"),
    ("prompt", "reward functions get the prompts on their own"),
])
def test_a_reward_column_the_rewards_never_receive_is_a_422_naming_those_they_do(
    client, pc_dataset, column, fragment,
):
    before = len(client.get("/api/runs").json())
    response = launch(client, pc_dataset, [{"name": "exact_answer", "params": {"column": column}}])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert fragment in detail and "(columns rewards receive: answer)" in detail, detail
    assert len(client.get("/api/runs").json()) == before


def test_grpo_launches_on_a_prompt_completion_dataset_with_the_default_reward(client, pc_dataset):
    response = launch(client, pc_dataset, [{"name": "exact_answer"}])  # column "answer"
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["reward_functions"][0]["params"] == {"column": "answer"}
    client.post(f"/api/runs/{run['id']}/cancel")
