"""GET /api/compare, its exports, run health and the compare page, on the in-process app with
runs and metrics written straight into its database."""

from __future__ import annotations

import csv
import io
import math
from datetime import timedelta

import pytest

from app.domain import metrics
from app.domain.models import Run, RunStatus, Sample, utcnow
from tests.factories import add_checkpoint, add_dataset


@pytest.fixture
def db(client):
    from app.core.db import SessionLocal

    with SessionLocal() as session:
        yield session


def make_run(session, *, name="run", status=RunStatus.completed, steps=20, strategy="sft",
             hyperparameters=None, series=None):
    """A run with a dataset and ``series`` (name -> step -> value) logged one second apart."""
    dataset = add_dataset(session, name=f"data-{name}", num_rows=10)
    start = utcnow() - timedelta(hours=1)
    run = Run(name=name, strategy=strategy, base_model="tiny", dataset_id=dataset.id,
              hyperparameters=hyperparameters or {"learning_rate": 1e-4, "lora_r": 8},
              status=status, step=steps, max_steps=steps, started_at=start,
              finished_at=start + timedelta(seconds=steps) if status != RunStatus.running else None)
    session.add(run)
    session.flush()
    series = series if series is not None else {
        "loss": {s: 2.0 / s for s in range(1, steps + 1)},
        "epoch": {s: s / steps for s in range(1, steps + 1)},
    }
    rows = [(step, name_, value, start + timedelta(seconds=step))
            for name_, points in series.items() for step, value in points.items()]
    metrics.log_batch(session, run_id=run.id, rows=rows)
    session.commit()
    return run


def test_compare_two_runs(client, db):
    a = make_run(db, name="a", hyperparameters={"learning_rate": 1e-4, "lora_r": 8})
    b = make_run(db, name="b", steps=30, hyperparameters={"learning_rate": 3e-4, "lora_r": 8})
    add_checkpoint(db, run=b, step=30, storage_key="x", metric_name="loss", metric_value=0.07,
                   is_best=True)

    body = client.get(f"/api/compare?run_ids={b.id},{a.id}").json()

    assert [r["id"] for r in body["runs"]] == [b.id, a.id]
    assert [r["colour"] for r in body["runs"]] == [0, 1]
    run_b = body["runs"][0]
    assert run_b["status"] == "completed" and run_b["step"] == 30
    assert run_b["duration_seconds"] == pytest.approx(30)
    assert run_b["best_checkpoint"]["download_url"] == f"/api/runs/{b.id}/checkpoints/30/download"
    assert run_b["summary"]["loss"] == {"final": [30, pytest.approx(2 / 30)],
                                        "best": [30, pytest.approx(2 / 30)], "mode": "lower"}
    assert body["metric_names"] == ["epoch", "loss"]
    assert body["metrics"][str(a.id)]["loss"][0] == [1, 2.0]
    assert len(body["metrics"][str(b.id)]["loss"]) == 30
    # Elapsed seconds and epochs by step, for the other x-axes.
    assert body["x"][str(a.id)]["elapsed"][:2] == [[1, 0.0], [2, 1.0]]
    assert body["x"][str(a.id)]["epoch"][-1] == [20, 1.0]
    rows = {row["key"]: row for row in body["config_diff"]["rows"]}
    assert rows["learning_rate"]["differs"] and not rows["lora_r"]["differs"]
    assert rows["learning_rate"]["values"] == {str(b.id): 3e-4, str(a.id): 1e-4}
    assert body["health"] == {str(a.id): [], str(b.id): []}
    assert body["samples"]["steps"] == []


