"""Fused trials: points of one compiled step trained as one program, each a whole trial.

``run_fused_trials`` is ``run_trial`` for a group (``sweep.training.fused``). Each member is
prepared, resumed or built, held against the study's constraints, reported to Optuna epoch
by epoch (pruning included) and recorded exactly as it would be alone, through
``objective``'s own steps; only the training differs. The members' epochs run side by side,
and a member leaves the group when it ends (complete, pruned, failed at a NaN loss, or its
claim lost) while the others go on. Its checkpoint is its own Keras model with its optimizer
state: it resumes alone or in any other group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import keras
import optuna
from optuna.trial import TrialState

from sweep.data import Dataset
from sweep.records import TrialKey
from sweep.study import StudySpec
from sweep.study.space import trial_config
from sweep.study.training import TrainingConfig
from sweep.training.checkpoints import CheckpointClock, save_checkpoint
from sweep.training.fit import TrainResult, compile_model, end_of_epoch
from sweep.training.fused import FusedGroup, Member
from sweep.training.reuse import step_constants
from sweep.trial.ending import (
    LOST,
    Outcome,
    check_finite,
    ended_by,
    finish_training,
    objective_value,
    outcome_of,
)
from sweep.trial.objective import (
    PendingAttrs,
    Point,
    TrialHooks,
    check_model_size,
    epoch_reporter,
    new_model,
    prepare_point,
)
from sweep.trial.resume import resume_point

# How a member ended, for ``FusedTrial.ended``: its ``ending.Outcome``.
Ended = Callable[[TrialState | None, object, str | None], None]


def fuse_key(spec: StudySpec, values: dict) -> str | None:
    """What decides which points may share one fused program: the model, the dataset's
    configuration and every training field but those a member keeps as its own
    (``reuse.MAY_DIFFER``: learning rate and its schedule, epochs, snapshots, stop_at_loss;
    the seed is not in it either). None for a point that trains alone: a KerasTuner
    hypermodel, float16 loss scaling (its own state) or TensorBoard logs (Keras' fit)."""
    config, _ = trial_config(spec.config, values, spec.seed)
    training = TrainingConfig.from_section(config["training"])
    if config["model"].get("hypermodel") or training.precision == "mixed_float16" or (
            training.tensorboard):
        return None
    return json.dumps([config["model"], step_constants(training), config["dataset"]],
                      sort_keys=True, default=str)


@dataclass
class FusedTrial:
    """One member's trial, its point's ``values``, its ``hooks`` (``stop_requested``: its own
    claim was lost; Ctrl-C is the group's) and ``ended(state, value, note)``, called once when
    it leaves: COMPLETE with its objective value, FAIL or PRUNED with the note to show, or
    None when ``stop_requested`` stopped it."""

    trial: optuna.Trial
    values: dict
    hooks: TrialHooks
    ended: Ended


@dataclass
class _Entry:
    """A member on its way through the group: its trial, Keras side and what it recorded
    (``point``, ``report`` and ``member`` are set by ``_ready``, before any use)."""

    fused: FusedTrial
    attrs: PendingAttrs
    point: Point = field(init=False)
    report: Callable[[dict], None] = field(init=False)
    member: Member = field(init=False)
    param_count: int = 0
    result: TrainResult = field(default_factory=TrainResult)

    def end(self, state: TrialState | None, value: object = None,
            note: str | None = None) -> None:
        self.attrs.save()
        self.fused.ended(state, value, note)


def run_fused_trials(members: list[FusedTrial], spec: StudySpec,
                     dataset_for: Callable[[dict, int], Dataset],
                     interrupted: Callable[[], bool]) -> None:
    """Train ``members`` (points of one ``fuse_key``) side by side; each ends through its
    ``ended`` as its trial would alone. Members resumed from checkpoints of different epochs
    train in turn, one group per epoch count.

    Raises:
        KeyboardInterrupt: ``interrupted()`` became True (asked between compiled calls); the
            members not ended yet have their attributes saved, and are the caller's to give
            back.
    """
    entries = [_Entry(m, PendingAttrs(m.trial, m.hooks.save_attrs)) for m in members]
    try:
        ready = [e for e in entries if _ready(e, spec, dataset_for)]
        for e in [e for e in ready if len(e.member.rows) >= e.point.training.epochs]:
            ready.remove(e)  # its checkpoint holds every epoch: it only has to be recorded
            e.end(*outcome_of(partial(_complete, e, spec, e.member.model)))
        for epochs in sorted({len(e.member.rows) for e in ready}):
            _train([e for e in ready if len(e.member.rows) == epochs], spec, interrupted)
    finally:
        for e in entries:
            e.attrs.save()


def _ready(e: _Entry, spec: StudySpec,
           dataset_for: Callable[[dict, int], Dataset]) -> bool:
    """Prepare ``e``'s point, resume or build its model and compile it with its own
    optimizer; False when it ended already (rejected, or pruned at a resumed epoch)."""
    f = e.fused
    try:
        e.point = prepare_point(e.attrs, spec, f.values, dataset_for)
        e.report = epoch_reporter(f.trial, spec, f.hooks)
        model, done = resume_point(e.attrs, e.point, f.hooks.checkpoint, e.report) or (
            new_model(e.point), [])
        e.param_count = check_model_size(e.attrs, spec, model, e.point)
    except Exception as err:
        ending = ended_by(err)
        if ending is None:
            raise
        e.end(*ending)
        return False
    training = e.point.training
    compile_model(model, training)
    e.result = TrainResult.resumed(done, training.snapshot_epochs)
    e.member = Member(model, training, e.point.seed, e.point.data, rows=e.result.epochs)
    e.attrs.save()  # a running trial shows its config and layers (the dashboard, status)
    return True


def _train(entries: list[_Entry], spec: StudySpec, interrupted: Callable[[], bool]) -> None:
    """Epochs of the group until every member has left it; checkpoints every
    ``checkpoint_every_s`` (the first member's hooks: one worker's setting)."""
    group = FusedGroup([e.member for e in entries],
                       key=fuse_key(spec, entries[0].fused.values))
    for e in entries:
        e.attrs[TrialKey.FUSED] = len(entries)
    live, clock = list(entries), CheckpointClock(entries[0].fused.hooks.checkpoint_every_s)
    while live:
        rows = group.train_epoch(stop=interrupted)
        for e, row in zip(list(live), rows, strict=True):
            e.result.seconds += row["seconds"]
            state, value, note = _after_epoch(group, e, row, spec)
            if state is not None or note == LOST:
                group.leave(e.member)
                live.remove(e)
                e.end(state, value, note)
        if live and clock.due(rows[0]["seconds"], live[0].member.model, copies=len(live)):
            with clock.saving():
                for e in live:
                    if e.fused.hooks.checkpoint is not None:
                        save_checkpoint(e.fused.hooks.checkpoint, group.member_model(e.member),
                                        e.result.epochs)


def _after_epoch(group: FusedGroup, e: _Entry, row: dict, spec: StudySpec) -> Outcome:
    """How a member stands after one more epoch: state None while it trains on (note
    ``LOST`` when its claim was lost); its snapshot probed, its row reported."""
    result, training = e.result, e.point.training
    end_of_epoch(result, row, lambda: group.member_model(e.member), e.point.data,
                 training.snapshot_epochs, training.stop_at_loss)
    if e.fused.hooks.stop_requested is not None and e.fused.hooks.stop_requested():
        return None, None, LOST

    def trained_on() -> Outcome:
        e.report(row)
        check_finite(result)
        if result.stopped_epoch is None and row["epoch"] < training.epochs:
            return None, None, None
        return _complete(e, spec, group.member_model(e.member))

    return outcome_of(trained_on)


def _complete(e: _Entry, spec: StudySpec, model: keras.Model) -> Outcome:
    """COMPLETE with the objective value of a member whose training ended, ``model``
    holding its trained state (``ending.finish_training``)."""
    values = finish_training(e.fused.trial, e.attrs, spec, e.point, e.result, e.fused.hooks,
                             e.param_count, model)
    return TrialState.COMPLETE, objective_value(values), None
