"""An Optuna sweep through a live server and a real worker on tiny-random-llama: four trials one
at a time over two learning rates far apart, the median pruner judging each trial from its
eval_loss at every step. The first trial (seeded) trains at the rate that learns; a trial at
the rate that barely moves falls behind it at its first eval, is pruned through the cancel
flag (its checkpoint kept) and ends pruned; the sweep finishes, its best run a completed one."""

from __future__ import annotations

import json
import time

import pytest

ROWS = "\n".join(json.dumps({"prompt": f"Say {i}.", "completion": f" word {i % 3}"})
                 for i in range(12))
GOOD, SLOW = 0.05, 1e-5
SEED = 2  # asks GOOD, SLOW, GOOD, SLOW (TPE's random start-up draws, seeded per trial)


@pytest.mark.slow
def test_optuna_sweep_prunes_the_trial_that_falls_behind(live_server):
    server = live_server
    with server.client() as client:
        dataset = client.post("/api/datasets", files={"file": ("optuna.jsonl", ROWS.encode())})
        assert dataset.status_code == 201, dataset.text
        response = client.post("/api/sweeps", json={
            "name": "live-optuna",
            "run": {"dataset_id": dataset.json()["id"], "base_model": "tiny-random-llama",
                    "hyperparameters": {"max_steps": 8, "eval_steps": 1, "save_steps": 8,
                                        "eval_split": 0.25, "per_device_train_batch_size": 2,
                                        "max_length": 64}},
            "kind": "optuna", "budget": 4, "seed": SEED,
            "space": {"learning_rate": [GOOD, SLOW]},
            "pruner": "median", "pruner_options": {"n_startup_trials": 1, "n_warmup_steps": 1},
            "metric": "eval_loss", "direction": "min", "concurrency": 1,
        })
        assert response.status_code == 201, response.text
        sweep = response.json()
        assert sweep["total_runs"] == 4 and sweep["launched"] == 1
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            sweep = client.get(f"/api/sweeps/{sweep['id']}").json()
            if sweep["status"] != "running":
                break
            time.sleep(1)
        assert sweep["status"] == "completed", f"{sweep}\n{server.logs()}"
        runs = sweep["runs"]
        assert [r["params"]["learning_rate"] for r in runs] == [GOOD, SLOW, GOOD, SLOW], runs
        pruned = [r for r in runs if r["status"] == "pruned"]
        assert pruned and all(r["params"]["learning_rate"] == SLOW for r in pruned), runs
        assert all(r["status"] == "completed" for r in runs
                   if r["params"]["learning_rate"] == GOOD), runs
        for run in pruned:
            assert run["prune_reason"].startswith("pruned by the median pruner at step "), run
            assert run["step"] < 8, run  # stopped early
            detail = client.get(f"/api/runs/{run['id']}").json()
            assert detail["status"] == "pruned" and detail["prune_reason"] == run["prune_reason"]
            checkpoints = client.get(f"/api/runs/{run['id']}/checkpoints").json()
            assert checkpoints, f"a pruned run keeps its checkpoint: {detail}"
        assert sweep["best_run"]["status"] == "completed"
        assert sweep["best_run"]["params"]["learning_rate"] == GOOD
        assert "pruned" in sweep["counts"] and "failed" not in sweep["counts"]