@pytest.mark.parametrize("steps", [300, 5000])
def test_series_are_downsampled_to_max_points_keeping_spikes(client, db, steps):
    """300 steps: downsampled in Python, spikes at their exact step. 5000 steps: bucketed by the
    database, spikes keep their value within one bucket of their step; NaN keeps its step."""
    spike, bad = steps // 2 + 3, steps * 4 // 5
    loss = {s: 1.0 for s in range(1, steps + 1)}
    loss[spike] = 99.0
    loss[bad] = float("nan")
    run = make_run(db, name=f"long{steps}", steps=steps, series={"loss": loss})

    body = client.get(f"/api/compare?run_ids={run.id}&max_points=100").json()

    points = body["metrics"][str(run.id)]["loss"]
    assert len(points) <= 100
    bucket = math.ceil(steps / ((100 - 2) // 2))
    spikes = [step for step, value in points if value == 99.0]
    assert spikes and all(abs(step - spike) < bucket for step in spikes)
    if steps == 300:
        assert spikes == [spike]
    assert [bad, None] in points  # NaN as a gap: JSON has no NaN
    assert points[0] == [1, 1.0] and points[-1] == [steps, 1.0]
    assert [s for s, _ in points] == sorted({s for s, _ in points})
    flags = body["health"][str(run.id)]
    assert flags[0]["code"] == "nan_loss" and flags[0]["step"] == bad
    assert body["runs"][0]["summary"]["loss"]["final"] == [steps, 1.0]


def test_names_limit_the_curves_but_not_the_metric_list(client, db):
    run = make_run(db, name="names", series={"loss": {1: 1.0}, "reward": {1: 0.5},
                                             "kl": {1: 0.1}})
    body = client.get(f"/api/compare?run_ids={run.id}&names=reward,unknown").json()
    assert list(body["metrics"][str(run.id)]) == ["reward"]
    assert body["metric_names"] == ["kl", "loss", "reward"]


def test_health_flags_on_compare_and_run_endpoint(client, db):
    run = make_run(db, name="kl", strategy="grpo",
                   series={"kl": {s: 5.0 for s in range(1, 6)}, "reward": {1: 0.1}})
    body = client.get(f"/api/compare?run_ids={run.id}").json()
    assert [f["code"] for f in body["health"][str(run.id)]] == ["kl_divergence"]
    assert client.get(f"/api/compare/health?run_ids={run.id}").json() == body["health"]
    assert "health" not in client.get(f"/api/compare?run_ids={run.id}&health=false").json()
    flags = client.get(f"/api/runs/{run.id}/health").json()
    assert [f["code"] for f in flags] == ["kl_divergence"]
    assert flags[0]["explanation"] and flags[0]["step"] == 5
    assert client.get("/api/runs/999999/health").status_code == 404


def test_a_finished_runs_health_is_kept_and_read_without_its_series(client, db):
    from sqlalchemy import event

    from app.domain import run_health

    run = make_run(db, name="kept", strategy="grpo",
                   series={"kl": {s: 5.0 for s in range(1, 6)}, "reward": {1: 0.1}})
    run_health.record(db, run_id=run.id)  # as the worker does when the run ends
    db.refresh(run)
    assert [f["code"] for f in run.health_flags["flags"]] == ["kl_divergence"]

    engine = db.get_bind()
    seen: list[str] = []

    def watch(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    try:
        body = client.get(f"/api/compare/health?run_ids={run.id}").json()
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    assert [f["code"] for f in body[str(run.id)]] == ["kl_divergence"]
    assert not [s for s in seen if "FROM metric" in s], seen  # stored, not recomputed

    # Resumed and finished again with a calmer KL: the stored flags of the old finish are stale.
    metrics.log_batch(db, run_id=run.id, rows=[(s, "kl", 0.1, utcnow()) for s in range(6, 12)])
    run.finished_at = utcnow()
    db.commit()
    assert client.get(f"/api/runs/{run.id}/health").json() == []
    db.refresh(run)
    assert run.health_flags["flags"] == [] and run_health.stored(run) == []
    assert client.get(f"/api/compare/health?run_ids={run.id}").json() == {str(run.id): []}


def test_samples_side_by_side_at_the_nearest_step(client, db):
    a = make_run(db, name="ga", strategy="grpo")
    b = make_run(db, name="gb", strategy="grpo")
    for run, step in ((a, 10), (a, 20), (b, 12)):
        db.add(Sample(run_id=run.id, step=step, prompt="2+2?", completion=f"{run.name}@{step}",
                      rewards={"exact_answer": 1.0, "broken": math.nan}))
    db.commit()

    body = client.get(f"/api/compare/samples?run_ids={a.id},{b.id}&step=11").json()

    assert body["steps"] == [10, 12, 20]
    assert body["shown"] == {str(a.id): 10, str(b.id): 12}
    assert body["prompts"][0]["prompt"] == "2+2?"
    assert body["prompts"][0]["runs"][str(a.id)][0]["completion"] == "ga@10"
    assert body["prompts"][0]["runs"][str(b.id)][0]["rewards"] == {"exact_answer": 1.0,
                                                                   "broken": None}
    latest = client.get(f"/api/compare?run_ids={a.id},{b.id}").json()["samples"]
    assert latest["step"] == 20 and latest["shown"] == {str(a.id): 20, str(b.id): 12}


@pytest.mark.parametrize("query", ["run_ids=", "run_ids=1,x", "run_ids=1;2", "run_ids=-1",
                                   "run_ids=" + ",".join(str(i) for i in range(1, 22))])
def test_malformed_run_lists_are_422(client, query):
    response = client.get(f"/api/compare?{query}")
    assert response.status_code == 422
    assert "run" in response.json()["detail"]


def test_too_many_runs_says_the_cap(client):
    detail = client.get("/api/compare?run_ids=" + ",".join(map(str, range(1, 30)))).json()
    assert "at most 20 runs" in detail["detail"]


def test_missing_run_ids_is_422_and_unknown_runs_are_404(client, db):
    assert client.get("/api/compare").status_code == 422
    run = make_run(db, name="known")
    response = client.get(f"/api/compare?run_ids={run.id},999998,999999")
    assert response.status_code == 404
    assert response.json()["detail"] == "runs 999998, 999999 not found"
    for path in ("export.csv", "export.json", "samples", "health"):
        assert client.get(f"/api/compare/{path}?run_ids=999999").status_code == 404


def test_csv_export_is_full_resolution_long_format(client, db):
    loss = {s: s / 10 for s in range(1, 3001)}
    loss[7] = float("inf")
    run = make_run(db, name="csv,run", steps=3000, series={"loss": loss, "kl": {5: 0.25}})

    response = client.get(f"/api/compare/export.csv?run_ids={run.id}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["run_id", "run_name", "metric", "step", "value"]
    assert len(rows) == 1 + 3000 + 1
    assert rows[1] == [str(run.id), "csv,run", "kl", "5", "0.25"]
    assert rows[2][2:] == ["loss", "1", "0.1"]
    assert rows[8][2:] == ["loss", "7", "inf"]
    assert float(rows[-1][4]) == 300.0


def test_json_export_matches_the_stored_values(client, db):
    a = make_run(db, name="ja", series={"loss": {1: 0.5, 2: float("nan")}, "kl": {1: 0.1}})
    b = make_run(db, name="jb", series={})

    body = client.get(f"/api/compare/export.json?run_ids={a.id},{b.id}&names=loss").json()

    assert body["runs"] == [{"id": a.id, "name": "ja"}, {"id": b.id, "name": "jb"}]
    assert body["metrics"] == {str(a.id): {"loss": [[1, 0.5], [2, None]]}, str(b.id): {}}


def test_running_runs_are_not_cached(client, db):
    run = make_run(db, name="live", status=RunStatus.running, series={"loss": {1: 1.0}})
    assert len(client.get(f"/api/compare?run_ids={run.id}").json()["metrics"][str(run.id)]
               ["loss"]) == 1
    metrics.log_batch(db, run_id=run.id, rows=[(2, "loss", 0.5, utcnow())])
    db.commit()
    body = client.get(f"/api/compare?run_ids={run.id}").json()
    assert body["metrics"][str(run.id)]["loss"] == [[1, 1.0], [2, 0.5]]
    assert body["runs"][0]["status"] == "running"


def test_compare_page_states(client, db):
    empty = client.get("/compare")
    assert empty.status_code == 200 and "No runs selected" in empty.text
    assert 'href="/runs"' in empty.text
    assert client.get("/compare?runs=1,zz").status_code == 422
    missing = client.get("/compare?runs=999999")
    assert missing.status_code == 404 and "run 999999 not found" in missing.text
    run = make_run(db, name="page")
    page = client.get(f"/compare?runs={run.id}")
    assert page.status_code == 200
    assert f'data-run-ids="{run.id}"' in page.text
    assert f"/api/compare/export.csv?run_ids={run.id}" in page.text


def test_runs_page_filters(client, db):
    done = make_run(db, name="filter-done", strategy="dpo")
    live = make_run(db, name="filter-live", status=RunStatus.running)
    page = client.get("/runs?status=running").text
    assert ">filter-live<" in page and ">filter-done<" not in page
    page = client.get(f"/runs?strategy=dpo&dataset_id={done.dataset_id}").text
    assert ">filter-done<" in page and ">filter-live<" not in page
    assert 'id="compare-selected"' in page
    # Unknown values show every run instead of failing.
    page = client.get("/runs?status=bogus&dataset_id=x").text
    assert ">filter-done<" in page and ">filter-live<" in page
    assert live.id != done.id
