"""Each dataset format of TRL's dataset-formats guide that a TuneDeck strategy trains on, end to
end: uploaded through the API, detected, then two training steps on tiny-random-llama from the
stored rows (issue 17, item 16). Implicit-prompt preference rows (standard and conversational)
were refused before ("missing column 'prompt'")."""

from __future__ import annotations

import json

import pytest

from app.core.db import SessionLocal
from app.core.storage import store
from app.domain.models import Dataset
from app.domain.rewards.run_rewards import build_run_rewards, validate_run_rewards
from tests.conftest import MODEL_CACHE
from tests.integration.test_training_backend import SMALL, RecordingReporter
from worker.training import TrainingJob
from worker.training.backends import train

pytestmark = pytest.mark.slow


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


def example(kind: str, i: int) -> dict:
    q, a, wrong = f"What is {i} + {i}?", f"{2 * i}", "I do not know."
    return {
        "text": {"text": f"{q} It is {a}."},
        "messages": {"messages": [user(q), bot(a)]},
        "prompt_completion": {"prompt": q, "completion": f" {a}"},
        "conversational_prompt_completion": {"prompt": [user(q)], "completion": [bot(a)]},
        "prompt_only": {"prompt": q, "answer": a},
        "conversational_prompt_only": {"prompt": [user(q)], "answer": a},
        "preference": {"prompt": q, "chosen": f" {a}", "rejected": f" {wrong}"},
        "conversational_preference": {"prompt": [user(q)], "chosen": [bot(a)],
                                      "rejected": [bot(wrong)]},
        "implicit_preference": {"chosen": f"{q} {a}", "rejected": f"{q} {wrong}"},
        "conversational_implicit_preference": {"chosen": [user(q), bot(a)],
                                               "rejected": [user(q), bot(wrong)]},
        # TRL's tool calling: an assistant turn with tool_calls and no content, the tool's
        # answer with its tool_call_id, the schemas in a tools column.
        "tool_calling": {"messages": [
            user(q), {"role": "assistant", "tool_calls": [{"type": "function", "function": {
                "name": "add", "arguments": {"a": i, "b": i}}}]},
            {"role": "tool", "tool_call_id": f"call_{i}", "content": a}, bot(f"It is {a}.")],
            "tools": [ADD_TOOL]},
    }[kind]


ADD_TOOL = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"},
                                                    "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}


# kind → (strategy, format TuneDeck stores)
CASES = {
    "text": ("sft", "text"),
    "messages": ("sft", "messages"),
    "prompt_completion": ("sft", "prompt_completion"),
    "conversational_prompt_completion": ("sft", "conversational_prompt_completion"),
    "prompt_only": ("grpo", "prompt_only"),
    "conversational_prompt_only": ("grpo", "prompt_only"),
    "preference": ("dpo", "preference"),
    "conversational_preference": ("dpo", "conversational_preference"),
    "implicit_preference": ("dpo", "preference"),
    "conversational_implicit_preference": ("dpo", "conversational_preference"),
    "tool_calling": ("sft", "messages"),
}
GRPO = {"per_device_train_batch_size": 2, "logging_steps": 1, "num_generations": 2,
        "max_completion_length": 8, "max_prompt_length": 64}


@pytest.mark.parametrize("kind", list(CASES))
def test_upload_detect_and_train(kind, client, tmp_path):
    strategy, stored_format = CASES[kind]
    body = "\n".join(json.dumps(example(kind, i)) for i in range(6)).encode()
    response = client.post("/api/datasets", files={"file": (f"{kind}.jsonl", body)})
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["format"] == stored_format
    if "implicit" in kind:  # the shared start became the prompt, as TRL's DPO extracts it
        assert dataset["columns"][:1] == ["prompt"]
        preview = client.get(f"/api/datasets/{dataset['id']}/preview").json()["rows"][0]
        assert "What is 0 + 0?" in json.dumps(preview["prompt"])
        assert "What is" not in json.dumps(preview["chosen"])

    if kind == "tool_calling":  # shown as calls, counted as the trainer renders them
        preview = client.get(f"/api/datasets/{dataset['id']}/preview").json()["rows"][1]
        assert "assistant: → add(a=1, b=1)" in preview["messages"]
        assert "tool (call_1): 2" in preview["messages"]
        stored = client.get(f"/api/datasets/{dataset['id']}").json()["stats"]
        conversation = stored["templated_conversation"]["tokens"]
        contents = stored["fields"]["messages"]["tokens"]
        assert conversation["min"] > contents["max"] + 20  # the calls and the schema count
    rewards, weights = [], None
    if strategy == "grpo":
        configs = validate_run_rewards([{"name": "exact_answer"}], allow_custom=False)
        rewards, weights = build_run_rewards(configs)
    with SessionLocal() as session:
        storage_key = session.get(Dataset, dataset["id"]).storage_key
    job = TrainingJob(
        run_id=1, strategy=strategy, base_model="tiny-random-llama",
        dataset_path=store.local_path(storage_key), dataset_format=stored_format,
        hyperparameters={**(GRPO if strategy == "grpo" else SMALL), "max_steps": 2},
        output_dir=tmp_path / "run", reward_functions=rewards, reward_weights=weights,
        model_cache_dir=MODEL_CACHE,
    )
    reporter = RecordingReporter()
    result = train(job, reporter)
    assert result.final_step == 2
    assert reporter.steps_with("loss") == [1, 2]
