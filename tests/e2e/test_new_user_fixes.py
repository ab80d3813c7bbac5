"""What issue 17 found a new user tripping over, in a real browser, on a server of this module's
own (no worker: the runs here are written into its database as they would stand):
deleting (item 9), the phase of a run and a resumed run's progress (items 5, 8), evaluations on
training rows and the evaluation form's dataset picker (items 3, 11), and the new-run form: the
dataset a link pre-selects, live reward warnings, strategy hints, errors in words (items 2, 12).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from app.core.db import make_engine
from app.domain.models import Checkpoint, Evaluation, JobStatus, Run, RunStatus, utcnow
from tests.conftest import start_server, stop_server
from tests.factories import add_dataset

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    server = start_server("new-user-fixes", worker=False)
    yield server
    stop_server(server)


@pytest.fixture
def db(server):
    engine = make_engine(f"sqlite:///{server.data_dir / 'tunedeck.db'}")
    with Session(engine) as session:
        yield session
    engine.dispose()


def add_run(session, dataset, **fields) -> Run:
    fields.setdefault("hyperparameters", {"eval_split": 0.25, "max_steps": 24})
    run = Run(name=fields.pop("name", "run"), strategy="sft", base_model="tiny-random-llama",
              dataset_id=dataset.id, max_steps=24, **fields)
    session.add(run)
    session.commit()
    return run


def test_delete_checkpoint_evaluation_run_and_dataset(server, db, page):
    dataset = add_dataset(db, name="to delete", num_rows=8)
    run = add_run(db, dataset, name="finished", status=RunStatus.completed, step=4)
    for step, best in ((2, False), (4, True)):
        folder = server.data_dir / "artifacts" / "runs" / str(run.id) / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{}")
        db.add(Checkpoint(run_id=run.id, step=step, storage_key=f"runs/{run.id}/checkpoint-{step}",
                          metric_name="eval_loss", metric_value=1.0 / step, is_best=best))
    evaluation = Evaluation(run_id=run.id, checkpoint_step=4, base_model="m", strategy="sft",
                            dataset_id=dataset.id, split="eval", status=JobStatus.completed)
    db.add(evaluation)
    db.commit()
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{server.url}/evaluations/{evaluation.id}")
    page.click("#delete-evaluation")
    page.wait_for_url(f"{server.url}/runs/{run.id}")

    rows = page.locator("#checkpoints-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1).locator(".delete-checkpoint")).to_be_hidden()  # the best one stays
    rows.nth(0).locator(".delete-checkpoint").click()
    expect(rows).to_have_count(1)
    assert not (server.data_dir / "artifacts" / "runs" / str(run.id) / "checkpoint-2").exists()

    page.goto(f"{server.url}/datasets/{dataset.id}")
    expect(page.locator("#delete-dataset")).to_have_text("Delete with its 1 run")
    page.goto(f"{server.url}/runs/{run.id}")
    page.click("#delete-run")
    page.wait_for_url(f"{server.url}/runs")
    assert not (server.data_dir / "artifacts" / "runs" / str(run.id)).exists()
    page.goto(f"{server.url}/datasets/{dataset.id}")
    expect(page.locator("#delete-dataset")).to_have_text("Delete dataset")
    page.click("#delete-dataset")
    page.wait_for_url(f"{server.url}/datasets")
    with server.client() as client:
        assert client.get(f"/api/datasets/{dataset.id}").status_code == 404


def test_phase_and_resumed_progress(server, db, page):
    dataset = add_dataset(db, name="phases", num_rows=8)
    now = utcnow()
    preparing = add_run(db, dataset, name="first-run", status=RunStatus.running,
                        started_at=now, attempt_started_at=now, heartbeat_at=now,
                        phase="preparing_model", phase_started_at=now - timedelta(seconds=42))
    page.goto(f"{server.url}/runs/{preparing.id}")
    text = page.locator(".progress-summary [data-field=progress_text]")
    expect(text).to_contain_text("0 / 24 · preparing the model")
    expect(text).to_contain_text(re.compile(r"· \d+ s$"))

    resumed = add_run(db, dataset, name="resumed", status=RunStatus.queued, step=7,
                      resume_points=[{"step": 7, "at": now.isoformat()}])
    page.goto(f"{server.url}/runs/{resumed.id}")
    expect(text).to_have_text("7 / 24 · waiting for a worker")
    bar = page.locator("section[aria-label=Progress] progress")
    assert bar.evaluate("el => el.value") == pytest.approx(7 / 24)
    points = page.locator("#run-detail").get_attribute("data-resume-points")
    assert '"step": 7' in points


def test_evaluation_on_training_rows_said_plainly(server, db, page):
    trained_on = add_dataset(db, name="train rows", num_rows=8)
    other = add_dataset(db, name="fresh rows", num_rows=8)
    run = add_run(db, trained_on, name="evaluated", status=RunStatus.completed, step=4)
    db.add(Checkpoint(run_id=run.id, step=4, storage_key=f"runs/{run.id}/checkpoint-4",
                      is_best=True))
    evaluation = Evaluation(run_id=run.id, checkpoint_step=4, base_model="m", strategy="sft",
                            dataset_id=trained_on.id, split="dataset", status=JobStatus.completed,
                            params={"limit": 64, "rows_used_in_training": True})
    db.add(evaluation)
    db.commit()

    page.goto(f"{server.url}/evaluations/{evaluation.id}")
    expect(page.locator("[data-field=rows]")).to_have_text(
        f"rows used in training (dataset #{trained_on.id})")
    expect(page.locator("#training-rows-notice")).to_contain_text("used in training")

    page.goto(f"{server.url}/runs/{run.id}")
    expect(page.locator("#evaluations-table tbody")).to_contain_text("rows used in training")
    options = page.locator("#evaluate-dataset option")
    expect(options.first).to_contain_text("Eval split of train rows (held out")
    expect(options.first).to_have_attribute("value", "")
    labels = options.all_inner_texts()
    assert labels.index(f"#{other.id} fresh rows") < labels.index(
        f"#{trained_on.id} train rows: rows used in training")
    warning = page.locator("#evaluate-training-rows")
    expect(warning).to_be_hidden()
    page.select_option("#evaluate-dataset", str(trained_on.id))
    expect(warning).to_be_visible()


def test_new_run_form_fits_dataset_rewards_and_speaks_plainly(server, db, page):
    arithmetic = add_dataset(db, name="arithmetic", num_rows=20, columns=("prompt", "answer"),
                             format="prompt_only")
    plain = add_dataset(db, name="plain prompts", num_rows=20, columns=("prompt",),
                        format="prompt_only")
    sums = add_dataset(db, name="sums", num_rows=20)  # prompt/completion: no answer column
    add_dataset(db, name="newest text", num_rows=20, columns=("text",), format="text")
    db.commit()

    # The wizard's GRPO link: the dataset with an answer column, the prompt asking for the tags.
    page.goto(f"{server.url}/runs/new?strategy=grpo&rewards=exact_answer:1,soft_format:0.25")
    expect(page.locator("#field-dataset_id")).to_have_value(str(arithmetic.id))
    prompt = page.locator("#hp-grpo-system_prompt")
    expect(prompt).to_have_value(re.compile("<reasoning>"))
    warnings = page.locator("#grpo-fit-warnings")
    expect(warnings).to_be_hidden()
    prompt.fill("")
    expect(warnings).to_contain_text("nothing asks the model for them")
    page.select_option("#field-dataset_id", str(plain.id))
    expect(warnings).to_contain_text("exact_answer reads column 'answer'")
    # GRPO's own learning-rate hint, not LoRA SFT's.
    hint = '.strategy-section[data-strategy=grpo] [data-field-name="learning_rate"] .hint'
    expect(page.locator(hint)).to_contain_text("small steps")

    # Nothing fits DPO here: no dataset is pre-selected, and the form says so.
    page.goto(f"{server.url}/runs/new?strategy=dpo")
    expect(page.locator("#field-dataset_id")).to_have_value("")
    expect(page.locator("#no-fitting-dataset")).to_contain_text("None of your datasets fits DPO")

    # SFT: the form's defaults are the wizard's preset (with an eval split); errors in words.
    page.goto(f"{server.url}/runs/new?dataset_id={sums.id}")
    expect(page.locator("#hp-sft-eval_split")).to_have_value("0.1")
    page.fill("#hp-sft-learning_rate", "0")
    page.click("#run-submit")
    expect(page.locator("#run-error")).to_contain_text("Learning rate must be greater than 0")
