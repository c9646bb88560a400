"""One claimed point on its way to an ended trial, whether it trains alone or fused.

``Attempt`` creates the point's trial and shows its start; its ``hooks`` are where the
training's epochs and attributes go; it ends once, through ``finish`` (complete, failed for
a reason, pruned, or lost to another worker) or ``give_back`` (Ctrl-C, a crash).
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
        if values is None:
            self.trial = study.ask()
            self.trial_id = w.store.get_trial_id_from_study_id_trial_number(
                w.study_id, self.trial.number)
        else:
            self.trial, self.trial_id = _start_trial(w, study, values)
        claims.update(w.store.engine, w.study_id, claim.point, w.name,
                      trial_number=self.trial.number)
        self.values = suggest(self.trial, spec.search.params)
        self.checkpoint = checkpoint_file(w.folder, claim.point)
        if earlier is not None:
            self._continue_from(earlier)
        if unreadable := set_aside_if_unreadable(self.checkpoint):  # else it fails each run
            print(f"[{spec.name}] trial {self.trial.number}: {unreadable}", file=sys.stderr)
        self.resumed_from = saved_epochs(self.checkpoint)
        w.emit({"event": "start", "trial": self.trial.number, "point": claim.point,
                "values": self.values, "position": claim.position,
                "resumed_from": self.resumed_from,
                "again": claim.point in w.stopped or claim.dead_trial is not None,
                "continues": earlier.number if earlier is not None else None,
                "epochs": claim.epochs or self.values.get("training.epochs",
                                                          spec.training.epochs),
                "rung": _rung_place(w.ladder, claim.epochs),
                "at": claimed_at, "claim_s": looked.stop().wall, "claim_cpu_s": looked.cpu})
        self.record = Overhead().stop()  # storing the trial's attributes, epoch rows, end
        self.heartbeat = Heartbeat(w.store.engine, w.study_id, claim.point, w.name)

    def hooks(self, stop: Callable[[], bool]) -> TrialHooks:
        """The trial's ``TrialHooks`` (loads Keras), ``stop`` asked after each batch."""
        from sweep.trial.objective import TrialHooks

        w, earlier = self.w, self.earlier
        return TrialHooks(
            on_epoch=self._on_epoch, stop_requested=stop, save_attrs=self._save_attrs,
            artifact_store=w.artifacts, checkpoint=self.checkpoint,
            checkpoint_every_s=w.checkpoint_every_s,
            keep=kept_model_file(w.folder, self.trial.number),
            earlier_diagnostics=earlier.user_attrs.get(TrialKey.DIAGNOSTICS) if earlier else None)

    def lost(self) -> bool:
        """Whether the claim is gone (another worker runs, or soon will run, the point)."""
        return bool(self.heartbeat.lost)

    def finish(self, state: TrialState | None, value: float | Sequence[float] | None = None,
               note: str | None = None) -> None:
        """Tell Optuna how the trial ended (``state``, ``value``, ``note``: its
        ``sweep.trial.ending.Outcome``; a failure's reason stored on the trial) and close the
        claim; unless the claim was lost meanwhile (``state`` None: training stopped for
        that, or another worker ended the trial), which leaves claim and checkpoint to the
        worker that has the point now."""
        w, point = self.w, self.claim.point
        self.record.add()
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
            w.end(self.trial.number, "lost", lost)
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
        w.end(self.trial.number, word, note, record=self.record.stop())

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
        time, from its checkpoint. After the storage itself failed (``err``), one try
        without waiting: what cannot be written, the next run takes over as a dead
        worker's (said in one line)."""
        w, storage_failed = self.w, isinstance(err, StorageError)
        try:
            with reconnect.patience(0) if storage_failed else contextlib.nullcontext():
                self.trial.set_user_attr(TrialKey.INTERRUPTED, True)
                self.study.tell(self.trial, state=TrialState.FAIL)
                claims.release(w.store.engine, w.study_id, self.claim.point, w.name)
        except StorageError:
            print(f"[{w.spec.name}] trial {self.trial.number}: not given back (the storage is "
                  "unreachable); it shows as running until the next run takes its point over",
                  file=sys.stderr, flush=True)
            if not storage_failed:
                raise

    def _save_attrs(self, attrs: dict) -> None:
        self.record.add()
        set_trial_user_attrs(self.w.store, self.trial_id, attrs)
        self.record.stop()

    def _on_epoch(self, row: dict) -> None:
        lower_native_threads()  # any the backend started for this trial
        self.record.add()
        record_epoch(self.w.store, self.w.study_id, self.trial.number, row)
        self.record.stop()
        if row["epoch"] > self.resumed_from:  # the checkpoint's epochs were shown before
            self.w.emit({"event": "epoch", "trial": self.trial.number, "row": row})

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


def _start_trial(w: WorkerContext, study: optuna.Study, values: dict) -> tuple[optuna.Trial, int]:
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

