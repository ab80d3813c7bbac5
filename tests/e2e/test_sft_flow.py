"""The SFT flow in a real browser against a live server and Celery worker: upload a dataset,
launch a run from the form, watch the loss chart fill in, download the best adapter."""

from __future__ import annotations

import json
import re
import sqlite3
import zipfile
from contextlib import closing

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ROWS = [{"prompt": f"Say the word number {i}.", "completion": f" Word {i % 3}: {'abc'[i % 3] * 3}."}
        for i in range(24)]
LONG_PROMPT = "Summarise this paragraph. " + "The quick brown fox jumps over the lazy dog. " * 8
ROWS[2] = {"prompt": LONG_PROMPT, "completion": " A fox jumps over a dog."}
CHART_POINTS = ("() => { const d = document.getElementById('chart-loss');"
                " return d && d.data && d.data.length ? d.data[0].x.length : 0; }")


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


def dataset_count(server) -> int:
    with server.client() as client:
        return len(client.get("/api/datasets").json())


def test_bad_upload_shows_the_error_under_the_form_and_stores_nothing(live_server, page, tmp_path):
    page.goto(f"{live_server.url}/datasets")
    table_rows = page.locator("#datasets-table tbody tr")
    rows_before, stored_before = table_rows.count(), dataset_count(live_server)
    # Row 2 lacks its completion; its stray column name is HTML that must show as text.
    bad = write_jsonl(tmp_path / "bad.jsonl", [
        {"prompt": "a", "completion": "b"}, {"prompt": "c", "<b>oops</b>": "d"}])

    page.set_input_files("#upload-file", str(bad))
    page.click("#upload-submit")

    error = page.locator("#upload-form #upload-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("row 2: missing column 'completion'")
    expect(error).to_contain_text("<b>oops</b>")  # shown as text, not markup
    assert error.locator("b").count() == 0
    expect(page).to_have_url(f"{live_server.url}/datasets")
    expect(page.locator("#upload-submit")).to_be_enabled()
    assert dataset_count(live_server) == stored_before
    page.reload()
    assert table_rows.count() == rows_before


def test_upload_launch_watch_and_download(live_server, page, screenshot, tmp_path):
    page.goto(f"{live_server.url}/datasets")
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
    if page.locator("#datasets-empty").is_visible():  # only when this session has no datasets
        screenshot("datasets-empty")

    # Upload → the dataset page with its row count, statistics and escaped, truncated preview.
    page.set_input_files("#upload-file", str(write_jsonl(tmp_path / "words.jsonl", ROWS)))
    page.fill("#upload-name", "Word game")
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r"/datasets/\d+$"))
    dataset_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("h1")).to_contain_text("Word game")
    expect(page.locator("#dataset-rows")).to_have_text("24")
    # prompt, prompt (chat template), completion, total
    expect(page.locator("#token-stats tbody tr")).to_have_count(4)
    expect(page.locator("#templated-prompt-stats")).to_contain_text("(chat template)")
    expect(page.locator("#preview-table tbody tr")).to_have_count(20)
    long_cell = page.locator("#preview-table details").first
    expect(long_cell.locator(".full")).to_be_hidden()
    long_cell.locator("summary").click()
    expect(long_cell.locator(".full")).to_have_text(LONG_PROMPT)
    long_cell.locator("summary").click()
    screenshot("dataset-preview")

    # The form: preselected dataset, catalogue model, hyperparameters under Advanced.
    page.get_by_role("link", name="Launch a run on this dataset").click()
    page.wait_for_url(f"**/runs/new?dataset_id={dataset_id}")
    expect(page.locator("#field-dataset_id")).to_have_value(dataset_id)
    page.select_option("#field-base_model", "tiny-random-llama")
    page.fill("#field-name", "word-game-sft")
    page.fill("input[name=max_steps]", "8")
    page.fill("input[name=learning_rate]", "0.001")
    page.locator("#advanced-sft summary").click()
    page.fill("input[name=save_steps]", "4")
    page.fill("input[name=max_length]", "64")
    page.fill("input[name=per_device_train_batch_size]", "2")
    screenshot("new-run")

    # A value the API refuses: its message next to the form, the field marked, no navigation.
    page.fill("input[name=lora_dropout]", "1.5")
    page.click("#run-submit")
    expect(page.locator("#run-error")).to_contain_text("LoRA dropout must be")
    # Scoped to SFT: every strategy's section has a lora_dropout field.
    lora_dropout = page.locator('#advanced-sft [data-field-name="lora_dropout"]')
    expect(lora_dropout).to_have_class(re.compile("invalid"))
    expect(lora_dropout.locator(".field-error")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/runs/new"))
    page.fill("input[name=lora_dropout]", "0.05")
    expect(lora_dropout).not_to_have_class(re.compile("invalid"))
    page.click("#run-submit")

    # The run page fills in live: loss chart, progress, checkpoints, then completed.
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("h1")).to_contain_text("word-game-sft")
    page.wait_for_function(f"() => ({CHART_POINTS})() >= 2", timeout=120_000)
    assert page.evaluate(CHART_POINTS) >= 2

    runs_page = page.context.new_page()  # the runs list updates itself too
    runs_page.goto(f"{live_server.url}/runs")
    row = runs_page.locator(f'#runs-table tr[data-run-id="{run_id}"]')
    expect(row.locator("[data-field=name]")).to_have_text("word-game-sft")
    expect(row.locator("[data-field=status]")).to_have_text("completed", timeout=120_000)
    expect(row.locator("[data-field=progress_text]")).to_have_text("8 / 8 · done")

    status = page.locator(".page-header [data-field=status]")
    expect(status).to_have_text("completed", timeout=30_000)
    expect(page.locator("#cancel-button")).to_be_hidden()
    expect(page.locator("#queue-notice")).to_be_hidden()  # a worker took it
    expect(page.locator("#checkpoints-table tbody tr")).to_have_count(2)  # steps 4 and 8
    expect(page.locator("#checkpoints-table .badge-best:visible")).to_have_count(1)
    assert page.evaluate(CHART_POINTS) == 8  # the final refresh drew every step
    screenshot("run-detail")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download best adapter").click()
    archive = download_info.value.path()
    with zipfile.ZipFile(archive) as adapter:
        names = set(adapter.namelist())
    assert {"adapter_model.safetensors", "adapter_config.json"} <= names, names

    runs_page.bring_to_front()
    screenshot("runs-list", runs_page)


