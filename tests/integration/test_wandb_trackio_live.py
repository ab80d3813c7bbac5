"""W&B and Trackio mirrors and health-warning notifications through a live server and a real
Celery worker training tiny-random-llama. W&B runs offline (WANDB_MODE=offline on the worker,
files under WANDB_DIR) and its .wandb file is read back through W&B's own protobuf records;
Trackio writes its SQLite database under TRACKIO_DIR, read back with Trackio's storage API. Both
carry the same steps and values as TuneDeck's database. A run whose loss diverges, and whose W&B
mirror cannot reach its server, gets one signed ``run.health_warning`` per kind of warning at a
local receiver, and still completes."""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import pytest

from tests.conftest import SESSION_DIR, free_port, start_server, stop_server
from tests.integration.test_trackers_live import launch
from tests.receiver import receiving

wandb = pytest.importorskip("wandb")
trackio = pytest.importorskip("trackio")
pytestmark = pytest.mark.slow

WANDB_DIR = SESSION_DIR / "wandb-offline"
SUMS = [{"prompt": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(8)]

TRACKIO_DIR = SESSION_DIR / "trackio"


@pytest.fixture(scope="module")
def receiver():
    yield from receiving()


@pytest.fixture(scope="module")
def server(receiver):
    live = start_server("wandb-trackio", extra_env={
        "WANDB_MODE": "offline", "WANDB_DIR": str(WANDB_DIR), "TRACKIO_DIR": str(TRACKIO_DIR),
        # An online W&B run (the second test asks for one) finds no server here.
        "WANDB_BASE_URL": f"http://127.0.0.1:{free_port()}", "WANDB_API_KEY": "x" * 40,
        "WANDB_INIT_TIMEOUT": "3",
        "TUNEDECK_NOTIFY_URLS": receiver.url("/hook"), "TUNEDECK_NOTIFY_RETRIES": "0",
    })
    yield live
    stop_server(live)


def wandb_records(path: Path) -> list:
    """The records of a .wandb file: W&B's LevelDB-style log (a 7-byte header, 32 KiB blocks of
    chunks with a 7-byte header: crc32, length, type) of its protobuf ``Record`` messages."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:16]
    records, pending, block = [], b"", 32 * 1024
    pos = 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        assert zlib.crc32(bytes([kind]) + chunk) == crc, f"corrupt chunk at {pos}"
        pending += chunk
        if kind in (1, 4):  # a full record, or a record's last chunk
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_history(path: Path) -> dict[str, list[list]]:
    curves: dict[str, list[list]] = {}
    for record in wandb_records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        row = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
               for item in record.history.item}
        for name, value in row.items():
            if not name.startswith("_") and name != "global_step":
                curves.setdefault(name, []).append([row["global_step"], value])
    return curves


def wait_for_finished(client, run_id: int, names: set[str]) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(f"/api/runs/{run_id}/trackers").json()["status"]
        if all(status.get(name, {}).get("finished") or status.get(name, {}).get("state")
               == "failing" for name in names):
            return status
        time.sleep(0.5)
    raise AssertionError(status)


def test_curves_arrive_in_offline_wandb_and_trackio_as_in_tunedeck(server, monkeypatch):
    with server.client() as client:
        run = launch(client, {"wandb": {"project": "tunedeck-live"},
                              "trackio": {"project": "tunedeck-live"}}, max_steps=4)
        done = server.wait_for_run(run["id"], timeout=300)
        assert done["status"] == "completed", server.logs()
        ours = client.get(f"/api/runs/{run['id']}/metrics").json()["metrics"]
        assert len(ours["loss"]) == 4
        status = wait_for_finished(client, run["id"], {"wandb", "trackio"})
        points = sum(len(curve) for curve in ours.values())
        for name in ("wandb", "trackio"):
            assert status[name]["state"] == "ok" and status[name]["points"] == points, status
        assert status["wandb"]["mode"] == "offline"  # WANDB_MODE on the worker, honoured
        page = client.get(f"/runs/{run['id']}").text
        assert "W&amp;B" in page and status["wandb"]["wandb_run_id"] in page

    files = list(Path(status["wandb"]["offline_dir"]).glob("run-*.wandb"))
    assert files and Path(status["wandb"]["offline_dir"]).is_relative_to(WANDB_DIR), files
    records = wandb_records(files[0])
    opened = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert opened.project == "tunedeck-live" and opened.run_id == status["wandb"]["wandb_run_id"]
    config = {item.key: json.loads(item.value_json) for item in opened.config.update}
    assert config["max_steps"] == 4 and config["base_model"] == "tiny-random-llama"
    assert next(r.exit for r in records if r.WhichOneof("record_type") == "exit").exit_code == 0
    mirrored = wandb_history(files[0])
    assert set(mirrored) == set(ours)
    for name, curve in ours.items():  # every curve, same steps, same values
        assert sorted(mirrored[name]) == sorted(curve), name

    from trackio import sqlite_storage

    # Trackio reads TRACKIO_DIR once, at import: point this process's copy at the worker's.
    assert Path(status["trackio"]["trackio_dir"]) == TRACKIO_DIR
    monkeypatch.setattr(sqlite_storage, "TRACKIO_DIR", TRACKIO_DIR)
    storage, name = sqlite_storage.SQLiteStorage, status["trackio"]["trackio_run"]
    assert storage.get_run_config("tunedeck-live", name)["base_model"] == "tiny-random-llama"
    logs = storage.get_logs("tunedeck-live", name)
    for metric, curve in ours.items():
        assert sorted([row["step"], row[metric]] for row in logs if metric in row) == sorted(
            curve), metric


def test_a_run_that_learns_nothing_and_an_unreachable_wandb_are_told_once_each(server,
                                                                               receiver):
    with server.client() as client:
        # GRPO on exact answers the random model never gives: every generation of every prompt
        # gets reward 0, so no_reward_variance fires at the third logged step (and its
        # completions, cut at 4 tokens, are truncated_completions).
        body = "\n".join(json.dumps(r) for r in SUMS).encode()
        dataset = client.post("/api/datasets", files={"file": ("sums.jsonl", body)}).json()
        response = client.post("/api/runs", json={
            "dataset_id": dataset["id"], "strategy": "grpo", "base_model": "tiny-random-llama",
            "reward_functions": [{"name": "exact_answer"}],
            "hyperparameters": {"max_steps": 3, "save_steps": 3, "eval_split": 0.0,
                                "per_device_train_batch_size": 2, "num_generations": 2,
                                "max_completion_length": 4},
            "trackers": {"wandb": {"project": "tunedeck-live", "mode": "online"}}})
        assert response.status_code == 201, response.text
        run = response.json()
        done = server.wait_for_run(run["id"], timeout=300)
        assert done["status"] == "completed", server.logs()
        health = client.get(f"/api/runs/{run['id']}/health").json()
        codes = {flag["code"] for flag in health}
        assert codes >= {"no_reward_variance", "tracker_unreachable:wandb"}, health

        def told(event: str = "run.health_warning") -> list[dict]:
            return [json.loads(r.body) for r in receiver.at("/hook")
                    if json.loads(r.body)["run"]["id"] == run["id"]
                    and json.loads(r.body)["event"] == event]

        receiver.wait_for(lambda: {w["warning"]["code"] for w in told()} == codes
                          and told("run.completed"), timeout=30)
        kinds = [w["warning"]["code"] for w in told()]
        assert sorted(kinds) == sorted(codes), kinds  # once per kind, though checked often
        by_code = {w["warning"]["code"]: w for w in told()}
        flag = next(f for f in health if f["code"] == "no_reward_variance")
        assert by_code["no_reward_variance"]["warning"] == flag
        assert "GRPO learns nothing" in by_code["no_reward_variance"]["message"]
        assert by_code["tracker_unreachable:wandb"]["type"] == "warning"
        assert "W&B mirror failed" in by_code["tracker_unreachable:wandb"]["message"]
        rows = client.get(f"/api/runs/{run['id']}/notifications").json()
        assert sorted(r["event"] for r in rows if r["status"] == "sent") == sorted(
            ["run.completed"] + ["run.health_warning"] * len(codes)), rows
