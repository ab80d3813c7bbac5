"""The worker command a queued run's page suggests starts a worker that listens on its queue."""

from __future__ import annotations

import pytest

from app.api.queue_notice import worker_command_for
from app.cli import worker_layout
from app.core.config import settings


@pytest.mark.parametrize("queue", [settings.default_queue, "gpu-0", "gpu-12", "nightly", "gpu-x"])
def test_the_suggested_worker_listens_on_the_queue(queue):
    words = worker_command_for(queue).split()
    assert words[:2] == ["tunedeck", "worker"]
    options = dict(zip(words[2::2], words[3::2], strict=True))
    assert set(options) <= {"--gpus", "--queues"}
    layout = worker_layout(gpus=options.get("--gpus"),
                           queues=options.get("--queues", settings.default_queue))
    assert all(queue in queues.split(",") for _env, queues, _name in layout), layout
