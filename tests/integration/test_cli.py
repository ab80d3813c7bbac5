"""The `tunedeck` client commands end to end, as a user runs them: real processes against a live
server and a real Celery worker training tiny-random-llama. Every command's --json output is
parsed; exit codes are the documented ones."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest
import yaml

from tests.conftest import ROOT, start_server, stop_server

ROWS = [
    {"prompt": f"Say the word number {i}.", "completion": f" Word {i % 3}: {'abc'[i % 3] * 3}."}
    for i in range(16)
]


@pytest.fixture(scope="module")
def server():
    live = start_server("cli")
    yield live
    stop_server(live)


def tunedeck(server, *args: str, expect: int = 0, timeout: float = 400):
    env = {**server.env, "TUNEDECK_SERVER": server.url}
    result = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == expect, (
        f"tunedeck {' '.join(args)} exited {result.returncode}, expected {expect}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}\n{server.logs()}")
    return result


def as_json(result):
    return json.loads(result.stdout)


@pytest.mark.slow
def test_cli_upload_launch_watch_download_compare(server, tmp_path):
    data = tmp_path / "words.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS))
    dataset = as_json(tunedeck(server, "datasets", "upload", str(data), "--name", "words",
                               "--json"))
    assert dataset["num_rows"] == 16 and dataset["format"] == "prompt_completion"
    listed = as_json(tunedeck(server, "datasets", "ls", "--json"))
    assert dataset["id"] in [d["id"] for d in listed]

    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump({
        "dataset": "words",  # by name
        "strategy": "sft", "base_model": "tiny-random-llama", "name": "cli-a",
        "hyperparameters": {"max_steps": 2, "save_steps": 2, "eval_steps": 2,
                            "eval_split": 0.25, "per_device_train_batch_size": 2,
                            "learning_rate": 1e-3, "max_length": 64},
    }))
    # launch --watch follows the run to completion: exit 0, the finished run as JSON.
    first = as_json(tunedeck(server, "runs", "launch", str(run_file), "--set",
                             "hyperparameters.max_steps=4", "--watch", "--poll", "0.5",
                             "--json"))
    assert first["status"] == "completed", first
    assert first["name"] == "cli-a" and first["step"] == 4 and first["max_steps"] == 4
    assert first["dataset_id"] == dataset["id"]
    assert first["best_checkpoint"]["metric_name"] == "eval_loss"

    # A second run (other learning rate), launched then watched by id.
    second = as_json(tunedeck(server, "runs", "launch", str(run_file), "--set", "name=cli-b",
                              "--set", "learning_rate=5e-4", "--json"))
    assert second["status"] == "queued" and second["hyperparameters"]["learning_rate"] == 5e-4
    second = as_json(tunedeck(server, "runs", "watch", str(second["id"]), "--poll", "0.5",
                              "--json"))
    assert second["status"] == "completed" and second["step"] == 2

    # A run that fails on the worker (no such model, and no hub here): watch exits 1.
    failing = as_json(tunedeck(server, "runs", "launch", str(run_file), "--set",
                               "base_model=nobody/no-such-model", "--set", "name=cli-fails",
                               "--json"))
    failed = tunedeck(server, "runs", "watch", str(failing["id"]), "--poll", "0.5", "--json",
                      expect=1)
    assert as_json(failed)["status"] == "failed" and as_json(failed)["error"]

    completed = as_json(tunedeck(server, "runs", "ls", "--status", "completed", "--json"))
    assert {r["id"] for r in completed} == {first["id"], second["id"]}
    both = as_json(tunedeck(server, "runs", "ls", "--status", "completed", "--status", "failed",
                            "--json"))
    assert [r["id"] for r in both] == [failing["id"], second["id"], first["id"]]

    out_dir = tmp_path / "adapters"
    saved = as_json(tunedeck(server, "runs", "download", str(first["id"]), "--best", "-o",
                             str(out_dir), "--json"))
    best_step = first["best_checkpoint"]["step"]
    assert saved["path"].endswith(f"run{first['id']}-step{best_step}-adapter.zip")
    with zipfile.ZipFile(saved["path"]) as archive:
        names = archive.namelist()
    assert any(n.endswith("adapter_config.json") for n in names), names
    by_step = as_json(tunedeck(server, "runs", "download", str(first["id"]), "--step", "2",
                               "-o", str(out_dir), "--json"))
    assert by_step["path"].endswith("step2-adapter.zip")
    missing = tunedeck(server, "runs", "download", str(first["id"]), "--step", "3", "--json",
                       expect=3)
    assert as_json(missing) == {"error": f"run {first['id']} has no checkpoint at step 3",
                                "status_code": 404}

    table = as_json(tunedeck(server, "compare", str(first["id"]), str(second["id"]),
                             "--metric", "eval_loss", "--metric", "loss", "--json"))
    assert [r["id"] for r in table["runs"]] == [first["id"], second["id"]]
    a, b = table["runs"]
    assert a["metrics"]["loss"]["final"][0] == 4 and b["metrics"]["loss"]["final"][0] == 2
    assert a["metrics"]["eval_loss"]["best"][1] == pytest.approx(
        first["best_checkpoint"]["metric_value"], rel=1e-3)
    differing = {row["key"]: row["values"] for row in table["config_diff"]}
    assert differing["learning_rate"] == {str(first["id"]): 1e-3, str(second["id"]): 5e-4}
    assert differing["max_steps"] == {str(first["id"]): 4, str(second["id"]): 2}
    # The human-readable forms print tables rather than JSON.
    assert "cli-a" in tunedeck(server, "compare", str(first["id"]), str(second["id"])).stdout
    assert "cli-fails" in tunedeck(server, "runs", "ls").stdout

    # The run file the run page offers relaunches it (here only queued, then cancelled).
    yaml_file = tmp_path / "again.yaml"
    tunedeck(server, "runs", "yaml", str(first["id"]), "-o", str(yaml_file))
    again = as_json(tunedeck(server, "runs", "launch", str(yaml_file), "--set", "queue=nobody",
                             "--json"))
    assert again["hyperparameters"] == first["hyperparameters"]
    assert as_json(tunedeck(server, "runs", "cancel", str(again["id"]), "--json"))["id"] == \
        again["id"]


@pytest.mark.slow
def test_cli_errors_have_documented_exit_codes(server, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset_id: 999999\nstrategy: sft\n")
    refused = tunedeck(server, "runs", "launch", str(bad), "--json", expect=3)
    assert as_json(refused) == {"error": "dataset 999999 not found", "status_code": 404}
    tunedeck(server, "runs", "watch", "999999", expect=3)
    env = {**server.env, "TUNEDECK_SERVER": "http://127.0.0.1:9"}  # nothing listens there
    result = subprocess.run([sys.executable, "-m", "app.cli", "runs", "ls"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 4 and "cannot reach TuneDeck" in result.stderr
    tunedeck(server, "runs", "frobnicate", expect=2)
