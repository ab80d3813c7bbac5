"""Mirrors of a run's metrics to experiment trackers (MLflow, TensorBoard, W&B, Trackio).

``with_trackers`` wraps the database reporter: every value it stores is also queued, as the
same (step, name, float) triple, for a background thread that writes it to each tracker. The
queue is bounded and never waited on, so training never blocks on a tracker. A tracker that
fails is recorded once on the run row (``tracker_status``, shown as a health warning on the run
page) and written to no more; TuneDeck's own database stays the source of truth.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any

from app.core.db import session_scope
from app.core.storage import ArtifactStore
from app.domain import trackers
from app.domain.models import Run

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
"""Metric lines waiting for the trackers; beyond this a line is dropped (and counted)."""
CLOSE_TIMEOUT_S = 20.0
"""How long the end of a run waits for the trackers to take what is queued."""
MLFLOW_TIMEOUT_S = 10
"""One MLflow request's timeout. Its own retries are turned off: a down server is reported
after one try instead of after minutes of back-off."""
WANDB_INIT_TIMEOUT_S = 30
"""How long W&B may take to start its run (WANDB_INIT_TIMEOUT on the worker overrides)."""


def short_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def mlflow_key(name: str) -> str:
    """MLflow takes letters, digits, _ - . / and spaces in metric names."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)[:250]


class MlflowSink:
    name = "mlflow"

    def __init__(self, *, run_id: int, run_name: str, config: dict[str, Any],
                 params: dict[str, Any], previous: dict[str, Any]) -> None:
        self.tracking_uri = config["tracking_uri"]
        self.experiment = config.get("experiment") or "tunedeck"
        self.tunedeck_run_id = run_id
        self.run_name = run_name
        self.params = params
        # A resumed run keeps writing to the MLflow run of its first attempt.
        self.mlflow_run_id = (previous.get("mlflow_run_id")
                              if previous.get("tracking_uri") == self.tracking_uri else None)
        self.client = None

    def open(self) -> dict[str, Any]:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(MLFLOW_TIMEOUT_S))
        try:
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise RuntimeError("the worker has no MLflow client: pip install "
                               "'tunedeck[trackers]' (mlflow-skinny) where it runs") from exc

        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        if self.mlflow_run_id is None:
            experiment = self.client.get_experiment_by_name(self.experiment)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else self.client.create_experiment(self.experiment))
            created = self.client.create_run(
                experiment_id, run_name=self.run_name,
                tags={"tunedeck.run_id": str(self.tunedeck_run_id)})
            self.mlflow_run_id = created.info.run_id
            params = [Param(key, str(value)[:6000]) for key, value in sorted(self.params.items())]
            for start in range(0, len(params), 100):  # MLflow takes 100 params per batch
                self.client.log_batch(self.mlflow_run_id, params=params[start:start + 100])
        return {"tracking_uri": self.tracking_uri, "experiment": self.experiment,
                "mlflow_run_id": self.mlflow_run_id}

    def write(self, lines: list[tuple[int, str, float, int]]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(mlflow_key(name), value, stamp, step)
                   for step, name, value, stamp in lines]
        for start in range(0, len(metrics), 1000):  # MLflow takes 1000 metrics per batch
            self.client.log_batch(self.mlflow_run_id, metrics=metrics[start:start + 1000])

    def close(self, ok: bool) -> None:
        self.client.set_terminated(self.mlflow_run_id, "FINISHED" if ok else "FAILED")


class TensorBoardSink:
    name = "tensorboard"

    def __init__(self, *, run_id: int, logdir: Path, store: ArtifactStore) -> None:
        self.run_id = run_id
        self.logdir = logdir
        self.store = store
        self.writer = None

    def open(self) -> dict[str, Any]:
        try:
            from tensorboardX import SummaryWriter
        except ImportError as exc:
            raise RuntimeError("the worker has no TensorBoard writer: pip install "
                               "'tunedeck[trackers]' (tensorboardX) where it runs") from exc

        self.logdir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(logdir=str(self.logdir), flush_secs=10)
        return {"logdir": trackers.tensorboard_key(self.run_id)}

    def write(self, lines: list[tuple[int, str, float, int]]) -> None:
        for step, name, value, stamp in lines:
            self.writer.add_scalar(name, value, global_step=step, walltime=stamp / 1000)

    def close(self, ok: bool) -> None:
        self.writer.close()
        key = trackers.tensorboard_key(self.run_id)
        local = self.store.local_path(key) if self.store.is_local else None
        if local is None or local.resolve() != self.logdir.resolve():
            self.store.put_dir(self.logdir, key)


