"""Artifact storage on a real S3-compatible server (moto's, started here): the store itself, the
shared model cache, and a live server + worker whose datasets and checkpoints live in the bucket."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from app.core.storage import ArtifactStore
from tests.conftest import MODEL_CACHE, free_port, start_server, stop_server

BUCKET = "tunedeck-test"
ROWS = [{"prompt": f"Name colour {i}.", "completion": f" {['red', 'green', 'blue'][i % 3]}"}
        for i in range(12)]


@pytest.fixture(scope="module")
def s3():
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="x",
                          aws_secret_access_key="y", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client, {"endpoint_url": endpoint, "key": "x", "secret": "y"}
    server.stop()


def bucket_keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def test_store_round_trips_through_s3(s3, tmp_path):
    client, options = s3
    store = ArtifactStore(f"s3://{BUCKET}/unit", cache_dir=tmp_path / "cache", options=options)
    assert not store.is_local
    source = tmp_path / "checkpoint-2"
    (source / "sub").mkdir(parents=True)
    (source / "adapter_config.json").write_text("{}")
    (source / "sub" / "w.bin").write_bytes(b"\x07")
    store.put_dir(source, "runs/1/checkpoint-2")
    assert bucket_keys(client, "unit/") == [
        "unit/runs/1/checkpoint-2/adapter_config.json", "unit/runs/1/checkpoint-2/sub/w.bin"]
    assert store.list_files("runs/1/checkpoint-2") == ["adapter_config.json", "sub/w.bin"]

    local = store.local_path("runs/1/checkpoint-2")
    assert local.is_relative_to(tmp_path / "cache")
    assert (local / "sub" / "w.bin").read_bytes() == b"\x07"
    assert store.local_path("runs/1/checkpoint-2/adapter_config.json").read_text() == "{}"
    # Written by another host after this process listed the folder: still seen.
    client.put_object(Bucket=BUCKET, Key="unit/runs/1/checkpoint-4/adapter_config.json", Body=b"{}")
    assert store.exists("runs/1/checkpoint-4/adapter_config.json")
    assert store.list_files("runs/1") == [
        "checkpoint-2/adapter_config.json", "checkpoint-2/sub/w.bin",
        "checkpoint-4/adapter_config.json"]
    store.delete("runs/1")
    assert bucket_keys(client, "unit/") == [] and not local.exists()


def test_catalogue_model_is_built_once_and_shared(s3, tmp_path):
    from worker.model_sync import share_catalogue_model

    client, options = s3
    store = ArtifactStore(f"s3://{BUCKET}/models-test", cache_dir=tmp_path / "c", options=options)
    # First host: has (or builds) the model in its cache and uploads it, config.json last.
    share_catalogue_model("tiny-random-llama", cache_dir=MODEL_CACHE, store=store)
    keys = bucket_keys(client, "models-test/models/tiny-random-llama/")
    assert "models-test/models/tiny-random-llama/config.json" in keys
    assert any(key.endswith(".safetensors") for key in keys)
    # Second host: an empty model cache fills from storage instead of building.
    other_cache = tmp_path / "other-host-models"
    share_catalogue_model("tiny-random-llama", cache_dir=other_cache, store=store)
    copied = other_cache / "tiny-random-llama"
    original = MODEL_CACHE / "tiny-random-llama"
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in original.iterdir())
    weights = "model.safetensors"
    assert (copied / weights).read_bytes() == (original / weights).read_bytes()
    # Not catalogue models: left to the Hub or the local folder.
    share_catalogue_model("org/some-model", cache_dir=other_cache, store=store)
    assert len(bucket_keys(client, "models-test/")) == len(keys)


@pytest.mark.slow
def test_live_server_keeps_artifacts_in_the_bucket(s3):
    client, options = s3
    server = start_server("s3", extra_env={
        "TUNEDECK_STORAGE_URL": f"s3://{BUCKET}/live",
        "TUNEDECK_STORAGE_OPTIONS": json.dumps(options),
    })
    try:
        with server.client() as api:
            body = "\n".join(json.dumps(row) for row in ROWS).encode()
            upload = api.post("/api/datasets",
                              files={"file": ("colours.jsonl", body, "application/json")})
            assert upload.status_code == 201, upload.text
            response = api.post("/api/runs", json={
                "dataset_id": upload.json()["id"], "base_model": "tiny-random-llama",
                "backend": "trl",
                "hyperparameters": {"max_steps": 2, "save_steps": 2, "max_length": 64,
                                    "per_device_train_batch_size": 2},
            })
            assert response.status_code == 201, response.text
            run = server.wait_for_run(response.json()["id"], timeout=180)
            assert run["status"] == "completed", f"{run['error']}\n{server.logs()}"
            assert (run["backend"], run["device"]) == ("trl", "cpu")
            download = api.get(f"/api/runs/{run['id']}/checkpoints/best/download")
            assert download.status_code == 200, download.text
        with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
            assert {"adapter_model.safetensors", "adapter_config.json"} <= set(archive.namelist())

        keys = bucket_keys(client, "live/")
        assert any(k.startswith("live/datasets/") and k.endswith(".jsonl") for k in keys), keys
        checkpoint = f"live/runs/{run['id']}/checkpoint-2/"
        assert f"{checkpoint}adapter_model.safetensors" in keys, keys
        assert "live/models/tiny-random-llama/config.json" in keys, keys
        artifacts = server.data_dir / "artifacts"
        assert not artifacts.exists() or not any(p.is_file() for p in artifacts.rglob("*"))
    finally:
        stop_server(server)
