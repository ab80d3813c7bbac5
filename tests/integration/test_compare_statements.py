"""Comparing runs costs the same number of SQL statements for 2 runs as for 8, with the series
cache cold (first open, or live runs) and warm (finished runs opened again): best checkpoints,
datasets, metric names, series sizes, short series, x-axes and sampled completions are each read
for every run at once. Only series long enough to be bucketed by the database
(compare_series.BUCKET_IN_SQL_FACTOR x max_points rows) are read run by run; these are short."""

from __future__ import annotations

import pytest

from app.domain.models import Checkpoint, RunStatus, Sample
from app.services.compare import series as compare_series
from tests.integration.test_compare_api import db, make_run  # noqa: F401
from tests.integration.test_runs_list import StatementCounter

URLS = ("/api/compare?run_ids={}", "/api/compare?run_ids={}&names=loss&health=false",
        "/api/compare/health?run_ids={}", "/api/compare/samples?run_ids={}")


@pytest.fixture
def run_ids(db) -> list[int]:  # noqa: F811
    ids = []
    for i in range(8):
        status = RunStatus.running if i % 2 else RunStatus.completed
        run = make_run(db, name=f"count-{i}", status=status, strategy="grpo", steps=12,
                       series={"loss": {s: 1 / s for s in range(1, 13)},
                               "reward": {s: s / 12 for s in range(1, 13)},
                               "epoch": {s: s / 12 for s in range(1, 13)}})
        for step in (6, 12):
            db.add(Checkpoint(run_id=run.id, step=step, storage_key=f"ck-{run.id}-{step}",
                              metric_name="reward", metric_value=step / 12,
                              metric_mode="higher", is_best=step == 6 + 6 * (i % 2)))
            db.add(Sample(run_id=run.id, step=step, prompt=f"p{step}",
                          completion=f"run {run.id} at {step}", rewards={"r": 1.0}))
        db.commit()
        ids.append(run.id)
    return ids


def statements(client, url: str, *, cold: bool) -> tuple[int, dict]:
    if cold:
        compare_series.cache.clear()
    with StatementCounter() as counter:
        response = client.get(url)
    assert response.status_code == 200, response.text
    return counter.count, response.json()


@pytest.mark.parametrize("url", URLS)
def test_comparing_8_runs_costs_the_statements_of_2(client, run_ids, url):
    two, eight = ",".join(map(str, run_ids[:2])), ",".join(map(str, run_ids))
    for cold in (True, False):
        few, _ = statements(client, url.format(two), cold=cold)
        many, body = statements(client, url.format(eight), cold=cold)
        assert many == few, (url, "cold" if cold else "warm")

    # What was read at once is each run's own.
    if "runs" in body:
        best = [r["best_checkpoint"]["step"] for r in body["runs"]]
        assert best == [6, 12] * 4
        assert [r["dataset_name"] for r in body["runs"]] == [f"data-count-{i}" for i in range(8)]
        assert all(body["x"][str(i)]["elapsed"][-1] == [12, 11.0] for i in run_ids)
        assert all(len(body["metrics"][str(i)]["loss"]) == 12 for i in run_ids)
    if "prompts" in body:
        assert body["step"] == 12 and set(body["shown"].values()) == {12}
        (prompt,) = body["prompts"]
        assert prompt["runs"] == {str(i): [{"completion": f"run {i} at 12", "rewards": {"r": 1.0}}]
                                  for i in run_ids}
