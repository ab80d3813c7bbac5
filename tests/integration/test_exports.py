"""Exports through a live server and worker: a tiny-random-llama SFT run's checkpoint exported as a
merged model (loads with plain transformers and answers with the same greedy tokens as base +
adapter through PEFT), as a q8_0 GGUF with an Ollama Modelfile (transformers' GGUF loader loads it
and it generates) and as an adapter GGUF; bad requests get a clear 4xx, failed exports say why and
leave nothing in storage."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL_CACHE, start_server, stop_server
from tests.integration.test_sft_run import ROWS, upload_jsonl

SYSTEM_PROMPT = "You answer in one short line."
PROMPT = "Say the word number 4."


@pytest.fixture(scope="module")
def converter():
    from worker.exports import converter

    if not converter.installed():  # CI installs it (.ci/run); pip fetches the pinned sdist
        converter.install(converter.converter_dir())
    return converter.converter_dir()


@pytest.fixture(scope="module")
def server(converter):
    # No llama-quantize on the worker's PATH: q4_K_M must fail saying so.
    live = start_server("exports", extra_env={"PATH": "/usr/bin:/bin"})
    yield live
    stop_server(live)


def train(server, client, *, base_model="tiny-random-llama", name="export-sft") -> dict:
    dataset = upload_jsonl(client, ROWS)
    response = client.post("/api/runs", json={
        "dataset_id": dataset["id"], "strategy": "sft", "base_model": base_model, "name": name,
        "hyperparameters": {"max_steps": 4, "save_steps": 2, "per_device_train_batch_size": 2,
                            "learning_rate": 5e-2, "max_length": 64,
                            "system_prompt": SYSTEM_PROMPT}})
    assert response.status_code == 201, response.text
    deadline = time.monotonic() + 900  # a loaded machine
    while (run := client.get(f"/api/runs/{response.json()['id']}").json())["status"] in (
            "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run["status"] == "completed", f"{run['error']}\n{server.logs()}"
    return run


def wait_export(server, client, export_id: int, timeout: float = 400) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        export = client.get(f"/api/exports/{export_id}").json()
        if export["status"] in ("completed", "failed"):
            return export
        time.sleep(0.5)
    logs = "\n".join(p.read_text(errors="replace")[-3000:]
                     for p in (server.data_dir / "exports").glob("*.log"))
    raise AssertionError(f"export {export_id} did not finish: {export}\n{logs}\n{server.logs()}")


def export(server, client, run_id: int, **body) -> dict:
    response = client.post(f"/api/runs/{run_id}/exports", json=body)
    assert response.status_code == 201, response.text
    return wait_export(server, client, response.json()["id"])


def greedy(model, tokenizer, text: str, n: int = 12) -> list[int]:
    import torch

    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=n, do_sample=False, temperature=None,
                             top_p=None, top_k=None, pad_token_id=tokenizer.eos_token_id)
    return out[0, ids.shape[1]:].tolist()


def stored_exports(server) -> list[Path]:
    root = server.data_dir / "artifacts" / "exports"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.slow
def test_merged_gguf_and_adapter_exports(server, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with httpx.Client(base_url=server.url, timeout=180) as client:  # a loaded machine
        run = train(server, client)
        best = run["best_checkpoint"]["step"] if run.get("best_checkpoint") else None

        merged = export(server, client, run["id"], checkpoint="best", kind="merged")
        assert merged["status"] == "completed", merged["error"]
        assert best is None or merged["checkpoint_step"] == best
        names = {f["name"] for f in merged["files"]}
        assert {"model.safetensors", "config.json", "tokenizer.json", "generation_config.json",
                "chat_template.jinja"} <= names, names
        assert merged["details"]["dtype"] == "float32"  # the tiny base's dtype
        archive = client.get(merged["download_url"])
        assert archive.status_code == 200
        folder = tmp_path / "merged"
        zipfile.ZipFile(io.BytesIO(archive.content)).extractall(folder)
        assert not list(folder.glob("adapter_*")), "a merged folder carries no adapter"

        # The same greedy tokens as base + adapter through PEFT, on a fixed prompt.
        adapter_zip = client.get(
            f"/api/runs/{run['id']}/checkpoints/{merged['checkpoint_step']}/download")
        adapter = tmp_path / "adapter"
        zipfile.ZipFile(io.BytesIO(adapter_zip.content)).extractall(adapter)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert tokenizer.chat_template
        text = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}],
                                             tokenize=False, add_generation_prompt=True)
        plain = AutoModelForCausalLM.from_pretrained(folder)
        assert plain.dtype == torch.float32
        base = AutoModelForCausalLM.from_pretrained(MODEL_CACHE / "tiny-random-llama")
        with_adapter = PeftModel.from_pretrained(base, str(adapter)).eval()
        tuned = greedy(with_adapter, tokenizer, text)
        assert greedy(plain.eval(), tokenizer, text) == tuned
        ids = tokenizer(text, return_tensors="pt").input_ids
        with torch.inference_mode():
            merged_logits = plain(ids).logits
            peft_logits = with_adapter(ids).logits
            with with_adapter.disable_adapter():
                base_logits = with_adapter(ids).logits
        # The same function as base + adapter, and the adapter did change it (not a no-op test).
        assert torch.allclose(merged_logits, peft_logits, atol=1e-4)
        assert (base_logits - peft_logits).abs().max() > 100 * (
            merged_logits - peft_logits).abs().max()

        gguf = export(server, client, run["id"], checkpoint=merged["checkpoint_step"],
                      kind="gguf", quantization="q8_0")
        assert gguf["status"] == "completed", gguf["error"]
        files = {f["name"]: f for f in gguf["files"]}
        gguf_name = gguf["details"]["gguf"]
        assert gguf_name.endswith("-q8_0.gguf") and {gguf_name, "Modelfile"} <= set(files)
        (tmp_path / gguf_name).write_bytes(client.get(files[gguf_name]["url"]).content)
        loaded = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=gguf_name).eval()
        gguf_tokens = greedy(loaded, tokenizer, text)
        assert len(gguf_tokens) == 12
        # q8_0 keeps the merged weights to within its quantisation step.
        diff = (loaded.model.embed_tokens.weight - plain.model.embed_tokens.weight).abs().max()
        assert diff < 0.02 * plain.model.embed_tokens.weight.abs().max()

        modelfile = client.get(files["Modelfile"]["url"]).text
        assert f"FROM ./{gguf_name}" in modelfile
        assert 'TEMPLATE """{{ range .Messages }}' in modelfile
        assert "<|im_start|>user\n" in modelfile
        assert 'PARAMETER stop "<|im_end|>"' in modelfile
        assert f'SYSTEM """{SYSTEM_PROMPT}"""' in modelfile
        name = gguf["details"]["model_name"]
        assert gguf["ollama_command"] == f"ollama create {name} -f Modelfile"

        lora = export(server, client, run["id"], checkpoint="best", kind="adapter_gguf")
        assert lora["status"] == "completed", lora["error"]
        assert lora["quantization"] == "f16"
        lora_file = tmp_path / "lora.gguf"
        lora_file.write_bytes(client.get(lora["files"][0]["url"]).content)
        from gguf import GGUFReader

        reader = GGUFReader(lora_file)
        general_type = reader.fields["general.type"]
        assert bytes(general_type.parts[general_type.data[0]]).decode() == "adapter"
        assert any(t.name.endswith(".lora_a") for t in reader.tensors)

        listed = client.get(f"/api/runs/{run['id']}/exports").json()
        assert [e["id"] for e in listed] == [lora["id"], gguf["id"], merged["id"]]
        page = client.get(f"/runs/{run['id']}")
        assert 'id="run-exports"' in page.text and "/static/run_exports.js" in page.text

        # Delete: the files go with the row.
        before = stored_exports(server)
        assert any(f"export-{lora['id']}" in str(p) for p in before)
        assert client.delete(f"/api/exports/{lora['id']}").status_code == 204
        assert not any(f"export-{lora['id']}" in str(p) for p in stored_exports(server))
        assert client.get(f"/api/exports/{lora['id']}").status_code == 404


