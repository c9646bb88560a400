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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import optuna
from optuna.trial import TrialState

from sweep.data import Dataset
from sweep.defaults import ARTIFACT_DIR, CHECKPOINT_DIR, CHECKPOINT_EVERY_S
from sweep.errors import StorageError, TrialFailed
from sweep.models import complete_spec
from sweep.records import TrialKey
from sweep.store import claims, reconnect
from sweep.run.interrupt import DeferredInterrupt
from sweep.run.console import SweepConsole
from sweep.run.prepared import PreparedRun, prepare
from sweep.run.priority import lower_native_threads
from sweep.run.progress import Overhead, SweepResult
from sweep.store import (
    artifact_store, count_trials, mark_dead, mark_superseded, open_study, record_epoch,
    set_trial_user_attrs, storage_label,
)
from sweep.study import StudySpec
from sweep.study.space import value_at
from sweep.training.checkpoints import (
    checkpoint_file, copy_checkpoint, kept_model_file, remove_checkpoint, saved_epochs,
    set_aside_if_unreadable,
)
from sweep.trial.sampling import GridPointSampler, make_pruner, make_sampler, suggest

POLL_S = 2.0  # seconds between looks at the claims while other workers finish
# How a trial ended, in the words of the progress events.
STATE_WORDS = {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed",
               TrialState.PRUNED: "pruned"}


