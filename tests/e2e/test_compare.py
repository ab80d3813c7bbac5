"""The compare page in a real browser: two finished runs written into the live server's
database, metric and smoothing switched, "only differences" toggled, chart data read back."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from app.core.db import make_engine
from app.domain import metrics
from app.domain.models import Checkpoint, Evaluation, JobStatus, Run, RunStatus, Sample, utcnow
from tests.factories import add_dataset

pytestmark = pytest.mark.browser

TRACES = """id => Array.from(document.querySelectorAll('#charts .plot')).map(div => ({
  metric: div.closest('.compare-chart').querySelector('.chart-metric').value,
  traces: (div.data || []).map(t => ({name: t.name, color: t.line.color, y: Array.from(t.y)}))}))"""


def add_finished_runs(server) -> list[int]:
    """Two GRPO-like runs that differ in learning rate, with curves, a checkpoint, samples."""
    engine = make_engine(server.env.get("TUNEDECK_DATABASE_URL")
                         or f"sqlite:///{server.data_dir / 'tunedeck.db'}")
    ids = []
    with Session(engine) as session:
        dataset = add_dataset(session, name="arithmetic", num_rows=8)
        start = utcnow() - timedelta(hours=2)
        for i, lr in enumerate((1e-4, 5e-4)):
            run = Run(name=f"grpo-lr{lr:g}", strategy="grpo", base_model="tiny-random-llama",
                      dataset_id=dataset.id, status=RunStatus.completed, step=60, max_steps=60,
                      hyperparameters={"learning_rate": lr, "lora_r": 8, "max_steps": 60},
                      reward_functions=[{"name": "exact_answer", "weight": 1.0}],
                      started_at=start, finished_at=start + timedelta(minutes=10))
            session.add(run)
            session.flush()
            rows = []
            for step in range(1, 61):
                wall = start + timedelta(seconds=10 * step)
                rows += [(step, "loss", 2.0 * math.exp(-step / (20 + 20 * i)) + 0.05 * (step % 3),
                          wall),
                         (step, "reward", 0.2 + 0.6 * step / 60 * (1 + i) / 2, wall),
                         (step, "kl", 0.01 * step * (1 + 3 * i), wall),
                         (step, "epoch", step / 30, wall)]
            metrics.log_batch(session, run_id=run.id, rows=rows)
            session.add(Checkpoint(run_id=run.id, step=60, storage_key=f"none-{run.id}",
                                   metric_name="reward", metric_value=0.5, metric_mode="higher",
                                   is_best=True))
            for step in (20, 40, 60):
                session.add(Sample(run_id=run.id, step=step, prompt="What is 2+3?",
                                   completion=f"run {i} says {4 + i} at step {step}",
                                   rewards={"exact_answer": float(i)}))
            ids.append(run.id)
        session.commit()
    engine.dispose()
    return ids


def test_compare_two_finished_runs(live_server, page, screenshot):
    first, second = add_finished_runs(live_server)
    page.goto(f"{live_server.url}/compare?runs={first},{second}")

    summary = page.locator("#summary-table tbody tr")
    expect(summary).to_have_count(2)
    expect(summary.first).to_contain_text("grpo-lr0.0001")
    expect(summary.first.locator("a[download]")).to_have_attribute(
        "href", f"/api/runs/{first}/checkpoints/60/download")
    page.wait_for_function("() => document.querySelectorAll('#charts .plot').length === 2 && "
                           "Array.from(document.querySelectorAll('#charts .plot'))"
                           ".every(d => d.data && d.data.length === 2)")
    charts = page.evaluate(TRACES)
    assert [c["metric"] for c in charts] == ["loss", "reward"]
    # One colour per run, the same on every chart.
    colours = [[t["color"] for t in c["traces"]] for c in charts]
    assert colours[0] == colours[1] and len(set(colours[0])) == 2
    raw_loss = charts[0]["traces"][0]["y"]

    # Switch the first chart to kl: both runs' kl curves.
    page.locator("#charts .chart-metric").first.select_option("kl")
    page.wait_for_function("() => { const d = document.querySelector('#charts .plot');"
                           " return d.data && d.data.length === 2"
                           " && d.layout.meta === 'kl'; }")
    kl = page.evaluate(TRACES)[0]
    assert kl["metric"] == "kl"
    assert kl["traces"][1]["y"][-1] == pytest.approx(0.01 * 60 * 4)

    # Smoothing changes the drawn values (EMA), not the number of points.
    page.locator("#charts .chart-metric").first.select_option("loss")
    page.wait_for_function("() => document.querySelector('#charts .plot').layout.meta"
                           " === 'loss'")
    page.locator("#smoothing").fill("0.9")
    page.wait_for_function(f"() => document.querySelector('#charts .plot').data[0].y[5]"
                           f" !== {raw_loss[5]}")
    smoothed = page.evaluate(TRACES)[0]["traces"][0]["y"]
    assert len(smoothed) == len(raw_loss) and smoothed[0] == pytest.approx(raw_loss[0])
    assert max(smoothed) - min(smoothed) < max(raw_loss) - min(raw_loss)

    # Add a third chart, then plot by epoch.
    page.locator("#add-metric").select_option("kl")
    page.click("#add-chart")
    page.wait_for_function("() => document.querySelectorAll('#charts .plot').length === 3 && "
                           "document.querySelectorAll('#charts .plot')[2].data")
    page.locator("#x-axis").select_option("epoch")
    page.wait_for_function("() => document.querySelector('#charts .plot').layout.xaxis.title.text"
                           " === 'epoch'")
    assert page.evaluate("() => document.querySelector('#charts .plot').data[0].x.at(-1)") == 2

    # Config diff: only the learning rate differs; unticking shows the shared settings too.
    diff_rows = page.locator("#diff-table tbody tr:visible")
    expect(diff_rows).to_have_count(1)
    expect(diff_rows.first).to_contain_text("learning_rate")
    page.uncheck("#only-differences")
    expect(page.locator("#diff-table tbody tr:visible", has_text="lora_r")).to_have_count(1)
    assert diff_rows.count() > 5
    page.check("#only-differences")

    expect(page.locator("#health-list li[data-code='kl_divergence']")).to_have_count(1)
    expect(page.locator("#samples .sample-cell")).to_have_count(2)
    expect(page.locator("#samples")).to_contain_text("run 1 says 5 at step 60")
    page.locator("#sample-step").fill("0")
    expect(page.locator("#samples")).to_contain_text("run 0 says 4 at step 20")

    page.locator("#x-axis").select_option("step")
    page.locator("#smoothing").fill("0.6")
    screenshot("compare")

    # The run page lists the same flag.
    page.goto(f"{live_server.url}/runs/{second}")
    expect(page.locator("#health-flags li[data-code='kl_divergence']")).to_contain_text("KL")

    csv = page.request.get(f"{live_server.url}/api/compare/export.csv?run_ids={first},{second}")
    assert csv.ok and len(csv.text().strip().splitlines()) == 1 + 2 * 4 * 60


def test_curves_of_a_running_run_extend_without_reload(live_server, page):
    engine = make_engine(f"sqlite:///{live_server.data_dir / 'tunedeck.db'}")
    first, _ = add_finished_runs(live_server)
    with Session(engine) as session:
        run = Run(name="still-training", strategy="grpo", base_model="tiny-random-llama",
                  dataset_id=session.get(Run, first).dataset_id, status=RunStatus.running,
                  step=10, max_steps=20, started_at=utcnow())
        session.add(run)
        session.flush()
        metrics.log_batch(session, run_id=run.id,
                          rows=[(s, "loss", 1.0 / s, utcnow()) for s in range(1, 11)])
        session.commit()
        running = run.id
    page.goto(f"{live_server.url}/compare?runs={first},{running}")
    expect(page.locator("#live-status")).to_contain_text("1 run(s) still training")
    points = ("() => { const d = document.querySelector('#charts .plot');"
              " return d && d.data && d.data.length === 2 ? d.data[1].x.length : 0; }")
    page.wait_for_function(f"({points})() === 10")

    with Session(engine) as session:
        metrics.log_batch(session, run_id=running,
                          rows=[(s, "loss", 1.0 / s, utcnow()) for s in range(11, 21)])
        finished = session.get(Run, running)
        finished.status, finished.step, finished.finished_at = RunStatus.completed, 20, utcnow()
        session.commit()
    engine.dispose()
    page.wait_for_function(f"({points})() === 20", timeout=15_000)  # polled every 3 s
    expect(page.locator("#live-status")).to_have_text("")
    expect(page.locator(f'#summary-table tr[data-run-id="{running}"] .badge')).to_have_text(
        "completed")


def test_runs_list_filters_and_compare_selected(live_server, page):
    first, second = add_finished_runs(live_server)
    page.goto(f"{live_server.url}/runs")
    page.locator("#run-filters select[name=strategy]").select_option("grpo")
    expect(page).to_have_url(f"{live_server.url}/runs?strategy=grpo")
    page.wait_for_timeout(2500)  # one poll: the table keeps the filter
    strategies = page.locator("#runs-table tbody [data-field=strategy]").all_inner_texts()
    assert strategies and set(strategies) == {"GRPO"}
    button = page.locator("#compare-selected")
    expect(button).to_be_disabled()
    page.locator(f'#runs-table tr[data-run-id="{second}"] input.run-select').check()
    page.locator(f'#runs-table tr[data-run-id="{first}"] input.run-select').check()
    expect(button).to_have_text("Compare selected (2)")
    button.click()
    expect(page).to_have_url(f"{live_server.url}/compare?runs={second},{first}")
    # A loaded machine: Plotly (3 MB) loads before the page's modules run.
    expect(page.locator("#summary-table tbody tr")).to_have_count(2, timeout=20_000)


def test_compare_shows_each_runs_latest_completed_evaluation(live_server, page):
    first, second = add_finished_runs(live_server)
    page.goto(f"{live_server.url}/compare?runs={first},{second}")
    expect(page.locator("#evaluations-empty")).to_contain_text("No evaluations yet")

    engine = make_engine(server_db(live_server))
    score = {"name": "exact_match", "label": "Exact <b>match</b>", "higher_is_better": True,
             "n": 8, "base_mean": 0.25, "tuned_mean": 0.75, "diff": 0.5, "ci_low": 0.25,
             "ci_high": 0.75, "verdict": "better", "summary": "tuned is better by 0.5 ± 0.25"}
    with Session(engine) as session:
        run = session.get(Run, first)
        evaluations = [Evaluation(run_id=first, checkpoint_step=60, base_model=run.base_model,
                                  strategy="grpo", dataset_id=run.dataset_id, split="eval",
                                  status=status, results=results)
                       for status, results in (
                           (JobStatus.completed, {"scores": [score | {"tuned_mean": 0.3}]}),
                           (JobStatus.completed, {"scores": [score], "primary": "exact_match",
                                                  "examples": 8}),
                           (JobStatus.running, {}))]
        session.add_all(evaluations)
        session.commit()
        latest = evaluations[1].id
    engine.dispose()

    page.reload()
    header = page.locator(f"#evaluations-table thead th[data-run-id='{first}']")
    expect(header.locator("a[data-evaluation-id]")).to_have_count(1)  # the latest completed one
    expect(header.locator("a")).to_have_attribute("href", f"/evaluations/{latest}")
    row = page.locator("#evaluations-table tr[data-score='exact_match']")
    expect(row.locator("th")).to_have_text("Exact <b>match</b>")  # shown as text, not markup
    cell = row.locator(f"td[data-run-id='{first}']")
    expect(cell).to_contain_text("0.25 → 0.75")
    expect(cell).to_contain_text("+0.5 [0.25, 0.75]")
    expect(cell).to_contain_text("better")
    expect(page.locator(f"#evaluations-table thead th[data-run-id='{second}']")).to_contain_text(
        "No completed evaluation")
    expect(row.locator(f"td[data-run-id='{second}']")).to_have_text("—")
    expect(page.locator("#evaluations-empty")).to_be_hidden()


def server_db(server) -> str:
    return (server.env.get("TUNEDECK_DATABASE_URL")
            or f"sqlite:///{server.data_dir / 'tunedeck.db'}")


def test_compare_without_runs_explains_how_to_pick_them(live_server, page):
    page.goto(f"{live_server.url}/compare")
    expect(page.locator("#compare-empty")).to_contain_text("Compare selected")
    page.locator("#compare-empty a", has_text="Choose runs").click()
    expect(page).to_have_url(f"{live_server.url}/runs")
