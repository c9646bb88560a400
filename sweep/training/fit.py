"""Training one model: per-epoch metrics and seconds, test evaluation and diagnostics at
snapshot epochs, learning-rate schedules, early stop at a loss threshold.

Knows Keras and numpy only; never sees Optuna or a study file. Progress and storage hook in
through the plain ``on_epoch`` callable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from sweep._lazy import resolve
from sweep.data import Dataset
from sweep.defaults import CHECKPOINT_EVERY_S
from sweep.errors import ConfigError
from sweep.study.plugins import OPTIMIZERS
from sweep.study.training import TrainingConfig
from sweep.training.checkpoints import CheckpointClock, save_checkpoint
from sweep.training.device import (
    ACCELERATOR_STEPS_PER_EXECUTION,
    device_description,
    mark_jax_compilable,
)
from sweep.training.probe import EVAL_BATCH_SIZE, probe_for
from sweep.training.user_fit import fit_through


@keras.saving.register_keras_serializable(package="sweep")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy from logits against integer labels smoothed towards uniform: the true
    class gets ``1 - smoothing + smoothing / classes``, every other ``smoothing / classes``
    (Keras' own sparse loss has no smoothing)."""

    def __init__(self, smoothing: float, name: str = "smoothed_crossentropy",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing

    def call(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, from_logits=True,
                                                     label_smoothing=self.smoothing)

    def get_config(self) -> dict:
        return super().get_config() | {"smoothing": self.smoothing}


def make_optimizer(config: TrainingConfig) -> keras.optimizers.Optimizer:
    """``config.optimizer`` (``sweep.study.plugins.OPTIMIZERS``) at ``config.learning_rate``,
    with its momentum or its decoupled weight decay where it takes one."""
    entry = OPTIMIZERS[config.optimizer]
    extra = {"momentum": config.momentum} if entry.momentum else {}
    if entry.decoupled_decay:
        extra["weight_decay"] = config.weight_decay
    return resolve(entry.target)(learning_rate=config.learning_rate, **extra)


def compile_model(model: keras.Model, config: TrainingConfig) -> None:
    """Compile ``model`` with the trial's optimizer and loss, the one place both are built
    for a trial (Keras' fit and a fused group's members). A resumed model comes compiled,
    with its optimizer state; a hypermodel may compile its own (its study then cannot set a
    schedule: sweep.models.hypermodel.COMPILED_REFUSES): both are left as they are."""
    if getattr(model, "compiled", False):
        return
    on_cpu = device_description() == "cpu"
    model.compile(optimizer=make_optimizer(config), loss=loss_for(config.label_smoothing),
                  metrics=["accuracy"],
                  steps_per_execution=1 if on_cpu else ACCELERATOR_STEPS_PER_EXECUTION)


def loss_for(label_smoothing: float) -> keras.losses.Loss:
    if label_smoothing:
        return SmoothedCrossentropy(label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@dataclass
class TrainResult:
    """What one training run produced.

    ``epochs`` has one dict per finished epoch: ``epoch`` (1-based), ``train_loss``,
    ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``, ``seconds`` (wall
    time of the epoch), and ``test_loss``/``test_accuracy``/``roc_auc`` at snapshot epochs.
    ``snapshots`` maps a snapshot epoch to its row; ``details`` maps it to the larger
    diagnostics (see ``snapshot_details``). ``nan_epoch`` is the epoch whose loss became NaN;
    ``stopped_epoch`` the epoch whose training loss reached ``stop_at_loss``.
    """

    epochs: list[dict] = field(default_factory=list)
    snapshots: dict[int, dict] = field(default_factory=dict)
    details: dict[int, dict] = field(default_factory=dict)
    seconds: float = 0.0  # this run's own training (a resumed run: its new epochs only)
    nan_epoch: int | None = None
    stopped_epoch: int | None = None

    @classmethod
    def resumed(cls, done: Sequence[dict], snapshot_epochs: Collection[int]) -> TrainResult:
        """The result so far of a training resumed after the epochs of ``done`` (their rows,
        the snapshots among them); empty for a training from the first epoch."""
        return cls(epochs=list(done),
                   snapshots={r["epoch"]: r for r in done if r["epoch"] in snapshot_epochs})

    @property
    def all_seconds(self) -> float:
        """The seconds of every epoch of ``epochs``: resumed and continued ones included."""
        return float(sum(row.get("seconds", 0.0) for row in self.epochs))


class _Recorder(keras.callbacks.Callback):
    def __init__(self, data: Dataset, snapshots: Collection[int], result: TrainResult,
                 on_epoch: Callable[[dict], None] | None, checkpoint: Path | None,
                 every_s: float, stop_at_loss: float | None,
                 stop_requested: Callable[[], bool] | None) -> None:
        super().__init__()
        self.stop_requested = stop_requested
        self.data, self.snapshots, self.result, self.on_epoch = data, snapshots, result, on_epoch
        self.checkpoint, self.stop_at_loss = checkpoint, stop_at_loss
        self.clock = CheckpointClock(every_s)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # Keras calls this hook after every step anyway; the check is one Python call
        if self.stop_requested is not None and self.stop_requested():
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self.started
        assert logs is not None  # Keras' fit passes every epoch's logs
        row = {
            "epoch": epoch + 1,
            "train_loss": float(logs["loss"]),
            "train_accuracy": float(logs["accuracy"]),
            "val_loss": float(logs["val_loss"]),
            "val_accuracy": float(logs["val_accuracy"]),
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "seconds": seconds,
        }
        end_of_epoch(self.result, row, lambda: self.model, self.data, self.snapshots,
                     self.stop_at_loss)
        if self.result.nan_epoch or self.result.stopped_epoch:
            self.model.stop_training = True
        self.result.epochs.append(row)
        if (self.checkpoint is not None and self.result.nan_epoch is None
                and self.clock.due(seconds, self.model)):
            with self.clock.saving():
                save_checkpoint(self.checkpoint, self.model, self.result.epochs)
        if self.on_epoch is not None:
            self.on_epoch(row)


def end_of_epoch(result: TrainResult, row: dict, model: Callable[[], keras.Model],
                 data: Dataset, snapshots: Collection[int], stop_at_loss: float | None) -> None:
    """What a finished epoch's ``row`` makes of ``result``: the epoch a NaN loss came at, or
    the epoch whose training loss reached ``stop_at_loss``; at a snapshot epoch (that one
    included) the test metrics of ``model()`` go into ``row`` and its diagnostics into
    ``result.details``. The caller stops training after a NaN or a stop."""
    epoch = row["epoch"]
    if not math.isfinite(row["train_loss"]):
        result.nan_epoch = epoch
        return
    if stop_at_loss is not None and row["train_loss"] <= stop_at_loss:
        result.stopped_epoch = epoch
    if epoch in snapshots or result.stopped_epoch:
        details = probe_for(model()).details(data)
        row.update({k: details.pop(k) for k in ("test_loss", "test_accuracy", "roc_auc")})
        result.snapshots[epoch], result.details[epoch] = row, details


def learning_rate_at(schedule: str, learning_rate: float, decay: float, epoch: int,
                     epochs: int) -> float:
    """The learning rate (per step) for ``epoch`` (0-based) of ``epochs``.

    constant: ``learning_rate``; inverse_time: ``learning_rate / (1 + decay * epoch)`` (the
    seeds' LearningRateScheduler); cosine: from ``learning_rate`` down along half a cosine,
    reaching 0 after the last epoch.
    """
    if schedule == "inverse_time":
        return learning_rate / (1 + decay * epoch)
    if schedule == "cosine":
        return learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    return learning_rate


def train(
    model: keras.Model,
    data: Dataset,
    config: TrainingConfig,
    *,
    stop_requested: Callable[[], bool] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    done: Sequence[dict] = (),
    checkpoint: Path | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    tensorboard_dir: Path | None = None,
    fit: Callable | None = None,
) -> TrainResult:
    """Compile and fit ``model`` on ``data``; test metrics and diagnostics at snapshot epochs.

    Args:
        config: the optimizer (``make_optimizer``) and its settings, the loss's label
            smoothing, batch size, epochs, the learning-rate schedule (``learning_rate_at``,
            set at the start of each epoch), ``stop_at_loss`` (stop after the first epoch
            whose training loss is at most this; that epoch is then a snapshot too) and the
            snapshot epochs. ``weight_decay`` is AdamW's decoupled decay here; for the other
            optimizers it is an L2 term the model's layers carry (``config.kernel_l2``).
        stop_requested: asked after every batch; True raises KeyboardInterrupt there.
        on_epoch: called with each new epoch's row as soon as it is known.
        done: rows of epochs already trained (resuming from a checkpoint: ``model`` is then
            the checkpoint's compiled model, and training continues after ``done[-1]``).
        checkpoint: where to save model, optimizer and rows, or None.
        checkpoint_every_s: save at the end of an epoch when this many seconds passed since
            the last save (a save writes the model and optimizer state whole).
        tensorboard_dir: where Keras' TensorBoard callback writes this run's logs, or None.
        fit: trains in place of ``model.fit``, called as ``fit(model, x, y, epochs=...,
            initial_epoch=..., validation_data=..., callbacks=..., verbose=0)`` (a KerasTuner
            hypermodel's own fit); the ``model.fit`` it calls fills in ``batch_size``,
            ``validation_batch_size`` and ``shuffle=True`` where it sets none.

    Raises:
        ConfigError: ``fit`` trained no epoch through sweep's callbacks.
    """
    snapshots, epochs = config.snapshot_epochs, config.epochs
    result = TrainResult.resumed(done, snapshots)
    mark_jax_compilable(model)  # before compile, which decides whether XLA compiles the steps
    compile_model(model, config)
    recorder = _Recorder(data, snapshots, result, on_epoch, checkpoint, checkpoint_every_s,
                         config.stop_at_loss, stop_requested)
    callbacks = _callbacks(config, recorder, tensorboard_dir)
    started = time.perf_counter()
    settings = {"batch_size": config.batch_size, "validation_batch_size": EVAL_BATCH_SIZE,
                "shuffle": True}
    run = {"initial_epoch": len(result.epochs), "epochs": epochs,
           "validation_data": (data.x_val, data.y_val), "callbacks": callbacks, "verbose": 0}
    if fit is None:
        model.fit(data.x_train, data.y_train, **settings, **run)
    else:
        fit_through(fit, model, data.x_train, data.y_train, settings, **run)
        if len(result.epochs) == len(done) < epochs:
            raise ConfigError("the hypermodel's fit trained no epoch through model.fit with "
                              "sweep's callbacks")
    result.seconds = time.perf_counter() - started
    return result


def _callbacks(config: TrainingConfig, recorder: keras.callbacks.Callback,
               tensorboard_dir: Path | None) -> list[keras.callbacks.Callback]:
    """The fit's callbacks: TensorBoard's (first: it logs an epoch even if the recorder's
    hook stops), the learning-rate schedule's, then ``recorder``."""
    callbacks = [recorder]
    if config.schedule != "constant":
        callbacks.insert(0, keras.callbacks.LearningRateScheduler(
            lambda epoch, _lr: learning_rate_at(config.schedule, config.learning_rate,
                                                config.decay, epoch, config.epochs)
        ))
    if tensorboard_dir is not None:
        callbacks.insert(0, keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
    return callbacks
