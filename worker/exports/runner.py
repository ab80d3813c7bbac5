"""Build one export in a child process of the worker: ``python -m worker.exports.runner ID``.
The task has claimed the row (running); this builds the files in a scratch folder, uploads them
(the manifest last) and records the outcome. A failure leaves nothing in storage."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

from app.core.config import settings
from app.core.db import session_scope
from app.core.storage import store
from app.domain import jobs
from app.domain.catalogue import ModelNotFound
from app.domain.exports import MANIFEST, export_key
from app.domain.models import Export, JobStatus, Run
from app.domain.progress import record_progress
from app.domain.prompts import chat_settings
from worker.evaluation.evaluate import adapter_dir
from worker.exports import build
from worker.training.models import resolve_model

log = logging.getLogger(__name__)


def set_phase(export_id: int, phase: str, progress: float) -> None:
    with session_scope() as session:
        record_progress(session, Export, export_id, phase=phase, progress=round(progress, 3))


def build_export(export_id: int, scratch: Path) -> dict:
    """Build the export's files in ``scratch/out``; returns the row's details."""
    with session_scope() as session:
        export = session.get(Export, export_id)
        if export is None:
            raise LookupError(f"export {export_id} not found")
        run = session.get(Run, export.run_id)
        if run is None:
            raise LookupError(f"run {export.run_id} not found")
        kind, quantization, step = export.kind, export.quantization, export.checkpoint_step
        base_model, details = run.base_model, dict(export.details or {})
        _, system_prompt = chat_settings(run.hyperparameters or {})
        source = f"TuneDeck run {run.id} ({run.name}), checkpoint step {step}, base {base_model}"
        run_id = run.id
    out = scratch / "out"
    out.mkdir()
    set_phase(export_id, "loading base model", 0.05)
    try:
        base_folder = resolve_model(base_model, settings.model_cache_dir)
    except ModelNotFound as exc:
        raise RuntimeError(f"the run's base model is no longer loadable: {exc}") from exc
    adapter = adapter_dir(run_id, step)
    name = details.get("model_name", f"run{run_id}-step{step}")
    log_path = scratch / "convert.log"
    with open(log_path, "w", encoding="utf-8") as log_file:
        if kind == "adapter_gguf":
            set_phase(export_id, "converting adapter", 0.3)
            build.convert_adapter_gguf(adapter, base_folder, out / f"{name}.gguf",
                                       str(quantization), log_file=log_file)
            details |= {"gguf": f"{name}.gguf", "base_model": base_model}
            return details
        set_phase(export_id, "merging", 0.15)
        merged = out if kind == "merged" else scratch / "merged"
        details |= build.merge(base_folder, adapter, merged)
        if kind == "merged":
            return details
        set_phase(export_id, f"converting to GGUF {quantization}", 0.5)
        gguf_name = f"{name}.gguf"
        build.convert_gguf(merged, out / gguf_name, str(quantization), log_file=log_file)
        set_phase(export_id, "writing Modelfile", 0.85)
        text, ollama = build.ollama_modelfile(merged, gguf_name, system_prompt=system_prompt,
                                              source=source)
        (out / "Modelfile").write_text(text, encoding="utf-8")
        details |= {"gguf": gguf_name, "ollama": ollama}
    return details


def upload(export_id: int, out: Path, details: dict) -> None:
    with session_scope() as session:
        export = session.get(Export, export_id)
        key = export_key(export)
        kind, quantization, step = export.kind, export.quantization, export.checkpoint_step
    files = [{"name": p.relative_to(out).as_posix(), "size": p.stat().st_size}
             for p in sorted(out.rglob("*")) if p.is_file()]
    (out / MANIFEST).write_text(json.dumps(
        {"kind": kind, "quantization": quantization, "checkpoint_step": step,
         "details": details, "files": files}, indent=2))
    set_phase(export_id, "uploading", 0.9)
    try:
        store.put_dir(out, key, last=MANIFEST)
    except BaseException:
        store.delete(key)
        raise
    with session_scope() as session:
        finished = jobs.transition(session, Export, job_id=export_id, to=JobStatus.completed,
                                   storage_key=key, files=files, progress=1.0, phase=None,
                                   size_bytes=sum(f["size"] for f in files), details=details)
    if not finished:  # the reaper failed it meanwhile: keep nothing
        store.delete(key)


def main(export_id: int) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    scratch = Path(tempfile.mkdtemp(prefix=f"tunedeck-export-{export_id}-",
                                    dir=settings.resolved_data_dir))
    try:
        details = build_export(export_id, scratch)
        upload(export_id, scratch / "out", details)
    except Exception as exc:  # the row records why; the worker stays up
        traceback.print_exc()
        with session_scope() as session:
            jobs.transition(session, Export, job_id=export_id, to=JobStatus.failed,
                            error=f"{exc}" if isinstance(exc, RuntimeError)
                            else f"{type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
