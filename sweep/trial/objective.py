"""The one module that knows both Optuna and Keras: one trial, from its values to its result.

``run_trial`` takes an Optuna trial and the point of the space to train; it builds the model
from the plain config, trains it, and writes what it learns onto the trial (per-epoch values,
snapshot results, provenance). It works with any trial, including ``optuna.trial.FixedTrial``.
Its steps (``prepare_point``, ``resume_point`` (``sweep.trial.resume``) or ``new_model``,
``check_model_size``, the ``epoch_reporter``, ``finish_training`` (``sweep.trial.ending``))
are public: a fused group's
trials (``sweep.trial.fused_trials``) go through the same ones, only their training differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import optuna

from sweep.data import Dataset
from sweep.defaults import CHECKPOINT_EVERY_S, TENSORBOARD_DIR
from sweep.errors import TrialFailed
from sweep.models import build_model
from sweep.models.build import dtype_policy
from sweep.models.hyperfit import trial_fit
from sweep.models.hypermodel import build_hypermodel, load_hypermodel
from sweep.records import TrialKey
from sweep.study import StudySpec
from sweep.study.space import trial_config
from sweep.study.training import TrainingConfig
from sweep.training.device import out_of_memory
from sweep.training.fit import TrainResult, train
from sweep.training.reuse import remember, reuse, step_key
from sweep.trial.ending import finish_training, objective_value
from sweep.trial.feasible import architecture_of, check_memory, check_size
from sweep.trial.hparams import TrialSession
from sweep.trial.provenance import provenance
from sweep.trial.resume import resume_point


@dataclass(frozen=True)
class TrialHooks:
    """How a trial meets the process that runs it; with none of them (the default) a trial
    trains alone, keeps nothing and stores its attributes with ``trial.set_user_attr``.

    Attributes:
        on_epoch: called with each epoch's row (storage, progress).
        stop_requested: asked after every training batch; True stops training with
            KeyboardInterrupt (Ctrl-C, see ``sweep.run.interrupt``).
        save_attrs: stores ``{key: value}`` user attributes of the trial at once (one storage
            transaction); called when training starts and on the way out, however the trial
            ends.
        artifact_store: an Optuna artifact store for the snapshot pictures, or None.
        checkpoint: this point's checkpoint file. When it exists (a worker died while
            training this point) training resumes after its last epoch, whose rows are
            replayed onto this trial. It is rewritten every ``checkpoint_every_s`` seconds.
        keep: where to keep the trained model (weights and optimizer state) with its epoch
            rows once the trial is done, to continue it when the study's epochs grow and for
            ``sweep export --model``, asked then (the file is named after the trial's number,
            which a worker may learn while the trial trains); None keeps nothing.
        earlier_diagnostics: the snapshot diagnostics of the trial this one continues (the
            checkpoint is that trial's kept model), kept with this trial's own.
        store_value: stores Optuna's per-epoch value ``(epoch, value)`` where no pruner
            reads it at once (the worker writes it behind training: ``sweep.run.behind``);
            None: ``trial.report``.
    """

    on_epoch: Callable[[dict], None] = lambda row: None
    stop_requested: Callable[[], bool] | None = None
    save_attrs: Callable[[dict], None] | None = None
    artifact_store: Any = None
    checkpoint: Path | None = None
    checkpoint_every_s: float = CHECKPOINT_EVERY_S
    keep: Callable[[], Path] | None = None
    earlier_diagnostics: dict | None = None
    store_value: Callable[[int, float], None] | None = None


@dataclass
class Point:
    """A trial's point made concrete: its config, seed and data, and what is known of its
    model before it is built (sweep's own models only)."""

    config: dict
    seed: int
    training: TrainingConfig
    data: Dataset
    architecture: Any  # sweep.models.Architecture, or None for a hypermodel
    hypermodel: Any  # the study's KerasTuner hypermodel, or None


def run_trial(trial: optuna.Trial, spec: StudySpec, values: dict,
              dataset_for: Callable[[dict, int], Dataset],
              hooks: TrialHooks = TrialHooks()) -> float | tuple[float, ...]:
    """Train the configuration at ``values`` and return the objective's value (a tuple, one
    per metric, for a multi-objective study).

    Args:
        values: ``{dotted.name: value}`` for each search param (grid point or sampled).
        dataset_for: ``(dataset_cfg, seed) -> Dataset``, cached by the caller so a process
            loads each dataset once.
        hooks: where the epochs, attributes, pictures and models go (``TrialHooks``).

    Raises:
        TrialFailed: the configuration cannot be built or breaks a study constraint (both
            found before any training), or the loss became NaN; the message is the reason
            stored on the trial.
        optuna.TrialPruned: the study's pruner stopped it after an epoch.
    """
    attrs = PendingAttrs(trial, hooks.save_attrs)  # saved before training and on the way out
    try:
        point = prepare_point(attrs, spec, values, dataset_for)
        report = epoch_reporter(trial, spec, hooks)
        model, done, key = _resume_or_build(attrs, point, hooks.checkpoint, report)
        param_count = check_model_size(attrs, spec, model, point)
        board = TENSORBOARD_DIR / spec.name / f"trial-{trial.number}" \
            if point.training.tensorboard else None
        session = TrialSession(spec, values, board) if board is not None else None
        attrs.save()  # a running trial shows its config and layers (the dashboard, status)
        result = _fit(model, point, hooks, report, done, board)
        if key is not None and result.nan_epoch is None:
            remember(key, model)
        objective = finish_training(trial, attrs, spec, point, result, hooks, param_count,
                                    model)
        if session is not None:  # TensorBoard's HParams tab: this trial's objective
            session.end(objective, result.epochs[-1]["epoch"])
        return objective_value(objective)
    finally:
        attrs.save()


def prepare_point(attrs: dict, spec: StudySpec, values: dict,
                  dataset_for: Callable[[dict, int], Dataset]) -> Point:
    """The point's config, seed, provenance and data; sweep's own models are analysed (and
    rejected if they cannot be built) before anything is built, a KerasTuner hypermodel is
    only known once built."""
    config, seed = trial_config(spec.config, values, spec.seed)
    attrs |= {TrialKey.CONFIG: config, TrialKey.SEED: seed, TrialKey.PROVENANCE: provenance(spec)}
    data = dataset_for(config["dataset"], seed)
    training = TrainingConfig.from_section(config["training"])
    architecture = architecture_of(config, data.input_shape, data.num_classes)
    if architecture is None:
        return Point(config, seed, training, data, None,
                      load_hypermodel(config["model"]["hypermodel"], spec.source))
    attrs |= {
        TrialKey.RECEPTIVE_FIELD: architecture.receptive_field,
        TrialKey.LAYERS: architecture.rows(),
    }
    check_memory(architecture.params)  # before building it, which would exhaust memory
    return Point(config, seed, training, data, architecture, None)


def epoch_reporter(trial: optuna.Trial, spec: StudySpec,
                   hooks: TrialHooks) -> Callable[[dict], None]:
    """What each epoch's row goes through: the hooks' ``on_epoch``, then Optuna's per-epoch
    value (the objective's metric, when finite; through ``hooks.store_value`` where no
    pruner reads it) and the study's pruner (single-objective studies only)."""
    prunes = spec.search.pruner != "none"

    def report(row: dict) -> None:
        hooks.on_epoch(row)
        value = row.get(spec.metric)
        if spec.multi_objective or value is None or not math.isfinite(value):
            return
        if not prunes and hooks.store_value is not None:
            hooks.store_value(row["epoch"], float(value))
            return
        trial.report(value, step=row["epoch"])
        # without a pruner Optuna would still read the whole trial back to ask NopPruner
        if prunes and trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {row['epoch']}")

    return report


def _resume_or_build(attrs: dict, point: Point, checkpoint: Path | None,
                     report: Callable[[dict], None]
                     ) -> tuple[keras.Model, list[dict], str | None]:
    """``(model, done, step key)``: the checkpoint's model and the rows of its epochs (each
    reported again onto this trial), or a new model, trained through an earlier trial's
    compiled step where one can train it (the key, to keep the step for the next trial)."""
    resumed = resume_point(attrs, point, checkpoint, report)
    if resumed is not None:
        return *resumed, None
    model = new_model(point)
    if point.hypermodel is not None:
        return model, [], None
    key = step_key(point.config["model"], point.training, point.data)
    if key is not None:
        fresh, model = model, reuse(key, model, point.training.learning_rate)
        if model is not fresh:
            attrs[TrialKey.REUSED_STEP] = True
    return model, [], key


def check_model_size(attrs: dict, spec: StudySpec, model: keras.Model,
                     point: Point) -> int:
    """The model's parameter count, recorded and held against ``constraints.max_params``."""
    param_count = int(model.count_params())
    if point.architecture is not None:
        assert param_count == point.architecture.params, "architecture.plan miscounted"
    attrs[TrialKey.PARAM_COUNT] = param_count
    check_size(spec, param_count)
    return param_count


def _fit(model: keras.Model, point: Point, hooks: TrialHooks, report: Callable[[dict], None],
         done: list[dict], board: Path | None) -> TrainResult:
    """Train; running out of accelerator memory fails the trial with that reason."""
    hp_fit = trial_fit(point.hypermodel.fit, point.config["hp"]) if point.hypermodel else None
    try:
        return train(model, point.data, point.training, stop_requested=hooks.stop_requested,
                     on_epoch=report, done=done, checkpoint=hooks.checkpoint,
                     checkpoint_every_s=hooks.checkpoint_every_s, tensorboard_dir=board,
                     fit=hp_fit)
    except Exception as err:
        if not out_of_memory(err):
            raise
        raise TrialFailed(f"out of GPU memory: {str(err).splitlines()[0][:200]}") from None


class PendingAttrs(dict):
    """The trial's user attributes set since the last ``save``, which stores them together."""

    def __init__(self, trial: optuna.Trial,
                 save_attrs: Callable[[dict], None] | None) -> None:
        super().__init__()

        def set_each(attrs: dict) -> None:
            for key, value in attrs.items():
                trial.set_user_attr(key, value)

        self._save = save_attrs or set_each

    def save(self) -> None:
        if self:
            self._save(dict(self))
            self.clear()


def new_model(point: Point) -> keras.Model:
    """sweep's own model, or the study's KerasTuner hypermodel built with the trial's hps."""
    training, data = point.training, point.data
    if point.hypermodel is not None:
        with dtype_policy(training.precision):  # build(hp)'s layers take the policy
            return build_hypermodel(point.hypermodel, point.config["hp"], data.input_shape,
                                    data.num_classes)
    return build_model(point.config["model"], data.input_shape, data.num_classes,
                       augment=training.augment, seed=point.seed, l2=training.kernel_l2,
                       precision=training.precision)
