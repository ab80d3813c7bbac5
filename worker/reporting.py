"""The trainer's reporter backed by the database: metrics in batches, progress and ETA on the
run row, checkpoints recorded (and uploaded when artifact storage is remote), the cancel flag,
and, for a trial of an Optuna sweep with a pruner, the pruner asked each time the sweep's metric
is logged (domain/sweep_search.py): a trial it prunes stops through the cancel flag.

The training loop never waits on the database for metrics, progress or the cancel flag: its
hooks only update memory, and a background thread writes batches and polls the flag (a
database round trip per step was several percent of a small model's step time, and far more
whenever another process held the SQLite lock). Checkpoints and samples, a few per run, are
written at once."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import insert, select

from app.core.db import session_scope
from app.core.storage import ArtifactStore
from app.domain import checkpoints, metrics
from app.domain.models import Run, Sample, Sweep, utcnow
from app.domain.progress import record_progress, seconds_per_step
from app.domain.run_phases import set_phase

log = logging.getLogger(__name__)
STEP_MARKS = 60


class DbReporter:
    def __init__(
        self,
        *,
        run_id: int,
        store: ArtifactStore,
        checkpoint_prefix: str,
        flush_interval_s: float = 2.0,
        poll_interval_s: float = 0.25,
    ) -> None:
        self.run_id = run_id
        self.store = store
        self.checkpoint_prefix = checkpoint_prefix
        self.flush_interval_s = flush_interval_s
        self.poll_interval_s = poll_interval_s
        self._pending: list[tuple] = []
        self._last_flush = time.monotonic()
        self._stop = False
        self._progress: dict = {}
        self._progress_dirty = False
        # (step, monotonic time) of recent steps: the ETA's rate skips the first slow ones.
        self._marks: list[tuple[int, float]] = []
        self._lock = threading.Lock()  # guards _pending and _progress between the two threads
        self._io = threading.Lock()  # one database write at a time, in order
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._prune_due = False  # the sweep's metric was logged since the pruner last judged
        with session_scope() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise LookupError(f"run {run_id} does not exist")
            self.strategy = run.strategy
            sweep = session.get(Sweep, run.sweep_id) if run.sweep_id is not None else None
            # The metric an Optuna sweep's pruner judges this trial by; None: nothing to ask.
            self.prune_metric = (sweep.metric if sweep is not None and sweep.kind == "optuna"
                                 and sweep.pruner not in (None, "none") else None)
            # Curves of an earlier attempt (resume) count when ranking checkpoints.
            self.series: dict[str, list[tuple[int, float]]] = defaultdict(list)
            for name, points in (
                metrics.read_series(session, run_ids=[run_id]).get(run_id, {}).items()
            ):
                self.series[name].extend(points)
        if self.prune_metric is not None:  # Optuna's import (a second) before training, not
            import app.domain.sweep_search  # noqa: F401  # while the first eval waits on it
        self._writer = threading.Thread(target=self._write_in_background, daemon=True,
                                        name=f"run-{run_id}-reporter")
        self._writer.start()

    # -- Reporter protocol -------------------------------------------------------------------
    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        now = utcnow()
        with self._lock:
            for name, value in values.items():
                self._pending.append((step, name, float(value), now))
                self.series[name].append((step, float(value)))
        if self.prune_metric is not None and self.prune_metric in values:
            self._prune_due = True
            self._wake.set()  # judged at once, not at the next flush: a trial may be short

    def progress(self, step: int, max_steps: int, epoch: float | None) -> None:
        now = time.monotonic()
        if not self._marks or step > self._marks[-1][0]:
            self._marks.append((step, now))
            del self._marks[:-STEP_MARKS]
        rate = seconds_per_step(self._marks)
        eta = max(0.0, (max_steps - step) * rate) if rate is not None and max_steps else None
        with self._lock:
            self._progress = {
                "step": step,
                "max_steps": max_steps or None,
                "epoch": epoch,
                "eta_seconds": eta,
            }
            self._progress_dirty = True
        if step == max_steps:
            self._wake.set()  # the last step shows at once

    def checkpoint_saved(self, step: int, path: Path) -> None:
        self.flush()
        key = f"{self.checkpoint_prefix}/checkpoint-{step}"
        local_target = self.store.local_path(key) if self.store.is_local else None
        if local_target is None or local_target.resolve() != Path(path).resolve():
            self.store.put_dir(Path(path), key)
        with session_scope() as session:
            run = session.get(Run, self.run_id)
            if run is None:
                raise LookupError(f"run {self.run_id} not found")
            with self._lock:
                series = {name: list(points) for name, points in self.series.items()}
            checkpoints.record_checkpoint(
                session, run=run, step=step, storage_key=key, series=series
            )

    def samples(self, step: int, rows: list[dict]) -> None:
        if not rows:
            return
        payload = [
            {
                "run_id": self.run_id,
                "step": step,
                "prompt": str(row.get("prompt", "")),
                "completion": str(row.get("completion", "")),
                "rewards": row.get("rewards", {}),
                "extra": {
                    k: v for k, v in row.items() if k not in ("prompt", "completion", "rewards")
                },
                "created_at": utcnow(),
            }
            for row in rows
        ]
        with session_scope() as session:
            session.execute(insert(Sample), payload)

    def should_stop(self) -> bool:
        return self._stop  # polled by the background thread every poll_interval_s

    def phase(self, name: str) -> None:
        with session_scope() as session:
            set_phase(session, self.run_id, name)

    def flush(self) -> None:
        """Write every pending metric and the latest progress now (checkpoints, the end)."""
        with self._io:
            with self._lock:
                pending, self._pending = self._pending, []
                progress, self._progress_dirty = dict(self._progress), False
            self._last_flush = time.monotonic()
            if pending or progress:
                with session_scope() as session:
                    metrics.log_batch(session, run_id=self.run_id, rows=pending)
                    if progress:
                        record_progress(session, Run, self.run_id, **progress)

    # -- internals ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the background thread and write what is pending (the training process's exit
        ends the thread too; long-lived callers close)."""
        self._closed.set()
        self._wake.set()
        self._writer.join(timeout=10)
        self.flush()

    def _write_in_background(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.poll_interval_s)
            if self._closed.is_set():
                return
            self._wake.clear()
            try:
                self._poll_cancel()
                if self._prune_due:
                    self._prune_due = False
                    self.flush()
                    self._ask_pruner()
                elif time.monotonic() - self._last_flush >= self.flush_interval_s:
                    self.flush()
                elif self._progress_dirty:
                    self._write_progress()
            except Exception:  # a database blip: try again next time round
                log.exception("reporting run %s failed; retrying", self.run_id)

    def _poll_cancel(self) -> None:
        if self._stop:
            return
        with session_scope() as session:
            self._stop = bool(
                session.scalar(select(Run.cancel_requested).where(Run.id == self.run_id)))

    def _ask_pruner(self) -> None:
        from app.domain.sweep_search import prune_if_behind  # imports Optuna: pruned sweeps only

        if self._stop:
            return
        with session_scope() as session:
            if prune_if_behind(session, run_id=self.run_id):
                log.info("run %s: pruned by its sweep's pruner", self.run_id)
                self._stop = True

    def _write_progress(self) -> None:
        with self._io:
            with self._lock:
                progress, self._progress_dirty = dict(self._progress), False
            if progress:
                with session_scope() as session:
                    record_progress(session, Run, self.run_id, **progress)


