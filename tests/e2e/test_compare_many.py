"""The compare page at 4 and 10 runs in a 1280×800 window: nothing pushes the page wider than the
window, tables scroll inside their card with the run/setting column fixed, long run names are cut
with the full name on hover, evaluations are one table (rows = scores, columns = runs) whose cells
never overlap, and unbroken tokens in sampled completions wrap inside their cell."""

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

LONG_TOKEN = "x" * 40 + "".join(f"{i}+{i}={2 * i};" for i in range(60))  # ~500 chars, no space


def add_runs(server, count: int) -> list[int]:
    """``count`` finished GRPO runs with long names, differing settings, an evaluation each and
    samples whose completions hold one long unbroken token."""
    engine = make_engine(server.env.get("TUNEDECK_DATABASE_URL")
                         or f"sqlite:///{server.data_dir / 'tunedeck.db'}")
    ids = []
    with Session(engine) as session:
        dataset = add_dataset(session, name="arithmetic-with-a-long-dataset-name", num_rows=8)
        start = utcnow() - timedelta(hours=2)
        for i in range(count):
            lr = 1e-4 * (i + 1)
            run = Run(name=f"grpo-arithmetic-sweep-learning-rate-{lr:g}-lora-rank-{8 * (i + 1)}",
                      strategy="grpo", base_model="tiny-random-llama", dataset_id=dataset.id,
                      status=RunStatus.completed, step=30, max_steps=30,
                      hyperparameters={"learning_rate": lr, "lora_r": 8 * (i + 1),
                                       "lora_alpha": 16 * (i + 1), "max_steps": 30,
                                       "system_prompt": "Answer with <answer>…</answer> " * 3},
                      reward_functions=[{"name": "exact_answer", "weight": 1.0},
                                        {"name": "format_tags", "weight": 0.5 + i / 10}],
                      started_at=start, finished_at=start + timedelta(minutes=10 + i))
            session.add(run)
            session.flush()
            rows = []
            for step in range(1, 31):
                wall = start + timedelta(seconds=10 * step)
                rows += [(step, "loss", 2.0 * math.exp(-step / (10 + i)), wall),
                         (step, "reward", 0.2 + 0.02 * step * (1 + i / 10), wall),
                         (step, "completions/mean_length", 40.0 + step, wall)]
            metrics.log_batch(session, run_id=run.id, rows=rows)
            session.add(Checkpoint(run_id=run.id, step=30, storage_key=f"none-{run.id}",
                                   metric_name="reward", metric_value=0.5, metric_mode="higher",
                                   is_best=True))
            for step in (10, 30):
                session.add(Sample(run_id=run.id, step=step, prompt="What is 2+3?",
                                   completion=f"run {i}: {LONG_TOKEN}",
                                   rewards={"exact_answer": float(i % 2)}))
            scores = [{"name": name, "label": label, "higher_is_better": True, "n": 8,
                       "base_mean": 0.25, "tuned_mean": 0.25 + 0.05 * i, "diff": 0.05 * i,
                       "ci_low": 0.05 * i - 0.1234567, "ci_high": 0.05 * i + 0.1234567,
                       "verdict": "better" if i > 2 else "no clear difference"}
                      for name, label in (("exact_match", "Exact match"),
                                          ("format_tags", "Format tags present"),
                                          ("mean_reward", "Mean reward"))]
            session.add(Evaluation(run_id=run.id, checkpoint_step=30, base_model=run.base_model,
                                   strategy="grpo", dataset_id=dataset.id, split="eval",
                                   status=JobStatus.completed,
                                   results={"scores": scores, "primary": "exact_match",
                                            "examples": 8}))
            ids.append(run.id)
        session.commit()
    engine.dispose()
    return ids


