"""Uploaded datasets record their prompts' length as the trainer counts it for max_prompt_length
(wrapped in the chat template), and the dataset page shows it beside the raw prompt length."""

from __future__ import annotations

import json

from sqlalchemy import update

from app.domain.datasets import tokens
from app.domain.models import Dataset
from app.domain.training_rows import prompt_token_count

# Every prompt starts with a letter: after the template's "user\n" nothing merges across the
# boundary, so each templated prompt is its raw tokens plus the template's own.
ROWS = [{"prompt": f"Question {i}: what is {i} times {i + 3}, in words?" + " Think." * i,
         "answer": str(i * (i + 3))} for i in range(12)]


def upload(client, rows, name):
    body = "\n".join(json.dumps(row) for row in rows).encode()
    response = client.post("/api/datasets", files={"file": (name, body)})
    assert response.status_code == 201, response.text
    return response.json()


def test_templated_prompt_stats_exceed_raw_ones_by_the_template(client):
    dataset = upload(client, ROWS, "templated.jsonl")
    stats = client.get(f"/api/datasets/{dataset['id']}").json()["stats"]
    raw, templated = stats["fields"]["prompt"]["tokens"], stats["templated_prompt"]["tokens"]
    # The template's tokens around an empty user turn (SmolLM2: its default system turn too).
    overhead = prompt_token_count([{"role": "user", "content": ""}], tokens.tokenizer())
    assert overhead > 0
    assert templated["min"] == raw["min"] + overhead
    assert templated["max"] == raw["max"] + overhead
    assert templated["median"] == raw["median"] + overhead
    assert abs(templated["mean"] - (raw["mean"] + overhead)) < 0.011
    # What drop_long_prompts would measure on the longest prompt.
    longest = [{"role": "user", "content": ROWS[-1]["prompt"]}]
    assert templated["max"] == prompt_token_count(longest, tokens.tokenizer())

    page = client.get(f"/datasets/{dataset['id']}").text
    assert 'id="templated-prompt-stats"' in page and "(chat template)" in page
    assert "max_prompt_length counts" in page
    row = page.split('id="templated-prompt-stats"', 1)[1].split("</tr>", 1)[0]
    assert f'<td class="num">{templated["max"]}</td>' in row
    assert f'<td class="num">{templated["min"]}</td>' in row


def test_datasets_stored_before_the_templated_stats_still_render(client):
    dataset = upload(client, ROWS[:3], "older.jsonl")
    from app.core.db import SessionLocal

    with SessionLocal() as session:  # as stored before the templated prompt was measured
        stored = session.get(Dataset, dataset["id"])
        assert stored is not None
        older = {k: v for k, v in stored.stats.items() if k != "templated_prompt"}
        session.execute(update(Dataset).where(Dataset.id == dataset["id"]).values(stats=older))
        session.commit()
    response = client.get(f"/datasets/{dataset['id']}")
    assert response.status_code == 200
    assert 'id="token-stats"' in response.text
    assert "templated-prompt" not in response.text and "(chat template)" not in response.text
    text = upload(client, [{"text": "plain words"}], "plain.jsonl")
    assert "templated_prompt" not in text["stats"]
    assert "(chat template)" not in client.get(f"/datasets/{text['id']}").text
