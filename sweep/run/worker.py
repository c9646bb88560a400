"""One worker in this process: claim a point, train it, record it, until none is left.

Resuming is by construction: a point whose trial completed, was pruned, or failed for a
recorded reason (rejected configuration, NaN loss), has a claim marked done and is never
trained again; random and tpe studies have ``n_trials`` numbered points. An interrupted point
is given back and resumes from its checkpoint.

Keras loads with the first trial (``sweep.trial.objective``), not with this module: the
parent of ``sweep run --workers N`` imports it for ``prepare`` and never trains.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from sweep.defaults import ARTIFACT_DIR, CHECKPOINT_DIR, CHECKPOINT_EVERY_S
from sweep.models import complete_spec
from sweep.records import TrialKey
from sweep.run.attempt import Attempt, earlier_trial
from sweep.run.console import SweepConsole
from sweep.run.context import WorkerContext
from sweep.run.fused_worker import Fuser, companions, run_group
from sweep.run.interrupt import DeferredInterrupt
from sweep.run.prepared import PreparedRun, prepare
from sweep.run.priority import lower_native_threads
from sweep.run.progress import Overhead, SweepResult
from sweep.store import (
    artifact_store,
    claims,
    count_trials,
    mark_dead,
    open_study,
    storage_label,
    study_folder,
)
from sweep.study import StudySpec
from sweep.study.space import value_at
from sweep.training.backend import keras_backend
from sweep.trial.sampling import GridPointSampler, make_pruner, make_sampler

if TYPE_CHECKING:
    from sweep.trial.ending import Outcome  # loads Keras

POLL_S = 2.0  # seconds between looks at the claims while other workers finish


def run_sweep(
    spec: StudySpec,
    storage_url: str,
    *,
    data_dir: str | None = None,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    artifact_dir: Path | None = ARTIFACT_DIR,
    on_event: Callable[[dict], None] | None = None,
    prepared: PreparedRun | None = None,
    track_best: bool = True,
    fuse: str = "off",
) -> SweepResult:
    """Claim and train points of ``spec`` until none is left; this is one worker.

    Any number of these may run at once, in processes on any machines that reach the storage:
    each point is trained by exactly one of them (see claims.py). A worker whose claims are
    all done waits while others still train, to take over the points of any that die.
    Snapshot pictures (first-layer filters, PCA) go to an Optuna artifact store in
    ``artifact_dir`` (None: no pictures). What happens goes to ``on_event`` as events
    (``progress``; default: plain lines on stderr). ``prepared``: the study as ``prepare`` made
    it already in this process, else it is prepared here. ``track_best``: False leaves the
    best so far out of the end events (a worker of ``sweep run --workers N``, whose parent
    reads it itself), sparing a read of the changed trials per trial. ``fuse``: off, auto or
    a number, how many grid points to train as one program (``sweep.run.fused_worker``).
    """
    prepared = prepared or prepare(complete_spec(spec), storage_url, data_dir)
    spec, store, study_id = prepared.spec, prepared.store, prepared.study_id
    keys = list(prepared.points)
    result = SweepResult(total=len(keys))
    pinned, shared = _studies(prepared)
    result.update_best(store, shared or pinned)
    worker = WorkerContext(spec, store, study_id, f"{socket.gethostname()}:{os.getpid()}",
                           prepared.dataset_for,
                           study_folder(store, study_id, spec.name, checkpoint_dir),
                           checkpoint_every_s,
                           artifact_store(artifact_dir) if artifact_dir is not None else None,
                           DeferredInterrupt(), result, on_event or SweepConsole(spec).event,
                           prepared.points, prepared.stopped, prepared.ladder, track_best)
    worker.emit({"event": "begin", "total": len(keys), "where": f"Keras on {keras_backend()}"
                 + (f", --fuse {fuse}" if fuse != "auto" else ""), "best": result.best(),
                 "storage": storage_label(storage_url),
                 "rejected": list(prepared.rejected),
                 **claims.tally(store.engine, study_id, keys, prepared.ladder)})
    with worker.interrupt.installed():
        try:
            _train_claims(worker, Fuser(worker, fuse), pinned, shared)
            worker.behind.flush()
        finally:
            worker.behind.close()  # the trials that ended are recorded, however the run ends
    return result


def _studies(prepared: PreparedRun) -> tuple[optuna.Study, optuna.Study | None]:
    """The run's study objects: ``pinned`` for grid points and continued slots, created
    with their params (``_start_trial``: its sampler is never asked), and ``shared`` for
    random and tpe draws (None for a grid), one sampler over the run seeded by the trials
    already there and the process so that draws are not repeated. One study object each for
    the run: Optuna reads only the trials changed."""
    spec, store = prepared.spec, prepared.store
    pruner = make_pruner(spec.search.pruner, _max_epochs(spec))
    pinned = open_study(store, spec.name, pruner=pruner, sampler=GridPointSampler())
    if spec.search.enumerates:
        return pinned, None
    seed = spec.seed + count_trials(store.engine, prepared.study_id) + os.getpid()
    return pinned, open_study(store, spec.name, pruner=pruner,
                              sampler=make_sampler(spec.search.sampler, seed))


def _train_claims(worker: WorkerContext, fuser: Fuser, pinned: optuna.Study,
                  shared: optuna.Study | None) -> None:
    """Claim and train points until none is left (waiting while others train, to take
    over the points of any that die)."""
    engine, study_id, keys = worker.store.engine, worker.study_id, list(worker.points)
    ladder = worker.ladder  # successive halving: promotions first
    while True:
        if worker.interrupt.requested:  # Ctrl-C came while the last trial was finishing
            raise KeyboardInterrupt
        looked = Overhead()  # the trial's overhead starts with the claim
        with worker.behind.paused():
            claim = claims.claim_next(engine, study_id, keys, worker.name, ladder)
        if claim is None:
            worker.behind.flush()  # this worker's last trials are done before it counts
            if claims.pending(engine, study_id, keys, ladder) == 0:
                return
            time.sleep(POLL_S)  # others are training: wait to take over any that die
            continue
        if claim.dead_trial is not None:
            mark_dead(worker.store, study_id, claim.dead_trial, "its worker stopped beating")
        looked.stop()  # Keras loads for the first grid point's training here (not overhead)
        k = fuser.size(claim.point)
        looked.add()
        if k:
            group = [claim, *companions(worker, fuser, claim, k - 1)]
            run_group(worker, fuser, pinned, group, looked)
            continue
        earlier = earlier_trial(worker, claim)
        values = worker.points[claim.point]  # a grid point, or None: the sampler draws ...
        if values is None and earlier is not None:  # ... a slot's, unless it continues one
            values = _values_of(worker.spec, earlier)
        study = shared if values is None else pinned
        assert study is not None  # a grid has no slots to draw
        _run_point(worker, study, claim, earlier, looked, values)


def _run_point(w: WorkerContext, study: optuna.Study, claim: claims.Claim,
               earlier: optuna.trial.FrozenTrial | None, looked: Overhead,
               values: dict | None) -> None:
    """Train one claimed point and record how it ended: complete, failed for a reason,
    pruned, interrupted, or lost (``Attempt``)."""
    attempt = Attempt(w, study, claim, earlier, looked, values)
    lower_native_threads()  # the backend's threads behind this one (priority.py)
    try:
        with attempt.heartbeat, w.interrupt.training():
            outcome = _train(w, attempt, lambda: w.interrupt.requested or attempt.lost()
                             or w.behind.failed)
    except BaseException as err:
        if not attempt.lost():
            attempt.give_back(err)
            w.behind.check()  # a write behind failed (training stopped for it): its error
            raise
        outcome = (None, None, None)
    attempt.finish(*outcome)


def _values_of(spec: StudySpec, earlier: optuna.trial.FrozenTrial) -> dict:
    """A random/tpe slot's values, from the trial it continues (in stored form)."""
    config = earlier.user_attrs[TrialKey.CONFIG] | {"seed": earlier.user_attrs[TrialKey.SEED]}
    return {p.name: p.encode(value_at(config, p.name)) for p in spec.search.params
            if value_at(config, p.name) is not None}


