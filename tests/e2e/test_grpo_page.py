"""The GRPO run page in a 1280×800 browser: curves first and the samples after them in a collapsed,
paged section; legends under the plot (never eating it); one reward line when there is one reward
function; metric titles in words with units; whole-step ticks and one early point drawn where it
is; resume markers; the run's own figures and a smoothing control."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from app.core.db import make_engine
from app.domain import metrics
from app.domain.models import Run, RunStatus, Sample, utcnow
from tests.factories import add_dataset

pytestmark = pytest.mark.browser

LENGTHS = ("mean_length", "min_length", "max_length", "mean_terminated_length",
           "min_terminated_length", "max_terminated_length")


def engine_of(server):
    return make_engine(server.env.get("TUNEDECK_DATABASE_URL")
                       or f"sqlite:///{server.data_dir / 'tunedeck.db'}")


def add_grpo_run(server) -> tuple[int, int]:
    """A resumed 30-step GRPO run with one reward function and 30 samples, and a run that has
    logged only its first step."""
    engine = engine_of(server)
    with Session(engine) as session:
        dataset = add_dataset(session, name="arithmetic", num_rows=8)
        start = utcnow() - timedelta(hours=1)
        run = Run(name="grpo-one-reward", strategy="grpo", base_model="tiny-random-llama",
                  dataset_id=dataset.id, status=RunStatus.completed, step=30, max_steps=30,
                  hyperparameters={"learning_rate": 1e-4, "per_device_train_batch_size": 4,
                                   "gradient_accumulation_steps": 1, "num_generations": 4},
                  reward_functions=[{"name": "exact_answer", "weight": 1.0}],
                  resume_points=[{"step": 10, "at": start.isoformat()}], training_seconds=130.0,
                  started_at=start, finished_at=start + timedelta(minutes=5))
        session.add(run)
        session.flush()
        rows, t = [], 0.0
        for step in range(1, 31):
            t += 30.0 if step == 2 else 3.0
            wall = start + timedelta(seconds=t)
            reward = 0.2 + 0.02 * step + 0.1 * math.sin(step)
            rows += [(step, "loss", 0.5 + 0.3 * math.sin(step), wall),
                     (step, "reward", reward, wall),
                     (step, "rewards/exact_answer/mean", reward, wall),
                     (step, "reward_std", 0.3, wall), (step, "rewards/exact_answer/std", 0.3, wall),
                     (step, "kl", 0.001 * step, wall), (step, "step_time", 3.0, wall),
                     (step, "learning_rate", 1e-4 * (1 - step / 30), wall),
                     (step, "num_tokens", 120.0 * step, wall)]
            rows += [(step, f"completions/{name}", 20.0 + i + step, wall)
                     for i, name in enumerate(LENGTHS)]
        metrics.log_batch(session, run_id=run.id, rows=rows)
        for i in range(30):
            session.add(Sample(run_id=run.id, step=i + 1, prompt=f"What is {i}+1?",
                               completion=f"<answer>{i + 1}</answer>",
                               rewards={"exact_answer": 1.0}))
        early = Run(name="grpo-first-step", strategy="grpo", base_model="tiny-random-llama",
                    dataset_id=dataset.id, status=RunStatus.running, step=1, max_steps=60,
                    hyperparameters={"learning_rate": 2e-4}, started_at=utcnow())
        session.add(early)
        session.flush()
        metrics.log_batch(session, run_id=early.id,
                          rows=[(1, "learning_rate", 2e-4, utcnow()), (1, "loss", 1.5, utcnow())])
        session.commit()
        ids = run.id, early.id
    engine.dispose()
    return ids


CHARTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
  id: d.id, meta: d.layout.meta, traces: d.data.map(t => t.name),
  y: d.data.map(t => Array.from(t.y)),
  ytitle: d.layout.yaxis.title && d.layout.yaxis.title.text,
  plotHeight: d._fullLayout._size.h, height: d.getBoundingClientRect().height,
  shapes: (d.layout.shapes || []).map(s => s.x0),
  xticks: (d._fullLayout.xaxis._vals || []).map(v => v.x), yrange: d._fullLayout.yaxis.range,
  legend: d.nextElementSibling && d.nextElementSibling.classList.contains('chart-legend')
    ? d.nextElementSibling.querySelectorAll('li').length : 0}))"""


