"""The training loop's reporter hooks only touch memory: a background thread writes metrics and
progress to the database and polls the cancel flag, and close() writes everything at once and
stops it."""

from __future__ import annotations

import time

from sqlalchemy import func, select, update

from app.core.db import session_scope
from app.core.storage import make_store
from app.domain.models import Metric, Run, RunStatus
from tests.factories import add_run
from worker.reporting import DbReporter


def eventually(check, timeout: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("not within the deadline")


def test_background_thread_writes_progress_metrics_and_sees_cancel(migrated_app):
    with session_scope() as session:
        run_id = add_run(session, status=RunStatus.running).id
    reporter = DbReporter(run_id=run_id, store=make_store(), checkpoint_prefix=f"runs/{run_id}",
                          flush_interval_s=0.2, poll_interval_s=0.05)
    reporter.progress(0, 10, 0.0)
    for step in range(1, 4):
        reporter.log_metrics(step, {"loss": 1.0 / step, "learning_rate": 1e-4})
        reporter.progress(step, 10, step / 10)
    assert reporter.should_stop() is False

    def written():
        with session_scope() as session:
            step = session.scalar(select(Run.step).where(Run.id == run_id))
            rows = session.scalar(select(func.count()).select_from(Metric)
                                  .where(Metric.run_id == run_id))
            return step == 3 and rows == 6

    eventually(written)  # no flush() called: the thread wrote them
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))
    eventually(reporter.should_stop)

    reporter.log_metrics(4, {"loss": 0.2})
    reporter.progress(4, 10, 0.4)
    reporter.close()  # stops the thread and writes what is pending before it returns
    assert not reporter._writer.is_alive()
    with session_scope() as session:
        assert session.scalar(select(Run.step).where(Run.id == run_id)) == 4
        assert session.scalar(select(func.count()).select_from(Metric)
                              .where(Metric.run_id == run_id)) == 7


def test_an_optuna_trial_behind_the_others_stops_at_its_pruners_word(migrated_app):
    """The sweep's metric logged: the thread writes it and asks the pruner at once (no flush
    interval to wait for); a trial behind the median stops through the cancel flag."""
    from app.domain import metrics
    from app.domain.models import Sweep
    from app.domain.runs import stopped_status

    with session_scope() as session:
        sweep = Sweep(name="prune", kind="optuna", base={"strategy": "sft"},
                      space={"learning_rate": [1e-3, 1e-5]}, trials=[], metric="eval_loss",
                      direction="min", budget=2, pruner="median",
                      pruner_options={"n_startup_trials": 1})
        session.add(sweep)
        session.flush()
        done = add_run(session, name="done", status=RunStatus.completed, sweep_id=sweep.id)
        metrics.log_batch(session, run_id=done.id, rows=[(2, "eval_loss", 1.0, None)])
        trial = add_run(session, name="trial", status=RunStatus.running, sweep_id=sweep.id)
        sweep.trials = [{"params": {"learning_rate": 1e-3}, "run_id": done.id},
                        {"params": {"learning_rate": 1e-5}, "run_id": trial.id}]
        sweep.launched = 2
        run_id = trial.id
    reporter = DbReporter(run_id=run_id, store=make_store(), checkpoint_prefix=f"runs/{run_id}",
                          flush_interval_s=60, poll_interval_s=0.05)
    assert reporter.prune_metric == "eval_loss"
    reporter.log_metrics(1, {"loss": 3.0})  # not the sweep's metric: nothing asked
    reporter.log_metrics(2, {"eval_loss": 2.5})
    eventually(reporter.should_stop, timeout=20)
    reporter.close()
    with session_scope() as session:
        run = session.get(Run, run_id)
        assert run.cancel_requested and "median pruner at step 2" in run.prune_reason
        assert stopped_status(session, run_id) == RunStatus.pruned