def _train(w: WorkerContext, attempt: Attempt, stop: Callable[[], bool]) -> Outcome:
    """The ``Outcome`` of one trial's training (``sweep.trial.ending``): complete with its
    objective value, failed for a reason, pruned (a hopeless point is done, never trained
    again), or lost to another worker. ``stop`` is asked after every batch."""
    from sweep.trial.ending import outcome_of
    from sweep.trial.objective import run_trial  # loads Keras (module docstring)

    _warn_slow_precision(w, attempt.values)
    spec = w.spec.at_epochs(attempt.claim.epochs)  # a rung's, with search.schedule
    return outcome_of(lambda: (TrialState.COMPLETE, run_trial(
        attempt.trial, spec, attempt.values, w.dataset_for, attempt.hooks(stop)), None))


def _warn_slow_precision(w: WorkerContext, values: dict) -> None:
    """Say once per process that the point's 16-bit precision is emulated here."""
    from sweep.training.device import precision_warning

    slow = precision_warning(values.get("training.precision", w.spec.training.precision))
    if slow is not None and slow not in w.warned:
        w.warned.add(slow)
        print(f"[{w.spec.name}] warning: {slow}", file=sys.stderr)


def _max_epochs(spec: StudySpec) -> int:
    """The most epochs any trial trains (the pruner's largest budget)."""
    return int(max(spec.values_of("training.epochs")))
