"""Launching through the REST API refuses an SFT max_length that every chat-templated prompt fills
(422 naming the fix, nothing queued) and accepts it with chat_template off when raw prompts fit."""

from __future__ import annotations

import json

ROWS = [{"prompt": f"What is {i} + {i}?", "completion": str(2 * i)} for i in range(4)]


def test_sft_max_length_below_shortest_templated_prompt_is_refused(client):
    body = "\n".join(json.dumps(row) for row in ROWS).encode()
    uploaded = client.post("/api/datasets", files={"file": ("sums.jsonl", body)})
    assert uploaded.status_code == 201, uploaded.text
    dataset = uploaded.json()
    stats = client.get(f"/api/datasets/{dataset['id']}").json()["stats"]
    raw = stats["fields"]["prompt"]["tokens"]["min"]
    templated = stats["templated_prompt"]["tokens"]["min"]
    assert raw < templated  # the template's own tokens

    def launch(**hyperparameters):
        return client.post("/api/runs", json={
            "dataset_id": dataset["id"], "strategy": "sft", "base_model": "tiny-random-llama",
            "queue": "nobody-listens",
            "hyperparameters": {"max_length": templated, **hyperparameters}})

    runs_before = len(client.get("/api/runs").json())
    refused = launch()
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        f"hyperparameters.max_length: every prompt fills max_length = {templated} tokens (the "
        f"shortest is {templated} tokens with the chat template), so no completion token is left "
        f"to train on: raise max_length above {templated} or set chat_template to 'off' (the "
        f"shortest prompt is then {raw} tokens)")
    assert len(client.get("/api/runs").json()) == runs_before  # nothing queued

    accepted = launch(chat_template="off")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["hyperparameters"]["chat_template"] == "off"
