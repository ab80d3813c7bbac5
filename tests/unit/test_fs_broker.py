"""The embedded broker writes each message whole before any worker can take it: kombu's own
filesystem transport creates the file first and writes it after, and a worker that read it empty
in between stopped on a JSONDecodeError."""

from __future__ import annotations

import json
import os
from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection

from app.core import fs_broker
from app.core.celery_app import create_celery
from app.core.config import Settings


def test_a_message_is_seen_whole_or_not_at_all(tmp_path, monkeypatch):
    folder = str(tmp_path)
    with Connection("filesystem://", transport=fs_broker.Transport, transport_options={
            "data_folder_in": folder, "data_folder_out": folder,
            "processed_folder": folder}) as connection:
        channel = connection.default_channel
        written: list[dict] = []
        replace = os.replace

        def at_the_rename(source, target):  # the moment kombu's own transport had a gap
            with pytest.raises(Empty):  # a consumer takes nothing yet
                channel._get("training")
            written.append(json.loads(Path(source).read_bytes()))
            assert not Path(target).exists()
            replace(source, target)

        monkeypatch.setattr(os, "replace", at_the_rename)
        channel._put("training", {"body": "run 7"})
        assert written == [{"body": "run 7"}]
        assert channel._get("training") == {"body": "run 7"}
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_the_embedded_celery_app_uses_it_and_redis_stays_redis(tmp_path):
    embedded = create_celery(Settings(data_dir=tmp_path))
    with embedded.connection_for_write() as connection:
        assert isinstance(connection.transport, fs_broker.Transport)
    with embedded.connection_for_read() as connection:
        assert isinstance(connection.transport, fs_broker.Transport)
    production = create_celery(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/9"))
    assert production.connection_for_write().transport_cls == "redis"