def by_step(lines: list[tuple[int, str, float, int]]) -> list[tuple[int, dict[str, float]]]:
    """Consecutive lines of one step as one row: (step, {name: value})."""
    rows: list[tuple[int, dict[str, float]]] = []
    for step, name, value, _stamp in lines:
        if not rows or rows[-1][0] != step:
            rows.append((step, {}))
        rows[-1][1][name] = value
    return rows


class WandbSink:
    """A W&B run; offline (the run's mode, or WANDB_MODE=offline) writes only local files, under
    WANDB_DIR when set, else the run's output folder, for `wandb sync`."""

    name = "wandb"
    STEP = "global_step"

    def __init__(self, *, run_id: int, run_name: str, config: dict[str, Any],
                 params: dict[str, Any], previous: dict[str, Any], output_dir: Path) -> None:
        self.project = config.get("project") or "tunedeck"
        self.entity = config.get("entity")
        self.mode = config.get("mode")
        self.tunedeck_run_id = run_id
        self.run_name = run_name
        self.params = params
        self.dir = Path(os.environ.get("WANDB_DIR") or output_dir)
        # A resumed run keeps writing to the W&B run of its first attempt.
        self.wandb_run_id = (previous.get("wandb_run_id")
                             if previous.get("project") == self.project else None)
        self.run = None

    def open(self) -> dict[str, Any]:
        os.environ.setdefault("WANDB_INIT_TIMEOUT", str(WANDB_INIT_TIMEOUT_S))
        try:
            import wandb
        except ImportError as exc:
            raise RuntimeError("the worker has no W&B client: pip install "
                               "'tunedeck[trackers]' (wandb) where it runs") from exc

        self.dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=self.project, entity=self.entity, name=self.run_name, config=self.params,
            mode=self.mode, dir=str(self.dir), id=self.wandb_run_id,
            resume="allow" if self.wandb_run_id else None,
            tags=["tunedeck"], notes=f"TuneDeck run {self.tunedeck_run_id}",
            settings=wandb.Settings(console="off", silent=True, x_disable_stats=True,
                                    save_code=False, disable_git=True))
        # TuneDeck's steps as the x axis: W&B's own step must only grow, and a resumed run
        # logs again from its checkpoint's step.
        self.run.define_metric(self.STEP)
        self.run.define_metric("*", step_metric=self.STEP)
        offline = self.run.settings.mode == "offline"
        return {"project": self.project, "entity": self.entity, "wandb_run_id": self.run.id,
                "mode": self.run.settings.mode,
                "url": None if offline else self.run.url,
                "offline_dir": str(Path(self.run.dir).parent) if offline else None}

    def write(self, lines: list[tuple[int, str, float, int]]) -> None:
        for step, values in by_step(lines):
            self.run.log({**values, self.STEP: step})

    def close(self, ok: bool) -> None:
        self.run.finish(exit_code=0 if ok else 1)


class TrackioSink:
    """A Trackio run in its local database (TRACKIO_DIR on the worker)."""

    name = "trackio"

    def __init__(self, *, run_id: int, run_name: str, config: dict[str, Any],
                 params: dict[str, Any]) -> None:
        self.project = config.get("project") or "tunedeck"
        # One name per TuneDeck run, so that a resumed run adds to the same Trackio run.
        self.run_name = f"{run_name} #{run_id}"
        self.params = params
        self.run = None

    def open(self) -> dict[str, Any]:
        try:
            import trackio
        except ImportError as exc:
            raise RuntimeError("the worker has no Trackio client: pip install "
                               "'tunedeck[trackers]' (trackio) where it runs") from exc

        self.run = trackio.init(project=self.project, name=self.run_name, config=self.params,
                                resume="allow", auto_log_cpu=False, auto_log_gpu=False)
        return {"project": self.project, "trackio_run": self.run_name,
                "trackio_dir": str(trackio.TRACKIO_DIR)}

    def write(self, lines: list[tuple[int, str, float, int]]) -> None:
        for step, values in by_step(lines):
            self.run.log(values, step=step)

    def close(self, ok: bool) -> None:
        self.run.finish()


