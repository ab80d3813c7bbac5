"""Optuna sweeps against a real SQLite database: the next trial asked of a study rebuilt from the
sweep's rows (seeded: same seed and history, same params; inside the space, log ranges spread
over magnitudes; TPE learning from finished trials), the pruners' decisions from fabricated
intermediate values, and a pruned trial ending the sweep as a finished one."""

from __future__ import annotations

import math
import statistics

import pytest
from sqlalchemy.orm import sessionmaker

from app.core.db import make_engine
from app.domain import metrics, sweep_search, sweeps
from app.domain.models import Base, Run, RunStatus, Sweep, SweepStatus
from app.domain.runs import stopped_status, transition
from tests.factories import add_run

SPACE = {"learning_rate": {"low": 1e-6, "high": 1e-1, "scale": "log"},
         "lora_r": {"low": 2, "high": 16},
         "lora_target_modules": [["q_proj", "v_proj"], "all-linear"]}
INTEGERS = sweeps.field_types("sft")


@pytest.fixture
def session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        yield session
    engine.dispose()


def make_sweep(session, *, space=None, seed=0, pruner="median", pruner_options=None,
               budget=4) -> Sweep:
    sweep = Sweep(name="search", kind="optuna", base={"strategy": "sft"},
                  space=space or SPACE, trials=[], metric="eval_loss", direction="min",
                  budget=budget, seed=seed, pruner=pruner, pruner_options=pruner_options)
    session.add(sweep)
    session.commit()
    return sweep


def add_trial(session, sweep: Sweep, params: dict, *, status: RunStatus,
              curve: dict[int, float]) -> Run:
    """A launched trial: its entry in ``sweep.trials``, its run, its logged eval_loss."""
    run = add_run(session, name=f"t{len(sweep.trials)}", status=status, sweep_id=sweep.id,
                  hyperparameters=dict(params))
    metrics.log_batch(session, run_id=run.id,
                      rows=[(step, "eval_loss", value, None) for step, value in curve.items()])
    sweep.trials = [*sweep.trials, {"params": params, "run_id": run.id}]
    sweep.launched = len(sweep.trials)
    session.commit()
    return run


def history(session, sweep: Sweep) -> None:
    for lr, loss in ((1e-3, 0.9), (1e-5, 1.4), (3e-2, 2.0)):
        add_trial(session, sweep, {"learning_rate": lr, "lora_r": 8,
                                   "lora_target_modules": "all-linear"},
                  status=RunStatus.completed, curve={2: loss + 0.3, 4: loss})


def test_same_seed_and_history_ask_the_same_params(session):
    first, second, other = (make_sweep(session, seed=seed) for seed in (7, 7, 8))
    for sweep in (first, second, other):
        history(session, sweep)
    asked = sweep_search.ask(session, first, INTEGERS)
    assert sweep_search.ask(session, second, INTEGERS) == asked
    assert sweep_search.ask(session, first, INTEGERS) == asked  # asking changes nothing
    assert sweep_search.ask(session, other, INTEGERS) != asked
    assert 1e-6 <= asked["learning_rate"] <= 1e-1
    assert isinstance(asked["lora_r"], int) and 2 <= asked["lora_r"] <= 16
    # A list value Optuna cannot hold (a list) comes back as the list itself.
    assert asked["lora_target_modules"] in (["q_proj", "v_proj"], "all-linear")


def test_each_new_trial_draws_afresh_and_a_log_range_spreads_over_magnitudes(session):
    sweep = make_sweep(session, seed=3)
    drawn = []
    for _ in range(30):  # random startup trials: each number seeds its own draw
        params = sweep_search.ask(session, sweep, INTEGERS)
        drawn.append(params["learning_rate"])
        add_trial(session, sweep, params, status=RunStatus.failed, curve={})
    assert len(set(drawn)) == len(drawn)
    assert all(1e-6 <= lr <= 1e-1 for lr in drawn)
    # Log-uniform over five decades: about 60% below 1e-3 (linear would put ~1% there).
    assert sum(lr < 1e-3 for lr in drawn) >= 10
    assert any(lr < 1e-5 for lr in drawn)


def test_tpe_learns_from_finished_trials(session):
    space = {"learning_rate": {"low": 1e-6, "high": 1e-1, "scale": "log"}}
    asked = []
    for seed in range(5):
        sweep = make_sweep(session, space=space, seed=seed)
        for i in range(14):  # past TPE's 10 random startup trials: the best sit near 3e-2
            lr = 10 ** (-6 + 5 * i / 13)
            add_trial(session, sweep, {"learning_rate": lr}, status=RunStatus.completed,
                      curve={4: abs(math.log10(lr) + 1.5)})
        asked.append(math.log10(sweep_search.ask(session, sweep, INTEGERS)["learning_rate"]))
    assert abs(statistics.median(asked) + 1.5) < 0.75, asked


def judge(session, sweep, run) -> bool:
    pruned = sweep_search.prune_if_behind(session, run_id=run.id)
    session.refresh(run)
    return pruned


