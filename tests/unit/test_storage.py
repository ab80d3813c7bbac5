"""ArtifactStore on local disk: keys stay inside the root, folders and files round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import Settings
from app.core.storage import ArtifactStore, make_store


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(f"file://{tmp_path / 'artifacts'}", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("key", [
    "../escape", "runs/../../etc/passwd", "/etc/passwd", "", "runs//7", "runs/./7", "a\\..\\b",
    "runs/7/..",
])
def test_keys_that_could_leave_the_root_are_refused(store, tmp_path, key):
    (tmp_path / "outside.txt").write_text("secret")
    for call in (store.exists, store.local_path, store.list_files, store.delete, store.open):
        with pytest.raises(ValueError, match="invalid storage key"):
            call(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        store.put_file(tmp_path / "outside.txt", key)
    assert (tmp_path / "outside.txt").read_text() == "secret"


def folder(tmp_path: Path) -> Path:
    source = tmp_path / "checkpoint"
    (source / "nested").mkdir(parents=True)
    (source / "adapter_config.json").write_text("{}")
    (source / "nested" / "weights.bin").write_bytes(b"\x00\x01")
    return source


def test_files_and_folders_round_trip(store, tmp_path):
    assert store.is_local
    store.put_dir(folder(tmp_path), "runs/7/checkpoint-2")
    assert store.list_files("runs/7/checkpoint-2") == ["adapter_config.json", "nested/weights.bin"]
    assert store.exists("runs/7/checkpoint-2/nested/weights.bin")
    local = store.local_path("runs/7/checkpoint-2")
    # Local storage hands out the stored folder itself: no copy in the cache.
    assert local == tmp_path / "artifacts" / "runs" / "7" / "checkpoint-2"
    assert not (tmp_path / "cache").exists()
    with store.open("runs/7/checkpoint-2/nested/weights.bin") as handle:
        assert handle.read() == b"\x00\x01"
    store.delete("runs/7")
    assert not store.exists("runs/7/checkpoint-2/adapter_config.json")
    store.delete("runs/7")  # deleting what is gone is fine


def test_get_dir_copies_a_folder_whole(store, tmp_path):
    store.put_dir(folder(tmp_path), "models/m", last="adapter_config.json")
    target = tmp_path / "copy" / "m"
    store.get_dir("models/m", target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "adapter_config.json", "nested/weights.bin"]
    assert [p.name for p in target.parent.iterdir()] == ["m"]  # no temporary folder left behind


def test_put_dir_uploads_the_marker_last(tmp_path):
    uploaded = []

    class RecordingStore(ArtifactStore):
        def put_file(self, local, key):
            uploaded.append(key)
            super().put_file(local, key)

    store = RecordingStore(f"file://{tmp_path / 'a'}", cache_dir=tmp_path / "c")
    source = folder(tmp_path)
    (source / "zzz.txt").write_text("z")
    store.put_dir(source, "models/m", last="adapter_config.json")
    assert uploaded[-1] == "models/m/adapter_config.json" and len(uploaded) == 3


def test_default_store_is_the_data_dirs_artifacts_folder(tmp_path):
    store = make_store(Settings(data_dir=tmp_path))
    assert store.is_local and store.root.endswith("/artifacts")
    remote = Settings(data_dir=tmp_path, storage_url="memory://bucket/prefix")
    assert not make_store(remote).is_local