@dataclass
class _Worker:
    """What every point of one ``run_sweep`` call shares."""

    spec: StudySpec
    store: optuna.storages.RDBStorage
    study_id: int
    name: str  # "host:pid", in the claims
    dataset_for: Callable[[dict, int], Dataset]
    checkpoint_dir: Path
    checkpoint_every_s: float
    artifacts: object  # an Optuna artifact store, or None
    interrupt: DeferredInterrupt
    result: SweepResult
    on_event: Callable[[dict], None]
    track_best: bool = True
    warned: set[str] = field(default_factory=set)  # warnings printed (once a process each)

    def emit(self, event: dict) -> None:
        """Count an event into this worker's result and hand it to the console."""
        self.result.apply(event)
        self.on_event(event)

    def end(self, trial_number: int, state: str, note: str | None = None,
            record: Overhead | None = None) -> None:
        self.emit({"event": "end", "trial": trial_number, "state": state, "note": note,
                   "best": self.result.best(), "at": time.time(),
                   "record_s": record and record.wall, "record_cpu_s": record and record.cpu})


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
    reads it itself), sparing a read of the changed trials per trial.
    """
    prepared = prepared or prepare(complete_spec(spec), storage_url, data_dir)
    spec, store, study_id = prepared.spec, prepared.store, prepared.study_id
    points = prepared.points
    keys = list(points)
    engine = store.engine
    result = SweepResult(total=len(keys))
    pruner = make_pruner(spec.search.pruner, _max_epochs(spec))
    # Random and tpe share one sampler over the run, seeded by the trials already there and
    # the process so that draws are not repeated. A grid point (or a slot continued) becomes
    # a trial of ``pinned`` created with its params (``_start_trial``: its sampler is never
    # asked). One study object each for the run: Optuna reads only the trials changed.
    pinned = open_study(store, spec.name, pruner=pruner, sampler=GridPointSampler())
    shared = None if spec.search.enumerates else open_study(
        store, spec.name, pruner=pruner,
        sampler=make_sampler(spec.search.sampler, spec.seed + count_trials(engine, study_id)
                             + os.getpid()))
    result.update_best(store, shared or pinned)
    worker = _Worker(spec, store, study_id, f"{socket.gethostname()}:{os.getpid()}",
                     prepared.dataset_for, checkpoint_dir, checkpoint_every_s,
                     artifact_store(artifact_dir) if artifact_dir is not None else None,
                     DeferredInterrupt(), result, on_event or SweepConsole(spec).event,
                     track_best)
    worker.emit({"event": "begin", "total": len(keys), "where": None, "best": result.best(),
                 "storage": storage_label(storage_url),
                 "rejected": list(prepared.rejected), **claims.tally(engine, study_id, keys)})
    with worker.interrupt.installed():
        while True:
            if worker.interrupt.requested:  # Ctrl-C came while the last trial was finishing
                raise KeyboardInterrupt
            looked = Overhead()  # the trial's overhead starts with the claim
            claim = claims.claim_next(engine, study_id, keys, worker.name)
            if claim is None:
                if claims.pending(engine, study_id, keys) == 0:
                    return result
                time.sleep(POLL_S)  # others are training: wait to take over any that die
                continue
            if claim.dead_trial is not None:
                mark_dead(store, study_id, claim.dead_trial, "its worker stopped beating")
            earlier = None if claim.earlier_trial is None else store.get_trial(
                store.get_trial_id_from_study_id_trial_number(study_id, claim.earlier_trial))
            values = points[claim.point]  # a grid point, or None: the sampler draws a slot's
            if values is None and earlier is not None:  # ... unless it continues a trial
                values = _values_of(spec, earlier)
            _run_point(worker, shared if values is None else pinned, claim, earlier, looked,
                       values)


def _start_trial(w: _Worker, study: optuna.Study, values: dict) -> tuple[optuna.Trial, int]:
    """A running trial holding the point's ``values``, created in one transaction, and its
    storage id.

    ``study.ask()`` would look for waiting trials (re-reading every running trial of the
    other workers), create the trial, then store each param in a transaction of its own as
    the objective asks for it; the distributions here are the ones it would ask with."""
    fixed = optuna.trial.FixedTrial(values)
    suggest(fixed, w.spec.search.params)
    template = optuna.trial.create_trial(state=TrialState.RUNNING, params=fixed.params,
                                         distributions=fixed.distributions)
    trial_id = w.store.create_new_trial(w.study_id, template_trial=template)
    return optuna.Trial(study, trial_id), trial_id


def _run_point(w: _Worker, study: optuna.Study, claim: claims.Claim,
               earlier: optuna.trial.FrozenTrial | None, looked: Overhead,
               values: dict | None) -> None:
    """Train one claimed point and record how it ended: complete, failed for a reason,
    pruned, interrupted, or lost. ``earlier``: the point's complete trial to continue (the
    study's epochs grew); ``looked``: the time since the worker began to look for the
    claim, for the ``claim_s`` of the start event; ``values``: the point's, or None for the
    sampler to draw."""
    spec, point, claimed_at = w.spec, claim.point, time.time()
    if values is None:
        trial = study.ask()
        trial_id = w.store.get_trial_id_from_study_id_trial_number(w.study_id, trial.number)
    else:
        trial, trial_id = _start_trial(w, study, values)
    claims.update(w.store.engine, w.study_id, point, w.name, trial_number=trial.number)
    values = suggest(trial, spec.search.params)
    checkpoint = checkpoint_file(w.checkpoint_dir, spec.name, point)
    if earlier is not None:
        _continue_from(w, trial, earlier, checkpoint)
    if unreadable := set_aside_if_unreadable(checkpoint):  # else it fails the point each run
        print(f"[{spec.name}] trial {trial.number}: {unreadable}", file=sys.stderr)
    resumed_from = saved_epochs(checkpoint)
    w.emit({"event": "start", "trial": trial.number, "point": point, "values": values,
            "position": claim.position, "resumed_from": resumed_from,
            "continues": earlier.number if earlier is not None else None,
            "epochs": values.get("training.epochs", spec.training.epochs),
            "at": claimed_at, "claim_s": looked.stop().wall, "claim_cpu_s": looked.cpu})
    record = Overhead().stop()  # storing the trial's attributes, its epochs' rows, its end

    def save_attrs(attrs: dict) -> None:
        record.add()
        set_trial_user_attrs(w.store, trial_id, attrs)
        record.stop()

    def on_epoch(row: dict) -> None:
        lower_native_threads()  # any the backend started for this trial
        record.add()
        record_epoch(w.store, w.study_id, trial.number, row)
        record.stop()
        if row["epoch"] > resumed_from:  # the checkpoint's epochs were shown before
            w.emit({"event": "epoch", "trial": trial.number, "row": row})

    heartbeat = claims.Heartbeat(w.store.engine, w.study_id, point, w.name)

    def stop() -> bool:  # asked after every training batch
        return w.interrupt.requested or bool(heartbeat.lost)

    lower_native_threads()  # the backend's threads behind this one (priority.py)
    try:
        with heartbeat, w.interrupt.training():
            state, value, note = _train(w, trial, values, on_epoch, save_attrs, checkpoint,
                                        earlier, stop)
        record.add()
        lost = heartbeat.lost
        if lost is None:
            study.tell(trial, value, state=state)
    except optuna.exceptions.UpdateFinishedTrialError:
        lost = heartbeat.lost or "another worker took the point over and ended this trial"
    except BaseException as err:
        lost = heartbeat.lost
        if lost is None:
            _give_back(w, study, trial, point, err)
            raise
    if lost is not None:
        # The point is another worker's now (it may be training it from the checkpoint):
        # leave claim and checkpoint alone, and go on with the next point.
        mark_dead(w.store, w.study_id, trial.number, lost)
        w.end(trial.number, "lost", lost)
        return
    claims.update(w.store.engine, w.study_id, point, w.name, state="done")
    if earlier is not None and state == TrialState.COMPLETE:
        mark_superseded(w.store, w.store.get_trial_id_from_study_id_trial_number(
            w.study_id, earlier.number), trial.number)
    remove_checkpoint(checkpoint)
    if state == TrialState.COMPLETE and w.track_best:
        w.result.update_best(w.store, study)
    w.end(trial.number, STATE_WORDS[state], note, record=record.stop())


def _give_back(w: _Worker, study: optuna.Study, trial, point: str, err: BaseException) -> None:
    """Ctrl-C or a crash: leave the database consistent; the point runs again next time,
    from its checkpoint. After the storage itself failed (``err``), one try without waiting:
    what cannot be written, the next run takes over as a dead worker's."""
    lost = isinstance(err, StorageError)
    try:
        with reconnect.patience(0 if lost else reconnect.RETRY_FOR_S):
            trial.set_user_attr(TrialKey.INTERRUPTED, True)
            study.tell(trial, state=TrialState.FAIL)
            claims.release(w.store.engine, w.study_id, point, w.name)
    except StorageError:
        if not lost:
            raise


