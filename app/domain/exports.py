"""Exports of a run's checkpoint: a merged Hugging Face folder, a GGUF for llama.cpp and Ollama
(with a Modelfile), or the adapter alone as a GGUF. Checked here, stored queued and handed to a
worker by task name; the worker (worker/exports/) builds the files in a scratch folder and uploads
them only once complete, so storage never holds half an export."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.storage import ArtifactStore
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.evaluations import EvaluationError, resolve_checkpoint
from app.domain.models import Export, JobStatus, Run, utcnow
from app.domain.publish import EXPORT, publish

# kind → the quantisations it accepts (the first is the default). q4_K_M needs llama.cpp's
# llama-quantize binary on the worker's PATH: the export fails saying so when it is missing.
KINDS: dict[str, tuple[str | None, ...]] = {
    "merged": (None,),
    "gguf": ("q8_0", "f16", "bf16", "q4_K_M"),
    "adapter_gguf": ("f16", "bf16", "q8_0"),
}
KIND_LABELS = {"merged": "Merged model (Hugging Face folder)", "gguf": "GGUF (llama.cpp, Ollama)",
               "adapter_gguf": "Adapter GGUF (LoRA for llama.cpp)"}
NEEDS_LLAMA_QUANTIZE = {"q4_K_M"}
ACTIVE = (JobStatus.queued, JobStatus.running)
# Written last: its presence in storage means the export's files are all there.
MANIFEST = "tunedeck-export.json"


def export_key(export: Export) -> str:
    return f"exports/run-{export.run_id}/export-{export.id}"


def model_name(run: Run, step: int, kind: str, quantization: str | None) -> str:
    """A name Ollama accepts (lower case, no spaces): "tunedeck-run7-step6-q8_0"."""
    slug = re.sub(r"[^a-z0-9]+", "-", run.name.lower()).strip("-")[:40] or "run"
    suffix = f"-{quantization.lower()}" if quantization else ("-merged" if kind == "merged" else "")
    return f"{slug}-run{run.id}-step{step}{suffix}"


def check_request(kind: str, quantization: str | None) -> str | None:
    """The quantisation to use; Invalid (422) naming what is accepted otherwise."""
    if kind not in KINDS:
        raise Invalid(f"unknown export kind {kind!r}: choose one of {', '.join(KINDS)}")
    accepted = KINDS[kind]
    if quantization is None or quantization == "":
        return accepted[0]
    if kind == "merged":
        raise Invalid("a merged export keeps the base model's dtype: leave quantization empty "
                      "(or export a GGUF to quantise)")
    if quantization not in accepted:
        raise Invalid(f"unknown quantization {quantization!r} for a {kind} export: choose one of "
                      f"{', '.join(q for q in accepted if q)}")
    return quantization


def create_export(session: Session, *, run: Run, checkpoint: int | str = "best",
                  kind: str = "gguf", quantization: str | None = None) -> Export:
    """Queue an export of one of the run's checkpoints (a step or "best")."""
    quantization = check_request(kind, quantization)
    try:
        step = resolve_checkpoint(session, run=run, which=checkpoint).step
    except EvaluationError as exc:
        raise Invalid(str(exc).replace("nothing to evaluate", "nothing to export")) from exc
    same = session.scalar(select(Export).where(
        Export.run_id == run.id, Export.checkpoint_step == step, Export.kind == kind,
        Export.quantization.is_(None) if quantization is None
        else Export.quantization == quantization,
        Export.status.in_(ACTIVE)))
    if same is not None:
        raise Conflict(f"export {same.id} of step {step} as {kind}"
                       f"{' ' + quantization if quantization else ''} is already {same.status}: "
                       "wait for it")
    export = Export(run_id=run.id, checkpoint_step=step, kind=kind, quantization=quantization,
                    details={"model_name": model_name(run, step, kind, quantization)},
                    published_at=utcnow(), publish_count=1)
    session.add(export)
    session.commit()
    publish_export(session, export)
    return export


def publish_export(session: Session, export: Export) -> None:
    """To the run's queue: a worker there can load the run's base model. The reaper calls this
    again when the message was lost."""
    run = session.get(Run, export.run_id)
    publish(EXPORT, export.id, queue=run.queue if run is not None else "training")


def get_export(session: Session, export_id: int) -> Export:
    export = session.get(Export, export_id)
    if export is None:
        raise NotFound(f"export {export_id} not found")
    return export


def list_exports(session: Session, *, run_id: int) -> list[Export]:
    return list(session.scalars(
        select(Export).where(Export.run_id == run_id).order_by(Export.id.desc())))


def require_completed(export: Export) -> None:
    if export.status != JobStatus.completed or not export.storage_key:
        raise Conflict(f"export {export.id} is {export.status}: its files exist once it completes")


def stored_file(export: Export, name: str) -> dict:
    """The export's file ``name`` (one of those it lists, never a path the request made up)."""
    require_completed(export)
    for entry in export.files or []:
        if entry["name"] == name:
            return entry
    raise NotFound(f"export {export.id} has no file {name!r}")


def delete_export(session: Session, *, export: Export, store: ArtifactStore) -> None:
    """Delete a finished export with its files; a queued or running one is refused (409)."""
    if export.status in ACTIVE:
        raise Conflict(f"export {export.id} is {export.status}: wait for it to finish, then "
                       "delete it")
    if export.storage_key:
        store.delete(export.storage_key)
    session.delete(export)
    session.commit()


def ollama_command(export: Export) -> str | None:
    """The command that registers a downloaded GGUF export with Ollama."""
    if export.kind != "gguf":
        return None
    return f"ollama create {export.details.get('model_name', 'tunedeck')} -f Modelfile"