@pytest.mark.slow
def test_bad_exports(server, tmp_path):
    base_copy = tmp_path / "tiny-copy"
    shutil.copytree(MODEL_CACHE / "tiny-random-llama", base_copy)
    with httpx.Client(base_url=server.url, timeout=180) as client:  # a loaded machine
        run = train(server, client, base_model=str(base_copy), name="export-bad")
        run_id = run["id"]
        for body, expected in [
            ({"kind": "gguf", "quantization": "q3_banana"}, "unknown quantization 'q3_banana'"),
            ({"kind": "adapter_gguf", "quantization": "q4_K_M"}, "choose one of f16, bf16, q8_0"),
            ({"kind": "merged", "quantization": "q8_0"}, "keeps the base model's dtype"),
            ({"kind": "onnx"}, "unknown export kind 'onnx'"),
            ({"kind": "gguf", "checkpoint": 999}, "no checkpoint at step 999"),
        ]:
            response = client.post(f"/api/runs/{run_id}/exports", json=body)
            assert response.status_code == 422, (body, response.text)
            assert expected in response.json()["detail"], response.text
        assert client.post("/api/runs/999999/exports", json={}).status_code == 404
        assert client.get("/api/exports/999999").status_code == 404

        # No llama-quantize on this worker: q4_K_M fails saying what to do.
        q4 = export(server, client, run_id, kind="gguf", quantization="q4_K_M")
        assert q4["status"] == "failed"
        assert "llama-quantize" in q4["error"] and "PATH" in q4["error"], q4["error"]
        assert q4["files"] == [] and q4["download_url"] is None
        assert client.get(f"/api/exports/{q4['id']}/files/Modelfile").status_code == 409

        # The base model's folder is gone: the export fails with the reason.
        shutil.rmtree(base_copy)
        lost = export(server, client, run_id, kind="merged")
        assert lost["status"] == "failed"
        assert "no longer loadable" in lost["error"] and str(base_copy) in lost["error"]
        for failed in (q4, lost):
            assert not any(f"export-{failed['id']}" in str(p) for p in stored_exports(server))
        # A failed export can be deleted (nothing to remove in storage).
        assert client.delete(f"/api/exports/{lost['id']}").status_code == 204
        manifest = [p for p in stored_exports(server) if p.name == "tunedeck-export.json"]
        assert all(json.loads(p.read_text())["files"] for p in manifest)
