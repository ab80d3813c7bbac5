"""GET /api/runs/{id}/figures: the run page's own figures from the run row and the wall times
its metrics were logged at."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.domain import metrics
from app.domain.models import Run, RunStatus, utcnow
from tests.factories import add_dataset


@pytest.fixture
def db(client):
    from app.core.db import SessionLocal

    with SessionLocal() as session:
        yield session


def add_grpo_run(session, *, resume_points=None):
    dataset = add_dataset(session, name="arith", num_rows=10)
    start = utcnow() - timedelta(hours=1)
    run = Run(name="figures", strategy="grpo", base_model="tiny", dataset_id=dataset.id,
              status=RunStatus.completed, step=20, max_steps=20, started_at=start,
              finished_at=start + timedelta(seconds=400), training_seconds=180.0,
              resume_points=resume_points or [],
              hyperparameters={"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
                               "num_generations": 4})
    session.add(run)
    session.flush()
    rows, t = [], 0.0
    for step in range(1, 21):
        # Steps 2-3 are slow (first generations), then 3 s a step, 100 tokens a step;
        # a 200 s pause after step 12 when resumed there.
        t += 40.0 if step in (2, 3) else 3.0
        if resume_points and step == 13:
            t += 200.0
        at = start + timedelta(seconds=t)
        rows += [(step, "loss", 1.0 / step, at), (step, "num_tokens", 100.0 * step, at)]
    metrics.log_batch(session, run_id=run.id, rows=rows)
    session.commit()
    return run


@pytest.mark.parametrize("resumed", [False, True])
def test_figures(client, db, resumed):
    run = add_grpo_run(db, resume_points=[{"step": 12, "at": "x"}] if resumed else None)
    body = client.get(f"/api/runs/{run.id}/figures").json()
    assert body["training_seconds"] == pytest.approx(180.0)
    assert body["wall_seconds"] == pytest.approx(400.0, abs=1)
    assert body["seconds_per_step"] == pytest.approx(3.0)
    assert body["tokens_per_second"] == pytest.approx(100.0 / 3.0, rel=0.05)
    assert body["tokens_seen"] == 2000
    assert body["samples_seen"] == 20 * 4 * 2
    assert body["samples_unit"] == "completions" and body["prompts_seen"] == 20 * 8 // 4


def test_figures_of_a_run_that_has_not_logged(client, db):
    dataset = add_dataset(db, name="empty", num_rows=4)
    run = Run(name="queued", strategy="sft", base_model="tiny", dataset_id=dataset.id,
              status=RunStatus.queued, hyperparameters={})
    db.add(run)
    db.commit()
    body = client.get(f"/api/runs/{run.id}/figures").json()
    assert body["seconds_per_step"] is None and body["tokens_per_second"] is None
    assert body["samples_seen"] is None and body["wall_seconds"] is None
    assert client.get("/api/runs/999999/figures").status_code == 404
