"""The torchrun command of one host's node of a run over several hosts, checked against the
installed torch.distributed.run's own parser, and the waiting reason a run page shows."""

from __future__ import annotations

from torch.distributed.run import get_args_parser

from app.domain.models import Run, RunStatus, utcnow
from app.domain.run_phases import current_phase
from worker.distributed import gang_command


def test_each_node_joins_one_c10d_rendezvous_that_node_0_hosts():
    commands = [gang_command(7, num_nodes=2, node_rank=rank, num_processes=3,
                             endpoint="10.0.0.5:29411", join_timeout_s=90,
                             local_addr=f"10.0.0.{5 + rank}") for rank in (0, 1)]
    parsed = [get_args_parser().parse_args(command[3:]) for command in commands]
    for rank, args in enumerate(parsed):
        assert commands[rank][1:3] == ["-m", "torch.distributed.run"]
        assert (args.nnodes, args.nproc_per_node, args.node_rank) == ("2", "3", rank)
        assert (args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id) == (
            "c10d", "10.0.0.5:29411", "tunedeck-run-7")
        assert args.max_restarts == 0 and args.local_addr == f"10.0.0.{5 + rank}"
        assert args.module and args.training_script == "worker.train_process"
        assert args.training_script_args == ["7"]
    assert parsed[0].rdzv_conf == "join_timeout=90,is_host=true"
    assert parsed[1].rdzv_conf == "join_timeout=90,is_host=false"


def test_a_gang_run_waiting_for_hosts_says_why():
    run = Run(status=RunStatus.queued, phase="waiting_for_devices", phase_started_at=utcnow(),
              waiting_reason="2 hosts × 1 devices needed; queue 'gang' has 1 live host: a: ready")
    phase, label, _ = current_phase(run)
    assert phase == "waiting_for_devices"
    assert label == ("waiting for hosts: 2 hosts × 1 devices needed; queue 'gang' has 1 live "
                     "host: a: ready")
    run.waiting_reason = None  # a one-host run waiting for its host's devices
    assert current_phase(run)[1].startswith("waiting for devices: other runs hold")