def test_demo_dataset_button_opens_one_demo_dataset(live_server, page):
    page.goto(f"{live_server.url}/datasets")
    page.click("#demo-button")
    page.wait_for_url(re.compile(r"/datasets/\d+$"))
    first = page.url
    expect(page.locator("h1")).to_contain_text("SFT demo")
    assert int(page.locator("#dataset-rows").inner_text().replace(",", "")) > 0
    expect(page.locator("#preview-table tbody tr").first).to_be_visible()

    page.goto(f"{live_server.url}/datasets")  # a second click opens the same dataset
    page.click("#demo-button")
    page.wait_for_url(re.compile(r"/datasets/\d+$"))
    assert page.url == first


def test_a_new_run_appears_in_the_list_and_cancels_from_its_page(live_server, page):
    page.goto(f"{live_server.url}/runs")
    with live_server.client() as client:
        body = "\n".join(json.dumps(row) for row in ROWS[:4]).encode()
        dataset = client.post("/api/datasets", files={"file": ("four.jsonl", body)}).json()
        # No worker listens on this queue, so the run stays queued until cancelled.
        run = client.post("/api/runs", json={
            "dataset_id": dataset["id"], "base_model": "tiny-random-llama",
            "name": "never-starts", "queue": "nobody-listens"}).json()

    row = page.locator(f'#runs-table tr[data-run-id="{run["id"]}"]')  # added by polling
    expect(row.locator("[data-field=status]")).to_have_text("queued", timeout=30_000)
    expect(row.locator("[data-field=name]")).to_have_text("never-starts")
    expect(row.locator("[data-field=dataset]")).to_have_text("four")
    newest_first = page.locator("#runs-table tbody tr").first
    expect(newest_first).to_have_attribute("data-run-id", str(run["id"]))

    row.locator("[data-field=name]").click()
    status = page.locator(".page-header [data-field=status]")
    expect(status).to_have_text("queued")
    expect(page.locator("[data-field=progress_text]")).to_have_text("waiting for a worker")
    notice = page.locator("#queue-notice")
    expect(notice).to_contain_text("Waiting for a worker on queue nobody-listens.")
    hint = page.locator("#queue-hint")
    # No live worker consumes this queue: the page says so at once (domain/workers.py).
    expect(notice).to_contain_text("No worker is listening on this queue right now.")
    expect(hint).to_be_visible()
    with closing(sqlite3.connect(live_server.data_dir / "tunedeck.db")) as db, db:
        db.execute("UPDATE run SET publish_count = 3 WHERE id = ?", (run["id"],))  # re-sent twice
    expect(hint).to_contain_text("start one with tunedeck worker --queues nobody-listens")
    # the page polls: on a loaded machine a poll may take more than expect's 5 s
    expect(hint).to_contain_text("it has re-sent it 2 times so far", timeout=30_000)
    page.get_by_role("button", name="Cancel run").click()
    expect(status).to_have_text("cancelled", timeout=30_000)
    expect(notice).to_be_hidden()
    expect(page.locator("#cancel-button")).to_be_hidden()
    with live_server.client() as client:
        assert client.get(f"/api/runs/{run['id']}").json()["status"] == "cancelled"
