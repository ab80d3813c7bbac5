"""Tags and notes on runs and sweeps: set with PATCH (a field left out stays), shown on their
pages, and the runs list filters on a tag (the whole tag, not part of another)."""

from __future__ import annotations

import json

from app.core.db import SessionLocal
from tests.factories import add_dataset, add_run


def test_run_tags_and_notes_and_the_tag_filter(client):
    with SessionLocal() as session:
        dataset = add_dataset(session, name="tagged")
        session.commit()
        first, second, third = (add_run(session, dataset=dataset, name=f"tagged-{i}").id
                                for i in range(3))
    response = client.patch(f"/api/runs/{first}", json={"tags": ["lr-search", "baseline"],
                                                        "notes": "  first try  "})
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["lr-search", "baseline"]
    assert response.json()["notes"] == "first try"
    client.patch(f"/api/runs/{second}", json={"tags": ["lr-search-2"]})
    kept = client.patch(f"/api/runs/{first}", json={"tags": ["lr-search", "baseline"]}).json()
    assert kept["notes"] == "first try"  # notes left out: unchanged

    found = client.get("/api/runs", params={"tag": "lr-search", "dataset_id": dataset.id})
    assert [r["id"] for r in found.json()] == [first]  # not "lr-search-2"
    changes = client.get("/api/runs/changes", params={"tag": "lr-search-2"}).json()
    assert changes["page_ids"] == [second]
    assert client.get("/api/runs", params={"tag": "nothing-has-it"}).json() == []
    assert client.get(f"/api/runs/{third}").json()["tags"] == []

    page = client.get(f"/runs/{first}").text
    assert 'value="lr-search, baseline"' in page and "first try" in page
    bad = client.patch(f"/api/runs/{first}", json={"tags": ['quo"te']})
    assert bad.status_code == 422 and "tags" in bad.text
    assert client.patch(f"/api/runs/{first}", json={"tags": ["x"] * 21}).status_code == 422
    assert client.patch(f"/api/runs/{first}", json={"colour": "red"}).status_code == 422


def test_sweep_tags_and_notes(client):
    rows = b"\n".join(json.dumps({"prompt": "a", "completion": "b"}).encode() for _ in range(4))
    dataset = client.post("/api/datasets", files={"file": ("t.jsonl", rows)}).json()
    sweep = client.post("/api/sweeps", json={
        "run": {"dataset_id": dataset["id"], "base_model": "tiny-random-llama",
                "hyperparameters": {"max_steps": 1, "eval_split": 0.25}},
        "space": {"lora_r": [2]}}).json()
    tagged = client.patch(f"/api/sweeps/{sweep['id']}", json={"tags": ["overnight"],
                                                             "notes": "rank only"})
    assert tagged.status_code == 200, tagged.text
    assert tagged.json()["tags"] == ["overnight"] and tagged.json()["notes"] == "rank only"
    page = client.get(f"/sweeps/{sweep['id']}").text
    assert 'value="overnight"' in page and "rank only" in page
