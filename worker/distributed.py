"""A run on several processes: the torchrun command that starts its ranks, and, when torchrun
exits with an error, which rank failed first and why.

Under torchrun a rank that raises writes its error to ``rank-N.error`` beside the run's log and
exits non-zero, so that the agent stops the other ranks (which would otherwise wait for it in
their next collective until its timeout). The others then fail too, with a transport error
("Connection closed by peer"): that is a consequence, not the cause, so the run's error names the
rank whose own error (or signal: SIGKILL, out of memory) came first.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

# Errors a rank gets when another rank went away: never the root cause when a peer failed too.
PEER_GONE = re.compile(
    r"Connection closed by peer|Connection reset by peer|Broken pipe|DistNetworkError|"
    r"NCCL communicator was aborted|ProcessGroup\w* .*(?:aborted|timed? ?out)|"
    r"Socket Timeout|recvBytes|Timed out waiting for",
    re.I,
)
_FAILURE = re.compile(
    r"host\s*:\s*(?P<host>\S+)\s*\n\s*rank\s*:\s*(?P<rank>\d+).*?\n\s*exitcode\s*:\s*"
    r"(?P<code>-?\d+)"
)


def training_command(run_id: int, *, num_processes: int) -> list[str]:
    """The training child: one process, or torchrun's elastic agent starting ``num_processes``
    ranks of the same module on this host (a c10d rendezvous on a free local port)."""
    module = ["-m", "worker.train_process", str(run_id)]
    if num_processes == 1:
        return [sys.executable, *module]
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nnodes", "1", "--nproc_per_node", str(num_processes),
        "--max_restarts", "0", "--monitor_interval", "1", *module,
    ]  # fmt: skip


def gang_command(run_id: int, *, num_nodes: int, node_rank: int, num_processes: int,
                 endpoint: str, join_timeout_s: int, local_addr: str) -> list[str]:
    """One host's torchrun node of a run over ``num_nodes`` hosts: a c10d rendezvous at
    ``endpoint`` (hosted by node 0's agent), ``num_processes`` ranks here, no restarts.

    The global ranks follow the rendezvous's order of the nodes, not ``node_rank``: rank 0 (the
    one that reports) may train on any host."""
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", str(num_nodes), "--node-rank", str(node_rank),
        "--nproc-per-node", str(num_processes),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
        "--rdzv-id", f"tunedeck-run-{run_id}",
        "--rdzv-conf", f"join_timeout={join_timeout_s},is_host={str(node_rank == 0).lower()}",
        "--local-addr", local_addr,
        "--max-restarts", "0", "--monitor-interval", "1",
        "-m", "worker.train_process", str(run_id),
    ]  # fmt: skip


def error_file(log_dir: Path, rank: int) -> Path:
    return Path(log_dir) / f"rank-{rank}.error"


def clear_rank_errors(log_dir: Path) -> None:
    """Before an attempt: an earlier attempt's errors must not explain this one's failure."""
    for path in Path(log_dir).glob("rank-*.error"):
        path.unlink(missing_ok=True)


def record_rank_error(log_dir: Path, *, rank: int, world_size: int, error: str) -> None:
    path = error_file(log_dir, rank)
    path.write_text(json.dumps({"rank": rank, "world_size": world_size, "error": error}))


@dataclass(frozen=True)
class RankFailure:
    rank: int
    host: str
    exitcode: int
    error: str | None  # what the rank raised, when it could say

    @property
    def consequential(self) -> bool:
        """Failed because a peer went away (or was stopped by the agent), not by itself."""
        if self.error is not None:
            return bool(PEER_GONE.search(self.error))
        return self.exitcode == -signal.SIGTERM

    def sentence(self, world_size: int) -> str:
        if self.error is not None:
            return f"rank {self.rank} of {world_size}: {self.error}"
        code = self.exitcode
        how = (f"was killed by signal {-code}" + (" (out of memory?)"
                                                  if -code == signal.SIGKILL else "")
               if code < 0 else f"exited with code {code}")
        return f"training rank {self.rank} of {world_size} {how}"


def rank_failures(log_text: str, log_dir: Path) -> list[RankFailure]:
    """The failed ranks torchrun reported in its summary (at the end of the log), with the error
    each wrote itself, if any."""
    _, marker, summary = log_text.rpartition("FAILED\n")
    found: dict[int, RankFailure] = {}
    for match in _FAILURE.finditer(summary if marker else ""):
        rank = int(match.group("rank"))
        found[rank] = RankFailure(rank=rank, host=match.group("host"),
                                  exitcode=int(match.group("code")),
                                  error=_read_error(error_file(log_dir, rank)))
    for path in Path(log_dir).glob("rank-*.error"):  # ranks the summary left out
        rank = int(path.stem.split("-", 1)[1])
        if rank not in found and (error := _read_error(path)) is not None:
            found[rank] = RankFailure(rank=rank, host="", exitcode=1, error=error)
    return [found[rank] for rank in sorted(found)]


def root_cause(failures: list[RankFailure]) -> RankFailure | None:
    """The failure that explains the others: a rank's own error, then a signal, then the rest."""
    if not failures:
        return None
    own = [f for f in failures if not f.consequential]
    errors = [f for f in own if f.error is not None]
    return (errors or own or failures)[0]


def explain_failure(log_text: str, log_dir: Path, *, world_size: int) -> str | None:
    """One sentence for the run page: which rank failed and why; None when torchrun said
    nothing usable."""
    cause = root_cause(rank_failures(log_text, log_dir))
    if cause is None:
        return None
    return f"{cause.sentence(world_size)}; torchrun stopped the other ranks"


def _read_error(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text())["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