def test_median_pruner_stops_a_trial_behind_the_median_at_its_step(session):
    sweep = make_sweep(session, pruner_options={"n_startup_trials": 1})
    params = {"learning_rate": 1e-3, "lora_r": 8, "lora_target_modules": "all-linear"}
    add_trial(session, sweep, params, status=RunStatus.completed, curve={2: 1.0, 4: 0.8})
    ahead = add_trial(session, sweep, params, status=RunStatus.running, curve={2: 0.95})
    behind = add_trial(session, sweep, params, status=RunStatus.running, curve={2: 1.5})
    assert not judge(session, sweep, ahead)
    assert not ahead.cancel_requested and ahead.prune_reason is None
    assert judge(session, sweep, behind)
    assert behind.cancel_requested
    assert behind.prune_reason.startswith("pruned by the median pruner at step 2: eval_loss 1.5")
    assert not judge(session, sweep, behind)  # asked once: a second call changes nothing

    # The worker ends a run stopped on that flag pruned, not cancelled; pruned is final.
    assert stopped_status(session, behind.id) == RunStatus.pruned
    assert stopped_status(session, ahead.id) == RunStatus.cancelled
    assert transition(session, run_id=behind.id, to=RunStatus.pruned)
    assert not transition(session, run_id=behind.id, to=RunStatus.queued)


def test_median_pruner_waits_for_startup_trials_and_warmup_steps(session):
    params = {"learning_rate": 1e-3, "lora_r": 8, "lora_target_modules": "all-linear"}
    warming = make_sweep(session, pruner_options={"n_startup_trials": 1, "n_warmup_steps": 4})
    add_trial(session, warming, params, status=RunStatus.completed, curve={2: 1.0, 4: 0.8})
    early = add_trial(session, warming, params, status=RunStatus.running, curve={2: 1.5})
    assert not judge(session, warming, early)  # step 2 is inside the warm-up
    metrics.log_batch(session, run_id=early.id, rows=[(4, "eval_loss", 1.3, None)])
    session.commit()
    assert judge(session, warming, early)  # at step 4, its best 1.3 is behind 0.8

    default = make_sweep(session)  # Optuna's default: 5 finished trials before any pruning
    add_trial(session, default, params, status=RunStatus.completed, curve={2: 1.0})
    lagging = add_trial(session, default, params, status=RunStatus.running, curve={2: 9.0})
    assert not judge(session, default, lagging)

    off = make_sweep(session, pruner="none")
    add_trial(session, off, params, status=RunStatus.completed, curve={2: 1.0})
    never = add_trial(session, off, params, status=RunStatus.running, curve={2: 9.0})
    assert not judge(session, off, never)


def test_successive_halving_compares_trials_at_each_rung(session):
    sweep = make_sweep(session, pruner="successive_halving",
                       pruner_options={"min_resource": 2, "reduction_factor": 2})
    params = {"learning_rate": 1e-3, "lora_r": 8, "lora_target_modules": "all-linear"}
    add_trial(session, sweep, params, status=RunStatus.completed, curve={2: 1.0, 4: 0.7})
    add_trial(session, sweep, params, status=RunStatus.completed, curve={2: 1.2, 4: 0.9})
    best = add_trial(session, sweep, params, status=RunStatus.running, curve={2: 0.9})
    worse = add_trial(session, sweep, params, status=RunStatus.running, curve={2: 1.1})
    assert not judge(session, sweep, best)
    # Rung 0 (step 2) competes with the finished trials' values there, restored on the rebuilt
    # study: 1.1 is not in the top half of [1.0, 1.2, 1.1].
    assert judge(session, sweep, worse)
    assert "successive halving" in worse.prune_reason


def test_a_pruned_trial_is_finished_not_failed(session):
    sweep = make_sweep(session, budget=2)
    params = {"learning_rate": 1e-3, "lora_r": 8, "lora_target_modules": "all-linear"}
    add_trial(session, sweep, params, status=RunStatus.completed, curve={2: 1.0})
    pruned = add_trial(session, sweep, params, status=RunStatus.running, curve={2: 0.5})
    transition(session, run_id=pruned.id, to=RunStatus.pruned)
    sweep.continue_on_error = False
    session.commit()
    sweeps.advance(session, sweep.id)
    session.refresh(sweep)
    assert sweep.status == SweepStatus.completed and sweep.error is None


def test_an_optuna_sweep_whose_every_trial_failed_stops_with_the_common_error(session):
    sweep = make_sweep(session, budget=2)
    params = {"learning_rate": 1e-3, "lora_r": 8, "lora_target_modules": "all-linear"}
    for _ in range(2):
        run = add_trial(session, sweep, params, status=RunStatus.running, curve={})
        transition(session, run_id=run.id, to=RunStatus.failed, error="CUDA out of memory\nat")
    sweeps.advance(session, sweep.id)
    session.refresh(sweep)
    assert sweep.status == SweepStatus.failed
    assert sweep.error == "every trial failed; the most common error: CUDA out of memory (2 of 2)"