def _continue_from(w: _Worker, trial, earlier, checkpoint: Path) -> None:
    """Start the point's checkpoint from ``earlier``'s kept model (unless a worker that died
    continuing it left a newer one): the trial resumes after its last epoch."""
    trial.set_user_attr(TrialKey.CONTINUED_FROM_TRIAL, earlier.number)
    kept = kept_model_file(w.checkpoint_dir, w.spec.name, earlier.number)
    if not checkpoint.is_file() and not copy_checkpoint(kept, checkpoint):
        print(f"[{w.spec.name}] trial {earlier.number}'s model is not kept ({kept}); "
              f"trial {trial.number} trains its point from the first epoch", file=sys.stderr)


def _values_of(spec: StudySpec, earlier) -> dict:
    """A random/tpe slot's values, from the trial it continues (in stored form)."""
    config = earlier.user_attrs[TrialKey.CONFIG] | {"seed": earlier.user_attrs[TrialKey.SEED]}
    return {p.name: p.encode(value_at(config, p.name)) for p in spec.search.params
            if value_at(config, p.name) is not None}


def _train(w: _Worker, trial, values: dict, on_epoch, save_attrs, checkpoint: Path, earlier,
           stop):
    """``(state, value, note)`` of one trial's training: complete with its objective value,
    failed for a recorded reason, or pruned (a hopeless point is done, never trained again;
    its value is the last it reported)."""
    from sweep.trial.objective import TrialHooks, run_trial  # loads Keras (module docstring)
    from sweep.training.device import precision_warning

    slow = precision_warning(values.get("training.precision", w.spec.training.precision))
    if slow is not None and slow not in w.warned:
        w.warned.add(slow)
        print(f"[{w.spec.name}] warning: {slow}", file=sys.stderr)

    try:
        hooks = TrialHooks(
            on_epoch=on_epoch, stop_requested=stop, save_attrs=save_attrs,
            artifact_store=w.artifacts, checkpoint=checkpoint,
            checkpoint_every_s=w.checkpoint_every_s,
            keep=kept_model_file(w.checkpoint_dir, w.spec.name, trial.number),
            earlier_diagnostics=earlier.user_attrs.get(TrialKey.DIAGNOSTICS) if earlier else None)
        value = run_trial(trial, w.spec, values, w.dataset_for, hooks)
        return TrialState.COMPLETE, value, None
    except TrialFailed as err:
        trial.set_user_attr(TrialKey.FAIL_REASON, str(err))
        return TrialState.FAIL, None, f"failed: {err}"
    except optuna.TrialPruned as err:
        return TrialState.PRUNED, None, str(err)


def _max_epochs(spec: StudySpec) -> int:
    """The most epochs any trial trains (the pruner's largest budget)."""
    return int(max(spec.values_of("training.epochs")))