class TrackerMirror:
    """A background thread that writes queued metric lines to each sink."""

    def __init__(self, run_id: int, sinks: list) -> None:
        self.run_id = run_id
        self.sinks = sinks
        self.points = {sink.name: 0 for sink in sinks}
        self.dropped = 0
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self.thread = threading.Thread(target=self._loop, name="tracker-mirror", daemon=True)
        self.thread.start()

    def put(self, step: int, values: dict[str, float]) -> None:
        stamp = int(time.time() * 1000)
        for name, value in values.items():
            try:
                self.queue.put_nowait((step, name, float(value), stamp))
            except queue.Full:
                self.dropped += 1

    def close(self, ok: bool) -> None:
        self.queue.put((None, ok))  # the end marker may wait for room; bounded by the join
        self.thread.join(CLOSE_TIMEOUT_S)
        if self.thread.is_alive():
            for sink in self.sinks:
                self._fail(sink, f"still writing {CLOSE_TIMEOUT_S:.0f} s after the run ended",
                           None)

    # -- the thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        for sink in list(self.sinks):
            self._call(sink, "open", None)  # a sink that cannot open removes itself
        while True:
            item = self.queue.get()
            lines = [item]
            while len(lines) < 5000:
                try:
                    lines.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            end = next((line for line in lines if line[0] is None), None)
            lines = [line for line in lines if line[0] is not None]
            if lines:
                for sink in list(self.sinks):
                    if self._call(sink, "write", lines):
                        self.points[sink.name] += len(lines)
            if end is not None:
                for sink in list(self.sinks):
                    if self._call(sink, "close", end[1]):
                        self._record(sink.name, state="ok", points=self.points[sink.name],
                                     dropped=self.dropped, finished=True)
                return

    def _call(self, sink, method: str, arg: Any) -> bool:  # type: ignore[no-untyped-def]
        try:
            result = getattr(sink, method)() if method == "open" else getattr(sink, method)(arg)
        except Exception as exc:  # a tracker's failure never reaches training
            log.warning("%s mirror failed (%s): %s", sink.name, method, exc)
            step = arg[-1][0] if method == "write" and arg else None
            self._fail(sink, short_error(exc), step)
            return False
        if method == "open":
            self._record(sink.name, state="ok", error=None, failed_at_step=None,
                         points=self.points[sink.name], finished=False, **result)
        return True

    def _fail(self, sink, error: str, step: int | None) -> None:  # type: ignore[no-untyped-def]
        if sink in self.sinks:
            self.sinks.remove(sink)
        self._record(sink.name, state="failing", error=error, failed_at_step=step,
                     points=self.points[sink.name])

    def _record(self, tracker: str, **fields: Any) -> None:
        try:
            with session_scope() as session:
                trackers.record_status(session, self.run_id, tracker, **fields)
        except Exception:  # the status is a courtesy; never let it stop the mirror
            log.exception("could not record the %s mirror's status", tracker)


class MirroredReporter:
    """The reporter training talks to, with every logged metric also sent to the trackers."""

    def __init__(self, inner, mirror: TrackerMirror) -> None:  # type: ignore[no-untyped-def]
        self._inner = inner
        self._mirror = mirror

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        self._inner.log_metrics(step, values)
        self._mirror.put(step, values)

    def close(self, ok: bool = True) -> None:
        try:
            self._mirror.close(ok)
        except Exception:
            log.exception("closing the tracker mirrors failed")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _NoMirror:
    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self._inner = inner

    def close(self, ok: bool = True) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def with_trackers(reporter, *, run_id: int, output_dir: Path, store: ArtifactStore):  # type: ignore[no-untyped-def]
    """The reporter, mirrored to the run's trackers (unchanged when it has none)."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            return _NoMirror(reporter)
        config = run.trackers or {}
        status = run.tracker_status or {}
        run_name = run.name
        params = {"strategy": run.strategy, "base_model": run.base_model,
                  **{k: v for k, v in (run.hyperparameters or {}).items() if v is not None}}
    sinks: list = []
    if config.get("mlflow"):
        sinks.append(MlflowSink(run_id=run_id, run_name=run_name, config=config["mlflow"],
                                params=params, previous=status.get("mlflow", {})))
    if config.get("tensorboard"):
        sinks.append(TensorBoardSink(run_id=run_id, logdir=output_dir / "tensorboard",
                                     store=store))
    if config.get("wandb"):
        sinks.append(WandbSink(run_id=run_id, run_name=run_name, config=config["wandb"],
                               params=params, previous=status.get("wandb", {}),
                               output_dir=output_dir))
    if config.get("trackio"):
        sinks.append(TrackioSink(run_id=run_id, run_name=run_name, config=config["trackio"],
                                 params=params))
    if not sinks:
        return _NoMirror(reporter)
    return MirroredReporter(reporter, TrackerMirror(run_id, sinks))
