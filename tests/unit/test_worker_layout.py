"""`tunedeck worker --gpus`: which worker processes start, pinned to which GPU, on which queues."""

from __future__ import annotations

import pytest

from app.cli import worker_command, worker_layout


def test_one_worker_per_gpu_pinned_and_on_its_own_queue():
    assert worker_layout(gpus="0,1", queues="training") == [
        ({"CUDA_VISIBLE_DEVICES": "0"}, "training,gpu-0", "gpu0"),
        ({"CUDA_VISIBLE_DEVICES": "1"}, "training,gpu-1", "gpu1"),
    ]
    assert worker_layout(gpus=" 3 ", queues="a,b") == [
        ({"CUDA_VISIBLE_DEVICES": "3"}, "a,b,gpu-3", "gpu3")
    ]


def test_without_gpus_one_unpinned_worker():
    assert worker_layout(gpus=None, queues="training") == [({}, "training", "tunedeck")]
    assert worker_layout(gpus="", queues="training") == [({}, "training", "tunedeck")]


@pytest.mark.parametrize("gpus", ["0,0", "a", "0;1", ",", "-1"])
def test_bad_gpu_lists_are_refused(gpus):
    with pytest.raises(SystemExit, match="distinct GPU indices"):
        worker_layout(gpus=gpus, queues="training")


def test_each_worker_trains_one_run_at_a_time_on_its_queues():
    command = worker_command("training,gpu-1", "gpu1")
    assert command[command.index("-Q") + 1] == "training,gpu-1"
    assert command[command.index("--concurrency") + 1] == "1"
    assert command[command.index("--prefetch-multiplier") + 1] == "1"
    assert command[command.index("-n") + 1].startswith("gpu1-")