def charts_by_meta(page) -> dict:
    return {c["meta"]: c for c in page.evaluate(CHARTS)}


def test_grpo_run_page_layout(live_server, page, screenshot):
    run_id, early_id = add_grpo_run(live_server)
    page.goto(f"{live_server.url}/runs/{run_id}")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 7")
    charts = charts_by_meta(page)

    # Curves first: every chart sits above the samples, which start collapsed.
    samples = page.locator("#samples-section")
    samples_top = samples.bounding_box()["y"]
    for chart in ("#chart-reward", "#chart-loss", "#charts-extra"):
        assert page.locator(chart).bounding_box()["y"] < samples_top, chart
    assert page.locator("#chart-reward").bounding_box()["y"] < 800  # on the first screen
    assert samples.evaluate("d => !d.open")
    expect(page.locator("#samples .sample").first).to_be_hidden()
    expect(page.locator("#samples-count")).to_have_text("30")

    # One reward function: one reward line (and one spread line), not the same one twice.
    assert charts["reward"]["traces"] == ["reward"]
    assert charts["reward std"]["traces"] == ["reward_std"]

    # Titles in words with units, on the chart and its y axis.
    titles = page.locator("#charts-extra h3").all_inner_texts()
    assert "KL divergence" in titles and "Step time (s)" in titles
    assert "Completion length (tokens)" in titles and "Kl" not in titles
    assert charts["kl"]["ytitle"] == "KL divergence"
    assert charts["step_time"]["ytitle"] == "Step time (s)"
    assert charts["loss"]["ytitle"] == "Loss"

    # Six completion-length lines: the legend sits under the chart, the plot keeps its height.
    lengths = charts["completion length"]
    assert len(lengths["traces"]) == 6 and lengths["legend"] == 6
    assert lengths["plotHeight"] > 0.6 * lengths["height"]

    # Whole steps on x; the resume at step 10 marked on every chart.
    for meta, chart in charts.items():
        assert all(float(x).is_integer() for x in chart["xticks"]), meta
        assert 10 in chart["shapes"], meta

    # The run's own figures: training time, s/step without the slow second step, tokens/s.
    figures = page.locator("#run-figures")
    expect(figures.locator("[data-figure=training_seconds] dd")).to_contain_text("2 min 10 s")
    expect(figures.locator("[data-figure=seconds_per_step] dd")).to_have_text("3.00 s")
    expect(figures.locator("[data-figure=tokens_per_second] dd")).to_contain_text("40")
    expect(figures.locator("[data-figure=samples_seen] dd")).to_contain_text("120 completions")

    # Smoothing: the loss curve's drawn values change, the point count does not.
    raw = charts["loss"]["y"][0]
    page.locator("#run-smoothing").fill("0.9")
    page.wait_for_function(f"() => document.getElementById('chart-loss').data[0].y[5] !== {raw[5]}")
    smoothed = page.evaluate("() => Array.from(document.getElementById('chart-loss').data[0].y)")
    assert len(smoothed) == len(raw) and max(smoothed) - min(smoothed) < max(raw) - min(raw)
    page.locator("#run-smoothing").fill("0")
    screenshot("grpo-run")

    # Samples: open the section, six to a page, older pages on.
    page.locator("#samples-section > summary").click()
    expect(page.locator("#samples .sample")).to_have_count(6)
    expect(page.locator("#samples .sample").first.locator("[data-field=step]")).to_have_text("30")
    expect(page.locator("#samples-page")).to_have_text("page 1 of 5")
    page.click("#samples-older")
    expect(page.locator("#samples-page")).to_have_text("page 2 of 5")
    expect(page.locator("#samples .sample").first.locator("[data-field=step]")).to_have_text("24")
    expect(page.locator("#samples-newer")).to_be_enabled()

    # One early point: drawn at its value, on whole-step ticks.
    page.goto(f"{live_server.url}/runs/{early_id}")
    page.wait_for_function("() => { const d = document.getElementById('chart-learning_rate');"
                           " return d && d.data && d.data.length === 1; }")
    lr = charts_by_meta(page)["learning_rate"]
    low, high = lr["yrange"]
    assert 0 <= low < 2e-4 < high < 1e-3
    assert lr["xticks"] and all(float(x).is_integer() for x in lr["xticks"])