NO_OVERLAP = """() => {
  const cells = Array.from(document.querySelectorAll("#evaluations-table :is(td, th)"))
    .map(c => c.getBoundingClientRect());
  for (let i = 0; i < cells.length; i++) for (let j = i + 1; j < cells.length; j++) {
    const a = cells[i], b = cells[j];
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 1 && h > 1) return false;
  }
  return cells.length > 0;
}"""

# Each cell's text fits its own box (no number spilling into the next column).
TEXT_FITS = """() => Array.from(document.querySelectorAll('#evaluations-table td'))
  .every(c => c.scrollWidth <= c.clientWidth + 1)"""


@pytest.mark.parametrize("count", [4, 10])
def test_compare_stays_legible_with_many_runs(live_server, page, screenshot, count):
    ids = add_runs(live_server, count)
    page.goto(f"{live_server.url}/compare?runs={','.join(map(str, ids))}")
    expect(page.locator("#summary-table tbody tr")).to_have_count(count)
    expect(page.locator("#evaluations-table tbody tr")).to_have_count(3)
    expect(page.locator("#samples .sample-cell")).to_have_count(count)
    page.wait_for_function("() => document.querySelectorAll('#charts .plot').length >= 2 && "
                           "Array.from(document.querySelectorAll('#charts .plot'))"
                           f".every(d => d.data && d.data.length === {count})")

    # The page itself never scrolls sideways.
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px window"

    # Tables scroll inside their card, with the first column fixed.
    for table in ("#summary-table", "#diff-table", "#evaluations-table"):
        first = page.locator(f"{table} tbody tr").first.locator("td, th").first
        assert first.evaluate("c => getComputedStyle(c).position") == "sticky", table
        wrap = page.locator(table).locator("xpath=..")
        assert wrap.evaluate("w => ['auto', 'scroll'].includes(getComputedStyle(w).overflowX)")
    if count == 10:
        wrap = page.locator("#diff-table").locator("xpath=..")
        assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")  # 10 runs: it does scroll
        wrap.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
        setting = page.locator("#diff-table tbody tr:visible").first.locator("th").first
        box, wrap_box = setting.bounding_box(), wrap.bounding_box()
        assert box["x"] == pytest.approx(wrap_box["x"], abs=2)  # still on screen at the left

    # Long names: one line, cut with an ellipsis, the full name on hover.
    name = page.locator("#summary-table tbody tr").first.locator(".run-name")
    full = f"grpo-arithmetic-sweep-learning-rate-{1e-4:g}-lora-rank-8"
    expect(name).to_have_attribute("title", full)
    assert name.evaluate("n => getComputedStyle(n).textOverflow") == "ellipsis"
    assert name.evaluate("n => n.getBoundingClientRect().height") < 24  # a single line
    header = page.locator("#diff-table thead th").nth(1).locator(".run-name")
    expect(header).to_have_attribute("title", full)
    assert header.evaluate("n => n.getBoundingClientRect().height") < 24

    # Evaluations: one table, one row per score, one column per run; no cell overlaps another.
    rows = page.locator("#evaluations-table tbody tr")
    assert rows.nth(0).get_attribute("data-score") == "exact_match"
    assert rows.nth(0).locator("td").count() == count
    expect(rows.nth(0).locator("td").nth(count - 1)).to_contain_text(
        f"{0.25:g} → {0.25 + 0.05 * (count - 1):.2f}".rstrip("0"))
    expect(page.locator("#evaluations-table thead th").nth(count)).to_have_attribute(
        "data-run-id", str(ids[-1]))
    assert page.evaluate(NO_OVERLAP)
    assert page.evaluate(TEXT_FITS)

    # Samples: the long token wraps inside its cell.
    cells = page.locator("#samples .sample-cell pre")
    assert cells.evaluate_all("ps => ps.every(p => p.scrollWidth <= p.clientWidth + 1)")
    assert cells.first.evaluate("p => p.getBoundingClientRect().height") > 40  # wrapped lines
    if count == 4:
        screenshot("compare-4-runs")
