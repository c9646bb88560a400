"""One claimed point on its way to an ended trial, whether it trains alone or fused.

``Attempt`` creates the point's trial and shows its start (a grid point's, behind the worker:
``sweep.run.behind``); its ``hooks`` are where the training's epochs and attributes go, also
written behind; it ends once, through ``finish`` (complete, failed for a reason, pruned, or
lost to another worker) or ``give_back`` (Ctrl-C, a crash).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from sweep.errors import StorageError
from sweep.records import TrialKey
from sweep.run.behind import TrialBehind
from sweep.run.context import WorkerContext
from sweep.run.priority import lower_native_threads
from sweep.run.progress import Overhead
from sweep.store import (
    claims,
    halving,
    mark_dead,
    mark_superseded,
    reconnect,
    record_epoch,
    set_trial_user_attrs,
)
from sweep.store.halving import Ladder
from sweep.store.heartbeat import Heartbeat
from sweep.training.checkpoints import (
    checkpoint_file,
    copy_checkpoint,
    kept_model_file,
    remove_checkpoint,
    saved_epochs,
    set_aside_if_unreadable,
)
from sweep.trial.sampling import suggest

if TYPE_CHECKING:
    from sweep.trial.objective import TrialHooks  # loads Keras

# How a trial ended, in the words of the progress events.
STATE_WORDS = {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed",
               TrialState.PRUNED: "pruned"}


class Attempt:
    """A claimed point's trial (``trial``, ``values``, ``checkpoint``), its claim's
    ``heartbeat`` (entered by whoever trains it) and the overhead of recording it.

    ``w`` is the worker (``sweep.run.context.WorkerContext``); ``earlier``: the point's complete
    trial to continue (the study's epochs grew); ``looked``: the time since the worker began
    to look for the claim; ``values``: the point's, or None for the sampler to draw.
    """

    def __init__(self, w: WorkerContext, study: optuna.Study, claim: claims.Claim,
                 earlier: optuna.trial.FrozenTrial | None, looked: Overhead,
                 values: dict | None):
        spec, claimed_at = w.spec, time.time()
        self.w, self.study, self.claim, self.earlier = w, study, claim, earlier
        # storing the trial's attributes, epoch rows and end: what the worker waits for
        # (``record``), and their writes behind it (``behind``)
        self.record, self.behind = Overhead().stop(), Overhead().stop()
        self.heartbeat = Heartbeat(w.store.engine, w.study_id, claim.point, w.name)
        self.checkpoint = checkpoint_file(w.folder, claim.point)
        behind = values is not None and earlier is None  # a grid point's trial: made behind
        if behind:
            self.trial: optuna.Trial = TrialBehind(w.behind, self.record)
        else:
            with w.behind.paused():  # made before the last trial's writes go on
                self.trial = self._create(values)
        if earlier is not None:
            self._continue_from(earlier)
        unreadable = set_aside_if_unreadable(self.checkpoint)  # else it fails each run
        self.resumed_from = saved_epochs(self.checkpoint)
        start = {"event": "start", "point": claim.point, "position": claim.position,
                 "resumed_from": self.resumed_from,
                 "again": claim.point in w.stopped or claim.dead_trial is not None,
                 "continues": earlier.number if earlier is not None else None,
                 "rung": _rung_place(w.ladder, claim.epochs), "at": claimed_at}
        if not behind or values is None:
            self.values = suggest(self.trial, spec.search.params)
            self._started(start, looked.stop(), unreadable)
            return
        # the worker goes on to build the point's model meanwhile
        self.values = suggest(optuna.trial.FixedTrial(values), spec.search.params)
        looked.stop()
        w.behind.put(lambda: self._create_behind(values, start, looked, unreadable),
                     self.behind)

    def _create(self, values: dict | None, into: optuna.Trial | None = None) -> optuna.Trial:
        """The point's running trial, noted on its claim; ``into``: the object to make it in
        (a ``TrialBehind``)."""
        w = self.w
        if values is None:
            trial = self.study.ask()
            self.trial_id = w.store.get_trial_id_from_study_id_trial_number(
                w.study_id, trial.number)
        else:
            self.trial_id = _start_trial(w, values)
            if into is None:
                trial = optuna.Trial(self.study, self.trial_id)
            else:
                trial = into
                optuna.Trial.__init__(trial, self.study, self.trial_id)
        claims.update(w.store.engine, w.study_id, self.claim.point, w.name,
                      trial_number=trial.number)
        return trial

    def _create_behind(self, values: dict, start: dict, looked: Overhead,
                       unreadable: str | None) -> None:
        """The writes behind make the grid point's trial, then say it started."""
        assert isinstance(self.trial, TrialBehind)
        self._create(values, into=self.trial)
        self._started(start, looked, unreadable)  # before the epochs the worker says
        self.trial.made()

    def _started(self, start: dict, looked: Overhead, unreadable: str | None) -> None:
        """The trial exists: say so (the ``start`` event, its claim's overhead ``looked``)."""
        w, number = self.w, self.trial.number
        if unreadable:
            print(f"[{w.spec.name}] trial {number}: {unreadable}", file=sys.stderr)
        w.emit(start | {"trial": number, "values": self.values,
                        "epochs": self.claim.epochs or self.values.get(
                            "training.epochs", w.spec.training.epochs),
                        "claim_s": looked.wall, "claim_cpu_s": looked.cpu})

    def hooks(self, stop: Callable[[], bool]) -> TrialHooks:
        """The trial's ``TrialHooks`` (loads Keras), ``stop`` asked after each batch."""
        from sweep.trial.objective import TrialHooks

        w, earlier = self.w, self.earlier
        return TrialHooks(
            on_epoch=self._on_epoch, stop_requested=stop, save_attrs=self._save_attrs,
            artifact_store=w.artifacts, checkpoint=self.checkpoint,
            checkpoint_every_s=w.checkpoint_every_s,
            keep=lambda: kept_model_file(w.folder, self.trial.number),
            earlier_diagnostics=earlier.user_attrs.get(TrialKey.DIAGNOSTICS) if earlier else None,
            store_value=self._store_value)

    def lost(self) -> bool:
        """Whether the claim is gone (another worker runs, or soon will run, the point)."""
        return bool(self.heartbeat.lost)

    def finish(self, state: TrialState | None, value: float | Sequence[float] | None = None,
               note: str | None = None) -> None:
        """Tell Optuna how the trial ended (``state``, ``value``, ``note``: its
        ``sweep.trial.ending.Outcome``; a failure's reason stored on the trial) and close the
        claim; unless the claim was lost meanwhile (``state`` None: training stopped for
        that, or another worker ended the trial), which leaves claim and checkpoint to the
        worker that has the point now. Written behind (``sweep.run.behind``): the worker goes
        on to its next point, or its group's next epoch, meanwhile."""
        self.record.add()
        ended_at = time.time()
        self.w.behind.put(lambda: self._end(state, value, note, ended_at))
        self.record.stop()

    def _end(self, state: TrialState | None, value: float | Sequence[float] | None,
             note: str | None, at: float) -> None:
        """``finish``'s writes, then the ``end`` event."""
        w, point = self.w, self.claim.point
        self.behind.add()
        self.heartbeat.stop()  # a fused member's, while its group trains on
        lost = self.heartbeat.lost
        rung = self._rung(state)
        if lost is None and state is not None:
            try:
                if state == TrialState.FAIL:  # fit or fused, the reason is stored here
                    set_trial_user_attrs(w.store, self.trial_id, {TrialKey.FAIL_REASON: note})
                    note = f"failed: {note}"
                if rung is not None:  # a rung below the top: pruned there, resting
                    set_trial_user_attrs(w.store, self.trial_id, {TrialKey.RUNG: rung})
                    state, note = TrialState.PRUNED, _resting(rung)
                self.study.tell(self.trial, None if rung else value, state=state)
            except optuna.exceptions.UpdateFinishedTrialError:
                lost = "another worker took the point over and ended this trial"
        if lost is not None or state is None:
            lost = lost or "its claim was lost"
            mark_dead(w.store, w.study_id, self.trial.number, lost)
            w.end(self.trial.number, "lost", lost, at=at)
            return
        if rung is not None:
            assert isinstance(value, (int, float))  # one objective: the schema's rule
            halving.rest(w.store.engine, w.study_id, point, w.name, rung["epochs"], value)
        else:
            claims.update(w.store.engine, w.study_id, point, w.name, state="done")
        if self.earlier is not None and (state == TrialState.COMPLETE or rung is not None):
            mark_superseded(w.store, w.store.get_trial_id_from_study_id_trial_number(
                w.study_id, self.earlier.number), self.trial.number)
        remove_checkpoint(self.checkpoint)
        if state == TrialState.COMPLETE and w.track_best:
            w.result.update_best(w.store, self.study)
        word = "rests" if rung is not None else STATE_WORDS[state]
        w.end(self.trial.number, word, note, at=at, record=self.record,
              behind=self.behind.stop())

    def _rung(self, state: TrialState | None) -> dict | None:
        """The rung below the top this trial finished (``search.schedule``), as stored on
        it; None at the top rung, without a schedule, or for a trial that did not finish."""
        ladder, epochs = self.w.ladder, self.claim.epochs
        if state != TrialState.COMPLETE or ladder is None or epochs is None or (
                epochs >= ladder.top):
            return None
        return {"rung": ladder.number(epochs), "of": len(ladder.rungs), "epochs": epochs}

    def give_back(self, err: BaseException) -> None:
        """Ctrl-C or a crash: leave the database consistent; the point runs again next
        time, from its checkpoint. The writes asked for before are made first (the trials
        that ended before it, its attributes). After the storage itself failed (``err``, or
        a write behind), one try without waiting: what cannot be written, the next run
        takes over as a dead worker's (said in one line)."""
        w = self.w
        storage_failed = isinstance(err, StorageError) or isinstance(w.behind.wait(),
                                                                     StorageError)
        made = not isinstance(self.trial, TrialBehind) or self.trial.exists()
        try:
            with reconnect.patience(0) if storage_failed else contextlib.nullcontext():
                if made:  # else the writes behind failed before they made it
                    self.trial.set_user_attr(TrialKey.INTERRUPTED, True)
                    self.study.tell(self.trial, state=TrialState.FAIL)
                claims.release(w.store.engine, w.study_id, self.claim.point, w.name)
        except StorageError:
            what = f"trial {self.trial.number}" if made else f"point {self.claim.position}"
            print(f"[{w.spec.name}] {what}: not given back (the storage is unreachable); it "
                  "shows as running until the next run takes its point over",
                  file=sys.stderr, flush=True)
            if not storage_failed:
                raise

    def _save_attrs(self, attrs: dict) -> None:
        def save() -> None:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                set_trial_user_attrs(self.w.store, self.trial_id, attrs)  # else lost: _end

        self._behind(save)

    def _on_epoch(self, row: dict) -> None:
        lower_native_threads()  # any the backend started for this trial
        w = self.w

        def store() -> None:  # and say it (a grid point's trial number is known behind)
            record_epoch(w.store, w.study_id, self.trial.number, row)
            if row["epoch"] > self.resumed_from:  # the checkpoint's epochs were shown before
                w.emit({"event": "epoch", "trial": self.trial.number, "row": row})

        self._behind(store)

    def _store_value(self, epoch: int, value: float) -> None:
        """Optuna's per-epoch value, where no pruner reads it (``TrialHooks.store_value``)."""
        self._behind(lambda: self.w.store.set_trial_intermediate_value(self.trial_id, epoch,
                                                                        value))

    def _behind(self, write: Callable[[], None]) -> None:
        """Make ``write`` behind the worker (``sweep.run.behind``), timed as the trial's."""
        self.record.add()
        self.w.behind.put(write, self.behind)
        self.record.stop()

    def _continue_from(self, earlier: optuna.trial.FrozenTrial) -> None:
        """Start the point's checkpoint from ``earlier``'s kept model (unless a worker that
        died continuing it left a newer one): the trial resumes after its last epoch."""
        w = self.w
        self.trial.set_user_attr(TrialKey.CONTINUED_FROM_TRIAL, earlier.number)
        kept = kept_model_file(w.folder, earlier.number)
        if not self.checkpoint.is_file() and not copy_checkpoint(kept, self.checkpoint):
            print(f"[{w.spec.name}] trial {earlier.number}'s model is not kept ({kept}); "
                  f"trial {self.trial.number} trains its point from the first epoch",
                  file=sys.stderr)


def _rung_place(ladder: Ladder | None, epochs: int | None) -> list[int] | None:
    """``[k, n]``: a claim of ``epochs`` trains to rung k of n (``search.schedule``)."""
    return None if ladder is None or epochs is None else [ladder.number(epochs),
                                                         len(ladder.rungs)]


def _resting(rung: dict) -> str:
    epochs = f"{rung['epochs']} epoch" + "s" * (rung["epochs"] != 1)
    return (f"rests at rung {rung['rung']} of {rung['of']} ({epochs}); the best of each rung "
            "are promoted")


def earlier_trial(w: WorkerContext, claim: claims.Claim) -> optuna.trial.FrozenTrial | None:
    """The complete trial ``claim`` continues (the study's epochs grew), or None."""
    if claim.earlier_trial is None:
        return None
    return w.store.get_trial(w.store.get_trial_id_from_study_id_trial_number(
        w.study_id, claim.earlier_trial))


def _start_trial(w: WorkerContext, values: dict) -> int:
    """The storage id of a running trial holding the point's ``values``, created in one
    transaction.

    ``study.ask()`` would look for waiting trials (re-reading every running trial of the
    other workers), create the trial, then store each param in a transaction of its own as
    the objective asks for it; the distributions here are the ones it would ask with."""
    fixed = optuna.trial.FixedTrial(values)
    suggest(fixed, w.spec.search.params)
    template = optuna.trial.create_trial(state=TrialState.RUNNING, params=fixed.params,
                                         distributions=fixed.distributions)
    return w.store.create_new_trial(w.study_id, template_trial=template)