class RankReporter:
    """The reporter of one rank among torchrun's: rank 0 reports through ``inner`` (the others
    pass None and report nothing, so no metric, checkpoint or sample is written twice), and every
    rank stops at the step where rank 0 saw the cancel flag.

    should_stop is called by every rank at the end of every step (ReporterCallback.on_step_end),
    so rank 0's answer can be broadcast there: the ranks never disagree about the last step.
    """

    def __init__(self, inner: DbReporter | None) -> None:
        self.inner = inner

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        if self.inner is not None:
            self.inner.log_metrics(step, values)

    def progress(self, step: int, max_steps: int, epoch: float | None) -> None:
        if self.inner is not None:
            self.inner.progress(step, max_steps, epoch)

    def checkpoint_saved(self, step: int, path: Path) -> None:
        if self.inner is not None:
            self.inner.checkpoint_saved(step, path)

    def samples(self, step: int, rows: list[dict]) -> None:
        if self.inner is not None:
            self.inner.samples(step, rows)

    def phase(self, name: str) -> None:
        if self.inner is not None:
            self.inner.phase(name)

    def flush(self) -> None:
        if self.inner is not None:
            self.inner.flush()

    def should_stop(self) -> bool:
        stop = self.inner.should_stop() if self.inner is not None else False
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return stop
        device = (torch.device("cuda", torch.cuda.current_device())
                  if dist.get_backend() == "nccl" else torch.device("cpu"))
        flag = torch.tensor([int(stop)], dtype=torch.int32, device=device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())
