"""The runs list (GET /api/runs, polled every 2 s, and the /runs page) against the migrated
SQLite: its number of SQL statements does not grow with the number of runs, and it shows the
same best checkpoint as the run itself."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import event

from app.core.db import SessionLocal, engine
from app.domain.checkpoints import record_checkpoint
from app.domain.models import Run, RunStatus

ROWS = b"\n".join(json.dumps({"prompt": f"p{i}", "completion": f"c{i}"}).encode()
                  for i in range(4))
# Held-out metric per checkpoint step, and the step that must rank best: lower eval_loss wins
# for SFT (a tie goes to the later step), higher eval reward for GRPO and margin for DPO.
CASES = {
    "sft": ("eval_loss", {2: 0.9, 4: 0.5, 6: 0.5}, 6),
    "grpo": ("eval_reward", {2: 0.1, 4: 0.8, 6: 0.3}, 4),
    "dpo": ("eval_rewards/margins", {2: 0.4, 4: 0.2, 6: 0.1}, 2),
}


@pytest.fixture
def dataset_id(client) -> int:
    response = client.post("/api/datasets", files={"file": ("list.jsonl", ROWS)})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def add_runs(dataset_id: int, count: int, strategy: str = "sft") -> list[int]:
    """Runs with three checkpoints each, ranked by the real rule (record_checkpoint)."""
    metric, values, _ = CASES[strategy]
    series = {metric: sorted(values.items())}
    ids = []
    with SessionLocal() as session:
        for _ in range(count):
            run = Run(name=f"{strategy}-list", strategy=strategy, base_model="tiny-random-llama",
                      dataset_id=dataset_id, hyperparameters={}, status=RunStatus.completed,
                      step=6, max_steps=6)
            session.add(run)
            session.flush()
            for step in values:
                record_checkpoint(session, run=run, step=step, series=series,
                                  storage_key=f"runs/{run.id}/checkpoint-{step}")
            session.commit()
            ids.append(run.id)
    return ids


class StatementCounter:
    """SQL statements sent while listening, except the reaper thread's (it runs beside)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args) -> None:
        if threading.current_thread().name != "tunedeck-reaper":
            self.count += 1

    def __enter__(self) -> StatementCounter:
        event.listen(engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(engine, "before_cursor_execute", self)


def statements(client, url: str) -> int:
    with StatementCounter() as counter:
        response = client.get(url)
    assert response.status_code == 200, response.text
    return counter.count


@pytest.mark.parametrize("url", ["/api/runs?dataset_id={}", "/runs?dataset_id={}"])
def test_listing_runs_costs_the_same_statements_for_1_or_12_runs(client, dataset_id, url):
    url = url.format(dataset_id)
    add_runs(dataset_id, 1)
    one = statements(client, url)
    add_runs(dataset_id, 11)
    if url.startswith("/api"):
        listed = client.get(url).json()
        assert len(listed) == 12 and all(r["best_checkpoint"] for r in listed)
    assert statements(client, url) == one


def test_list_and_run_show_the_same_best_checkpoint(client, dataset_id):
    expected = {}
    for strategy, (_, _, best_step) in CASES.items():
        for run_id in add_runs(dataset_id, 2, strategy):
            expected[run_id] = best_step
    listed = {r["id"]: r for r in client.get(f"/api/runs?dataset_id={dataset_id}").json()}
    assert set(listed) == set(expected)
    for run_id, best_step in expected.items():
        single = client.get(f"/api/runs/{run_id}").json()["best_checkpoint"]
        assert listed[run_id]["best_checkpoint"] == single
        assert single["step"] == best_step and single["is_best"], (run_id, single)
    # Runs without checkpoints list none.
    with SessionLocal() as session:
        bare = Run(name="bare", strategy="sft", base_model="tiny-random-llama",
                   dataset_id=dataset_id, hyperparameters={}, status=RunStatus.queued)
        session.add(bare)
        session.commit()
        bare_id = bare.id
    listed = {r["id"]: r for r in client.get(f"/api/runs?dataset_id={dataset_id}").json()}
    assert listed[bare_id]["best_checkpoint"] is None
