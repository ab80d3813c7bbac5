"""Which rank the run's error names when torchrun reports several failures: a rank's own error
beats a peer's transport error, a signal beats SIGTERM sent by the agent; and what devices a
worker says it has."""

from __future__ import annotations

from app.domain.placement import Devices, local_devices
from worker.distributed import explain_failure, record_rank_error

SUMMARY = """
============================================================
worker.train_process FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-12-02_16:00:01
  host      : box-a
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 101)
  error_file: <N/A>
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-02_16:00:00
  host      : box-a
  rank      : 1 (local_rank: 1)
  exitcode  : {code} (pid: 102)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 102
============================================================
"""


def test_a_killed_rank_is_named_over_its_peers_transport_error(tmp_path):
    record_rank_error(tmp_path, rank=0, world_size=2,
                      error="RuntimeError: [gloo] Connection closed by peer [127.0.0.1]:1234")
    text = "training...\n" + SUMMARY.format(code=-9)
    assert explain_failure(text, tmp_path, world_size=2) == (
        "training rank 1 of 2 was killed by signal 9 (out of memory?); torchrun stopped the other "
        "ranks")


def test_a_ranks_own_error_is_named_over_a_rank_the_agent_stopped(tmp_path):
    record_rank_error(tmp_path, rank=0, world_size=2, error="CustomRewardError: boom")
    text = SUMMARY.format(code=-15)  # rank 1 was SIGTERMed by the agent after rank 0 failed
    assert explain_failure(text, tmp_path, world_size=2) == (
        "rank 0 of 2: CustomRewardError: boom; torchrun stopped the other ranks")


def test_nothing_to_say_without_a_summary(tmp_path):
    assert explain_failure("Killed\n", tmp_path, world_size=2) is None


def test_worker_devices(monkeypatch):
    assert local_devices({"TUNEDECK_WORKER_DEVICES": "cuda:4"}) == Devices("cuda", 4)
    assert Devices("cuda", 2).ids == ("cuda:0", "cuda:1")
    monkeypatch.setenv("PATH", "/nonexistent")  # no nvidia-smi: the CPU cores this process may use
    cpu = local_devices({})
    assert cpu.kind == "cpu" and cpu.count >= 1 and all(i.startswith("cpu:") for i in cpu.ids)
