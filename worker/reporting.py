"""The trainer's reporter backed by the database: metrics in batches, progress and ETA on the
run row, checkpoints recorded (and uploaded when artifact storage is remote), the cancel flag."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import insert, select

from app.core.db import session_scope
from app.core.storage import ArtifactStore
from app.domain import checkpoints, metrics
from app.domain.models import Run, Sample, utcnow
from app.domain.progress import record_progress, seconds_per_step
from app.domain.run_phases import set_phase

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
        self._last_progress_write = 0.0
        self._last_poll = 0.0
        self._stop = False
        self._progress: dict = {}
        # (step, monotonic time) of recent steps: the ETA's rate skips the first slow ones.
        self._marks: list[tuple[int, float]] = []
        with session_scope() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise LookupError(f"run {run_id} does not exist")
            self.strategy = run.strategy
            # Curves of an earlier attempt (resume) count when ranking checkpoints.
            self.series: dict[str, list[tuple[int, float]]] = defaultdict(list)
            for name, points in (
                metrics.read_series(session, run_ids=[run_id]).get(run_id, {}).items()
            ):
                self.series[name].extend(points)

    # -- Reporter protocol -------------------------------------------------------------------
    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        now = utcnow()
        for name, value in values.items():
            self._pending.append((step, name, float(value), now))
            self.series[name].append((step, float(value)))
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def progress(self, step: int, max_steps: int, epoch: float | None) -> None:
        now = time.monotonic()
        if not self._marks or step > self._marks[-1][0]:
            self._marks.append((step, now))
            del self._marks[:-STEP_MARKS]
        rate = seconds_per_step(self._marks)
        eta = max(0.0, (max_steps - step) * rate) if rate is not None and max_steps else None
        self._progress = {
            "step": step,
            "max_steps": max_steps or None,
            "epoch": epoch,
            "eta_seconds": eta,
        }
        if now - self._last_progress_write >= self.poll_interval_s or step == max_steps:
            self._write_progress()

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
            checkpoints.record_checkpoint(
                session, run=run, step=step, storage_key=key, series=dict(self.series)
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
        now = time.monotonic()
        if not self._stop and now - self._last_poll >= self.poll_interval_s:
            self._last_poll = now
            with session_scope() as session:
                self._stop = bool(
                    session.scalar(select(Run.cancel_requested).where(Run.id == self.run_id))
                )
        return self._stop

    def phase(self, name: str) -> None:
        with session_scope() as session:
            set_phase(session, self.run_id, name)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        if pending or self._progress:
            with session_scope() as session:
                metrics.log_batch(session, run_id=self.run_id, rows=pending)
                self._write_progress(session)

    # -- internals ---------------------------------------------------------------------------
    def _write_progress(self, session=None) -> None:  # type: ignore[no-untyped-def]
        if not self._progress:
            return
        self._last_progress_write = time.monotonic()
        if session is not None:
            record_progress(session, Run, self.run_id, **self._progress)
            return
        with session_scope() as own:
            record_progress(own, Run, self.run_id, **self._progress)


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
