"""Training one model: per-epoch metrics and seconds, test evaluation at snapshot epochs.

Knows Keras and numpy only; never sees Optuna or a study file. Progress and storage hook in
through the plain ``on_epoch`` callable.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import keras

from sweep.data import Dataset

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}
# Evaluation has no gradients, so it runs in bigger batches than training: the metrics do not
# depend on it (BatchNorm uses its moving statistics at inference), only the speed does.
EVAL_BATCH_SIZE = 512
# Training steps per call into the compiled function on an accelerator: fewer Python round
# trips per epoch keep a GPU busy with a small model at batch 32. On a CPU the step itself
# dominates and the longer trace of the multi-step loop (about a second) is not repaid.
ACCELERATOR_STEPS_PER_EXECUTION = 16
# Seconds of training between checkpoints: a worker killed mid-trial loses at most this much.
CHECKPOINT_EVERY_S = 15.0


@dataclass
class TrainResult:
    """What one training run produced.

    ``epochs`` has one dict per finished epoch: ``epoch`` (1-based), ``train_loss``,
    ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``seconds`` (wall time of the epoch),
    and ``test_loss``/``test_accuracy`` at snapshot epochs. ``snapshots`` maps a snapshot epoch
    to its row. ``nan_epoch`` is the epoch whose loss became NaN, if any.
    """

    epochs: list[dict] = field(default_factory=list)
    snapshots: dict[int, dict] = field(default_factory=dict)
    seconds: float = 0.0
    nan_epoch: int | None = None


class _Recorder(keras.callbacks.Callback):
    def __init__(self, data, snapshots, result: TrainResult, on_epoch, checkpoint, every_s):
        super().__init__()
        self.data, self.snapshots, self.result, self.on_epoch = data, snapshots, result, on_epoch
        self.checkpoint, self.every_s = checkpoint, every_s
        self.saved = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        row = {
            "epoch": epoch + 1,
            "train_loss": float(logs["loss"]),
            "train_accuracy": float(logs["accuracy"]),
            "val_loss": float(logs["val_loss"]),
            "val_accuracy": float(logs["val_accuracy"]),
            "seconds": seconds,
        }
        if not math.isfinite(row["train_loss"]):
            self.result.nan_epoch = epoch + 1
            self.model.stop_training = True
        elif epoch + 1 in self.snapshots:
            test = self.model.evaluate(
                self.data.x_test, self.data.y_test,
                batch_size=EVAL_BATCH_SIZE, verbose=0, return_dict=True,
            )
            row["test_loss"], row["test_accuracy"] = float(test["loss"]), float(test["accuracy"])
            self.result.snapshots[epoch + 1] = row
        self.result.epochs.append(row)
        due = time.monotonic() - self.saved >= self.every_s
        if self.checkpoint is not None and due and self.result.nan_epoch is None:
            save_checkpoint(self.checkpoint, self.model, self.result.epochs)
            self.saved = time.monotonic()
        if self.on_epoch is not None:
            self.on_epoch(row)


def save_checkpoint(path: Path, model: keras.Model, rows: list[dict]) -> None:
    """Model, optimizer state and the epoch rows so far; written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.keras")
    model.save(tmp)
    rows_tmp = path.with_suffix(".tmp.json")
    rows_tmp.write_text(json.dumps(rows))
    os.replace(tmp, path)  # the model first: a rows file always has its model
    os.replace(rows_tmp, path.with_suffix(".json"))


def load_checkpoint(path: Path) -> tuple[keras.Model, list[dict]] | None:
    """The compiled model and epoch rows saved by ``save_checkpoint``, or None."""
    rows_file = path.with_suffix(".json")
    if not path.is_file() or not rows_file.is_file():
        return None
    return keras.models.load_model(path), json.loads(rows_file.read_text())


def remove_checkpoint(path: Path) -> None:
    for file in (path, path.with_suffix(".json")):
        file.unlink(missing_ok=True)


def device_description() -> str:
    """The accelerator Keras trains on, in words ("cpu" when there is none)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return ", ".join(g.name for g in gpus) or "cpu"
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return backend


def train(
    model: keras.Model,
    data: Dataset,
    *,
    optimizer: str,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    snapshots: list[int] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    done: list[dict] = (),
    checkpoint: Path | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    tensorboard_dir: Path | None = None,
) -> TrainResult:
    """Compile and fit ``model`` on ``data``; evaluate the test set at each snapshot epoch.

    Args:
        optimizer: a key of ``OPTIMIZERS``.
        learning_rate: per optimizer step.
        snapshots: epochs (1-based) after which the test set is evaluated; default ``[epochs]``.
        on_epoch: called with each new epoch's row as soon as it is known.
        done: rows of epochs already trained (resuming from a checkpoint: ``model`` is then
            the checkpoint's compiled model, and training continues after ``done[-1]``).
        checkpoint: where to save model, optimizer and rows, or None.
        checkpoint_every_s: save at the end of an epoch when this many seconds passed since
            the last save (a save costs ~40 ms for the conv_width model).
        tensorboard_dir: where Keras' TensorBoard callback writes this run's logs, or None.
    """
    snapshots = snapshots or [epochs]
    result = TrainResult(epochs=list(done))
    result.snapshots = {r["epoch"]: r for r in done if r["epoch"] in snapshots}
    # A resumed model comes compiled, with its optimizer state; a hypermodel may compile its own.
    if not done and not getattr(model, "compiled", False):
        on_cpu = device_description() == "cpu"
        model.compile(
            optimizer=OPTIMIZERS[optimizer](learning_rate=learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            steps_per_execution=1 if on_cpu else ACCELERATOR_STEPS_PER_EXECUTION,
        )
    recorder = _Recorder(data, snapshots, result, on_epoch, checkpoint, checkpoint_every_s)
    callbacks = [recorder]
    if tensorboard_dir is not None:  # first: it logs an epoch even if the recorder's hook stops
        callbacks.insert(0, keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
    started = time.perf_counter()
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=batch_size,
        initial_epoch=len(result.epochs),
        epochs=epochs,
        validation_data=(data.x_val, data.y_val),
        validation_batch_size=EVAL_BATCH_SIZE,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    result.seconds = time.perf_counter() - started
    return result
