"""One deployment's supervisor: ``python -m worker.deployments.supervisor ID``, started by the
``tunedeck.deploy`` task (which returns at once, so the worker stays free for training).

It claims the row, merges the checkpoint into a local folder, starts the engine on a localhost
port (``transformers serve`` on CPU, ``vllm serve`` on CUDA workers) and the authenticated
pass-through (worker/deployments/proxy.py) on the deployment's port, heartbeats the row while
serving, stops both when the row asks it to, and marks the row failed with the engine's last log
lines if the engine dies."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from app.core.config import LOCAL_HOSTS, settings
from app.core.db import session_scope
from app.core.sql import update_one
from app.domain import deployments as domain
from app.domain.catalogue import ModelNotFound
from app.domain.models import Deployment, DeploymentStatus, Run, utcnow
from app.domain.reaper import heartbeat_interval
from worker.children import die_with_parent, environment
from worker.evaluation.evaluate import adapter_dir
from worker.exports import build
from worker.tasks import _log_tail
from worker.training.models import resolve_model

log = logging.getLogger(__name__)
S = DeploymentStatus
HEARTBEAT_S = heartbeat_interval(settings.worker_lost_after_s)
START_TIMEOUT_S = 900


class DeploymentFailed(RuntimeError):
    pass


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port(host: str, port: int) -> None:
    with socket.socket() as sock:
        # As uvicorn binds: a port held only by closed connections (TIME_WAIT) is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise DeploymentFailed(f"port {port} is already in use on {socket.gethostname()} "
                                   f"({exc.strerror}): choose another port, or none to let the "
                                   "worker pick a free one") from exc


def engine_command(engine: str, folder: Path, port: int, model_name: str) -> list[str]:
    if engine == "vllm":  # CUDA workers; not exercised on CPU (see docs)
        return ["vllm", "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
                "--served-model-name", model_name]
    return [sys.executable, "-c", "from transformers.cli.transformers import main; main()",
            "serve", str(folder), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]


def beat(deployment_id: int, **fields) -> Deployment | None:  # type: ignore[no-untyped-def]
    """Heartbeat (and ``fields``) on our row while it is active; the row, or None once it is not
    ours any more (the reaper failed it)."""
    with session_scope() as session:
        update_one(session, Deployment, Deployment.id == deployment_id,
                   Deployment.status.in_(domain.ACTIVE), Deployment.worker == identity(),
                   heartbeat_at=utcnow(), **fields)
        session.commit()
        row = session.get(Deployment, deployment_id)
        if row is None or row.status not in domain.ACTIVE or row.worker != identity():
            return None
        session.expunge(row)
        return row


def keep_beating(deployment_id: int, stopping: threading.Event) -> None:
    while not stopping.wait(HEARTBEAT_S):
        try:
            if beat(deployment_id) is None:
                return
        except Exception:  # a database blip: the next beat retries
            log.exception("heartbeat of deployment %s failed", deployment_id)


def serve(deployment_id: int, work: Path, stopping: threading.Event) -> None:
    import uvicorn

    from worker.deployments.proxy import make_app

    with session_scope() as session:
        claimed = update_one(session, Deployment, Deployment.id == deployment_id,
                             Deployment.status == S.starting, Deployment.worker.is_(None),
                             Deployment.stop_requested.is_(False), worker=identity(),
                             host=socket.gethostname(), started_at=utcnow(),
                             heartbeat_at=utcnow(), phase="merging the checkpoint")
        session.commit()
        if not claimed:
            log.info("deployment %s is not waiting for a worker: nothing to do", deployment_id)
            return
        row = session.get(Deployment, deployment_id)
        run = session.get(Run, row.run_id)
        engine, step, requested_port = row.engine, row.checkpoint_step, row.port
        model_name, key_hash, base_model, run_id = (row.model_name, row.api_key_hash,
                                                    run.base_model, run.id)
    # Beats from here on, also while the checkpoint merges and the engine loads (minutes on a
    # busy machine), so the reaper only fails a deployment whose supervisor is gone.
    pulse = threading.Thread(target=keep_beating, args=(deployment_id, stopping),
                             name="deployment-heartbeat", daemon=True)
    pulse.start()
    bind_host = settings.deployment_host
    if bind_host not in LOCAL_HOSTS and key_hash is None:
        raise DeploymentFailed(f"TUNEDECK_DEPLOYMENT_HOST={bind_host} listens beyond localhost: "
                               "set TUNEDECK_AUTH_TOKEN so deployments require an API key")
    port = requested_port or free_port(bind_host)
    check_port(bind_host, port)
    try:
        base = resolve_model(base_model, settings.model_cache_dir)
    except ModelNotFound as exc:
        raise DeploymentFailed(f"the run's base model is no longer loadable: {exc}") from exc
    folder = work / "model"
    build.merge(base, adapter_dir(run_id, step), folder)
    if beat(deployment_id, port=port, phase="starting the engine") is None:
        return
    internal = free_port("127.0.0.1")
    log_path = work / "engine.log"
    with open(log_path, "ab") as log_file:
        engine_proc = subprocess.Popen(
            engine_command(engine, folder, internal, model_name), stdout=log_file,
            stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            env=environment())
    app = make_app(upstream=f"http://127.0.0.1:{internal}", model_name=model_name,
                   engine_model=model_name if engine == "vllm" else str(folder),
                   api_key_hash=key_hash)
    server = uvicorn.Server(uvicorn.Config(app, host=bind_host, port=port, log_level="warning"))
    proxy = threading.Thread(target=server.run, name="deployment-proxy", daemon=True)
    proxy.start()
    try:
        supervise(deployment_id, engine_proc, internal, log_path, stopping)
    finally:
        server.should_exit = True
        stop_process(engine_proc)
        proxy.join(timeout=15)


def supervise(deployment_id: int, engine_proc: subprocess.Popen, internal: int, log_path: Path,
              stopping: threading.Event) -> None:
    serving = False
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        row = beat(deployment_id)
        if row is None:
            return  # failed by the reaper meanwhile: just stop
        if row.stop_requested or stopping.is_set():
            with session_scope() as session:
                domain.transition(session, deployment_id=deployment_id, to=S.stopped, phase=None,
                                  error=None if row.stop_requested else "the worker shut down")
            return
        code = engine_proc.poll()
        if code is not None:
            why = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            raise DeploymentFailed(f"the engine {why}:\n{_log_tail(log_path)}")
        if not serving:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{internal}/health", timeout=2).status_code == 200:
                    with session_scope() as session:
                        serving = domain.transition(session, deployment_id=deployment_id,
                                                    to=S.serving, phase=None)
                    continue
            if time.monotonic() > deadline:
                raise DeploymentFailed(f"the engine did not answer within {START_TIMEOUT_S} s:\n"
                                       f"{_log_tail(log_path)}")
        stopping.wait(HEARTBEAT_S if serving else 1.0)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(deployment_id: int) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    work = settings.resolved_data_dir / "deployments" / f"deployment-{deployment_id}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        serve(deployment_id, work, stopping)
    except Exception as exc:  # the row records why
        stopping.set()
        log.exception("deployment %s failed", deployment_id)
        message = str(exc) if isinstance(exc, DeploymentFailed) else f"{type(exc).__name__}: {exc}"
        with session_scope() as session:
            domain.transition(session, deployment_id=deployment_id, to=S.failed, phase=None,
                              only_if=Deployment.worker == identity(), error=message)
    finally:
        stopping.set()
        shutil.rmtree(work / "model", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
