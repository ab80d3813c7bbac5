"""A grid sweep through a live server and a real worker on tiny-random-llama: one configuration
targets LoRA modules the model does not have, so its run fails in training; the sweep continues
past it, launches the rest as slots free, finishes, and names its best run."""

from __future__ import annotations

import json
import time

import pytest

ROWS = "\n".join(json.dumps({"prompt": f"Say {i}.", "completion": f" word {i % 3}"})
                 for i in range(12))


@pytest.mark.slow
def test_grid_sweep_continues_past_a_failing_configuration(live_server):
    server = live_server
    with server.client() as client:
        dataset = client.post("/api/datasets", files={"file": ("sweep-live.jsonl", ROWS.encode())})
        assert dataset.status_code == 201, dataset.text
        response = client.post("/api/sweeps", json={
            "name": "live-grid",
            "run": {"dataset_id": dataset.json()["id"], "base_model": "tiny-random-llama",
                    "hyperparameters": {"max_steps": 2, "save_steps": 2, "eval_split": 0.25,
                                        "per_device_train_batch_size": 2, "max_length": 64}},
            "kind": "grid",
            "space": {"lora_target_modules": [["no_such_proj"], "all-linear"],
                      "learning_rate": [1e-3, 1e-4]},
            "metric": "eval_loss", "direction": "min", "concurrency": 1,
            "continue_on_error": True,
        })
        assert response.status_code == 201, response.text
        sweep = response.json()
        assert sweep["total_runs"] == 4 and sweep["launched"] == 1
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            sweep = client.get(f"/api/sweeps/{sweep['id']}").json()
            if sweep["status"] != "running":
                break
            time.sleep(1)
        assert sweep["status"] == "completed", f"{sweep}\n{server.logs()}"
        by_target = {}
        for run in sweep["runs"]:
            by_target.setdefault(json.dumps(run["params"]["lora_target_modules"]), []).append(run)
        failed = by_target['["no_such_proj"]']
        assert [r["status"] for r in failed] == ["failed", "failed"], failed
        assert "no_such_proj" in (failed[0]["error"] or "")
        good = by_target['"all-linear"']
        assert [r["status"] for r in good] == ["completed", "completed"], good
        assert all(r["best"] is not None and r["final"] is not None for r in good)
        best = min(good, key=lambda r: r["best"])
        assert sweep["best_run"]["id"] == best["id"] and best["rank"] == 1
        assert sweep["counts"] == {"failed": 2, "completed": 2}
