"""One run on several processes (torchrun, gloo on this CPU machine): placement checked at launch,
rank 0 alone reporting, and the same loss curve as one process with the same global batch."""

from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest

from app.core.db import session_scope
from app.domain import placement

ROWS = [
    {"prompt": f"Say the word number {i}.", "completion": f" Word {i % 3}: {'abc'[i % 3] * 3}."}
    for i in range(24)
]


def upload(client) -> int:
    body = "\n".join(json.dumps(row) for row in ROWS).encode()
    response = client.post("/api/datasets",
                           files={"file": ("words.jsonl", body, "application/json")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def register(name: str, host: str, devices: int, kind: str = "cpu", queue: str = "placement"):
    with session_scope() as session:
        placement.register_worker(session, name=name, host=host, queues=[queue],
                                  devices=placement.Devices(kind, devices))


def test_placement_is_checked_against_the_live_workers_of_the_queue(client):
    spec = {"dataset_id": upload(client), "base_model": "tiny-random-llama", "queue": "placement"}

    def launch(**hyperparameters):
        return client.post("/api/runs", json={**spec, "hyperparameters": hyperparameters})

    nobody = launch(num_processes=2)
    assert nobody.status_code == 422, nobody.text
    assert "no live worker listens on queue 'placement'" in nobody.json()["detail"]

    register("box-a:1", "box-a", 2)
    register("box-b:1", "box-b", 4, queue="elsewhere")  # not this run's queue
    too_many = launch(num_processes=4)
    assert too_many.status_code == 422
    detail = too_many.json()["detail"]
    assert detail.startswith("hyperparameters.num_processes: 4 processes per host")
    assert "(box-a) has 2 CPU cores: use at most 2" in detail

    hosts = launch(num_processes=1, num_hosts=2)
    assert hosts.status_code == 422
    assert "num_hosts: 2 hosts, but queue 'placement' has live workers on 1 (box-a)" in (
        hosts.json()["detail"])

    fsdp_alone = launch(distributed="fsdp")
    assert fsdp_alone.status_code == 422
    assert "fsdp shards the model over several processes" in fsdp_alone.json()["detail"]
    fsdp_cpu = launch(num_processes=2, distributed="fsdp")
    assert fsdp_cpu.status_code == 422
    assert "no live worker on queue 'placement' has a CUDA GPU: use ddp" in (
        fsdp_cpu.json()["detail"])

    fits = launch(num_processes=2, per_device_train_batch_size=2, gradient_accumulation_steps=3)
    assert fits.status_code == 201, fits.text
    run = fits.json()
    assert run["hyperparameters"]["num_processes"] == 2
    page = client.get(f"/runs/{run['id']}").text
    assert 'id="placement-summary"' in page and "2 processes" in page
    assert "global batch <strong>12</strong>" in page  # 2 per device × 2 processes × 3
    client.post(f"/api/runs/{run['id']}/cancel")  # no worker consumes this queue here


def test_grpo_generation_batch_spans_every_process(client):
    from app.domain.hyperparameters import GRPOHyperparameters

    one = GRPOHyperparameters(per_device_train_batch_size=2, gradient_accumulation_steps=2,
                              num_generations=8, num_processes=2)
    assert one.global_batch_size == 8  # 2 × 2 processes × 2: whole groups of 8 over both ranks
    with pytest.raises(ValueError) as refused:
        GRPOHyperparameters(per_device_train_batch_size=2, gradient_accumulation_steps=1,
                            num_generations=8, num_processes=3)
    assert ("per_device_train_batch_size × gradient_accumulation_steps × num_processes × "
            "num_hosts = 6 is not divisible by num_generations = 8") in str(refused.value)
    with pytest.raises(ValueError, match="multiple of per_device_train_batch_size × num_proc"):
        GRPOHyperparameters(per_device_train_batch_size=2, generation_batch_size=6,
                            num_generations=2, num_processes=2)


def test_new_run_form_has_placement_fields(client):
    upload(client)
    page = client.get("/runs/new").text
    for name in ("num_processes", "num_hosts", "distributed"):
        assert f'id="field-{name}"' in page
    assert 'id="global-batch"' in page
    # Placement lives in its own section, not once per strategy among the hyperparameters.
    assert 'id="hp-sft-num_processes"' not in page


def _losses(client, run_id: int) -> list[tuple[int, float]]:
    return client.get(f"/api/runs/{run_id}/metrics?names=loss").json()["metrics"]["loss"]


@pytest.mark.slow
def test_two_process_sft_run_matches_one_process_with_the_same_global_batch(live_server,
                                                                            tmp_path):
    common = {"max_steps": 4, "save_steps": 2, "learning_rate": 1e-3, "max_length": 64,
              "lora_dropout": 0.0, "seed": 7}
    with live_server.client() as client:
        dataset_id = upload(client)

        def launch(name: str, **hyperparameters) -> int:
            response = client.post("/api/runs", json={
                "dataset_id": dataset_id, "base_model": "tiny-random-llama", "name": name,
                "hyperparameters": {**common, **hyperparameters}})
            assert response.status_code == 201, response.text
            return response.json()["id"]

        # The worker registers its devices at start; the 2-process launch needs it.
        deadline_runs = [launch("one-process", per_device_train_batch_size=4)]
        deadline_runs.append(launch("two-processes", per_device_train_batch_size=2,
                                    num_processes=2))
        one, two = (live_server.wait_for_run(run_id, timeout=600) for run_id in deadline_runs)
        assert one["status"] == "completed", f"{one['error']}\n{live_server.logs()}"
        assert two["status"] == "completed", f"{two['error']}\n{live_server.logs()}"
        assert two["step"] == 4 and two["device"] == "cpu"

        # Rank 0 alone reports: one row per step and metric, one checkpoint per save.
        raw = client.get(f"/api/runs/{two['id']}/metrics").json()["metrics"]
        for name in ("loss", "grad_norm", "learning_rate"):
            assert [step for step, _ in raw[name]] == [1, 2, 3, 4], (name, raw[name])
        checkpoints = client.get(f"/api/runs/{two['id']}/checkpoints").json()
        assert [c["step"] for c in checkpoints] == [2, 4]

        # Both ranks really split the batch: 2 × 2 per step is the 1 × 4 of the single process,
        # the same examples in the same order (seeded sampler), so the curves agree closely.
        single, double = _losses(client, one["id"]), _losses(client, two["id"])
        print("loss, 1 process × 4:", single, "\nloss, 2 processes × 2:", double)
        assert [s for s, _ in single] == [s for s, _ in double] == [1, 2, 3, 4]
        for (_, a), (_, b) in zip(single, double, strict=True):
            assert b == pytest.approx(a, rel=1e-4), (single, double)

        download = client.get(f"/api/runs/{two['id']}/checkpoints/best/download")
        assert download.status_code == 200
    log = live_server.data_dir / "runs" / str(two["id"]) / "train.log"
    assert "rank 1 of 2" in log.read_text(), log.read_text()[-3000:]

    folder = tmp_path / "adapter"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        archive.extractall(folder)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tests.conftest import MODEL_CACHE
    from worker.training.models import resolve_model

    base = AutoModelForCausalLM.from_pretrained(resolve_model("tiny-random-llama", MODEL_CACHE))
    model = PeftModel.from_pretrained(base, folder)
    assert any("lora_" in name for name, _ in model.named_parameters())


def _ranks(run_id: int) -> dict[int, int]:
    """rank → pid of the training processes of ``run_id`` alive on this machine."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"worker.train_process" not in argv or str(run_id).encode() not in argv:
                continue
            environ = dict(item.split(b"=", 1) for item in
                           (proc / "environ").read_bytes().split(b"\0") if b"=" in item)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if b"RANK" in environ and (proc / "stat").read_text().split()[2] != "Z":
            found[int(environ[b"RANK"])] = int(proc.name)
    return found


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _launch(client, dataset_id: int, **hyperparameters) -> int:
    response = client.post("/api/runs", json={
        "dataset_id": dataset_id, "base_model": "tiny-random-llama",
        "hyperparameters": {"learning_rate": 1e-3, "max_length": 64,
                            "per_device_train_batch_size": 2, "num_processes": 2,
                            **hyperparameters}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.mark.slow
def test_killing_one_rank_fails_the_run_naming_it_and_stops_the_other(live_server):
    with live_server.client() as client:
        # Steps enough after the first checkpoint that the kill comes before the end.
        run_id = _launch(client, upload(client), max_steps=16, save_steps=2)
        _wait(lambda: client.get(f"/api/runs/{run_id}/checkpoints").json(), 300,
              "a first checkpoint")
        ranks = _ranks(run_id)
        assert set(ranks) == {0, 1}, ranks
        os.kill(ranks[1], signal.SIGKILL)

        run = live_server.wait_for_run(run_id, timeout=120)
        assert run["status"] == "failed", run
        assert "training rank 1 of 2 was killed by signal 9" in run["error"], run["error"]
        _wait(lambda: not _ranks(run_id), 60, "rank 0 to stop")

        # Resume restores both ranks from the last checkpoint and finishes the run.
        resumed = client.post(f"/api/runs/{run_id}/resume")
        assert resumed.status_code == 200, resumed.text
        run = live_server.wait_for_run(run_id, timeout=600)
        assert run["status"] == "completed", f"{run['error']}\n{live_server.logs()}"
        losses = client.get(f"/api/runs/{run_id}/metrics?names=loss").json()["metrics"]["loss"]
        assert losses[-1][0] == 16


@pytest.mark.slow
def test_cancel_stops_every_rank_at_one_step(live_server):
    with live_server.client() as client:
        run_id = _launch(client, upload(client), max_steps=2000, save_steps=1000)
        _wait(lambda: client.get(f"/api/runs/{run_id}").json()["step"] >= 3, 300, "step 3")
        assert client.post(f"/api/runs/{run_id}/cancel").status_code == 200
        # Had the ranks disagreed on the last step, one would wait for the other forever.
        run = live_server.wait_for_run(run_id, timeout=120)
        assert run["status"] == "cancelled", run
        _wait(lambda: not _ranks(run_id), 60, "every rank to exit")
        checkpoints = client.get(f"/api/runs/{run_id}/checkpoints").json()
        assert [c["step"] for c in checkpoints] == [run["step"]]
        assert run["step"] < 2000


@pytest.mark.slow
def test_two_process_grpo_run(live_server):
    rows = [{"prompt": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(8)]
    body = "\n".join(json.dumps(r) for r in rows).encode()
    with live_server.client() as client:
        response = client.post("/api/datasets",
                               files={"file": ("sums.jsonl", body, "application/json")})
        assert response.status_code == 201, response.text
        response = client.post("/api/runs", json={
            "dataset_id": response.json()["id"], "strategy": "grpo",
            "base_model": "tiny-random-llama",
            "reward_functions": [{"name": "exact_answer", "weight": 1.0}],
            # Each step's 4 completions (2 per rank) are 2 whole groups of 2 over both ranks.
            "hyperparameters": {"max_steps": 2, "save_steps": 1, "num_processes": 2,
                                "per_device_train_batch_size": 2, "num_generations": 2,
                                "max_completion_length": 8, "sample_every_steps": 1,
                                "learning_rate": 1e-3},
        })
        assert response.status_code == 201, response.text
        run = live_server.wait_for_run(response.json()["id"], timeout=600)
        assert run["status"] == "completed", f"{run['error']}\n{live_server.logs()}"
        metrics = client.get(f"/api/runs/{run['id']}/metrics").json()["metrics"]
        for name in ("reward", "kl", "rewards/exact_answer/mean"):
            assert [step for step, _ in metrics.get(name, [])] == [1, 2], (name, metrics)
        samples = client.get(f"/api/runs/{run['id']}/samples").json()
        # Rank 0 alone stores samples: its own 2 completions per sampled step, never rank 1's.
        assert sorted(s["step"] for s in samples) == [1, 1, 2, 2], samples
        checkpoints = client.get(f"/api/runs/{run['id']}/checkpoints").json()
        assert [c["step"] for c in checkpoints] == [1, 2]


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_of_one_host_never_give_a_device_to_two_runs(live_server_postgres):
    """Two worker processes on this host (2 CPU cores): a 2-process run holds both cores, so a
    1-process run that the other worker takes waits, saying why, until the first one ends."""
    import subprocess

    from app.cli import worker_command
    from tests.conftest import ROOT

    server = live_server_postgres
    log = open(server.data_dir / "second-worker.log", "wb")  # noqa: SIM115 (closed below)
    second = subprocess.Popen(worker_command("training", "second"), cwd=ROOT, env=server.env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        with server.client() as client:
            dataset_id = upload(client)
            first = _launch(client, dataset_id, max_steps=16, save_steps=100)
            _wait(lambda: client.get(f"/api/runs/{first}").json()["status"] == "running", 300,
                  "the 2-process run to start")
            later = _launch(client, dataset_id, max_steps=2, save_steps=100, num_processes=1)
            waiting = _wait(lambda: (run := client.get(f"/api/runs/{later}").json())["phase"]
                            == "waiting_for_devices" and run, 120, "the waiting reason")
            assert "waiting for devices" in waiting["phase_label"], waiting
            one = server.wait_for_run(first, timeout=600)
            two = server.wait_for_run(later, timeout=600)
        assert one["status"] == two["status"] == "completed", (one, two, server.logs())
        assert two["started_at"] >= one["finished_at"], (one, two)
        from sqlalchemy import create_engine, text

        from tests.conftest import POSTGRES_URL

        engine = create_engine(POSTGRES_URL)

        def released() -> bool:  # as each worker's task returns: deleted, not merely expired
            with engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM device_reservation")).scalar() == 0

        _wait(released, 60, "the reservations to be deleted")
        engine.dispose()
    finally:
        second.terminate()
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
        log.close()
