"""Training one model: per-epoch metrics and seconds, test evaluation and diagnostics at
snapshot epochs, learning-rate schedules, early stop at a loss threshold.

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
import numpy as np

from sweep import diagnostics
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
# Test images in the PCA picture of a snapshot: enough to see clusters, small to store.
PCA_POINTS = 2000


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
    seconds: float = 0.0
    nan_epoch: int | None = None
    stopped_epoch: int | None = None


class _Recorder(keras.callbacks.Callback):
    def __init__(self, data, snapshots, result: TrainResult, on_epoch, checkpoint, every_s,
                 stop_at_loss, stop_requested):
        super().__init__()
        self.stop_requested = stop_requested
        self.data, self.snapshots, self.result, self.on_epoch = data, snapshots, result, on_epoch
        self.checkpoint, self.every_s, self.stop_at_loss = checkpoint, every_s, stop_at_loss
        self.saved = time.monotonic()
        self.probe = None  # built at the first snapshot

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        # Keras calls this hook after every step anyway; the check is one Python call
        if self.stop_requested is not None and self.stop_requested():
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        row = {
            "epoch": epoch + 1,
            "train_loss": float(logs["loss"]),
            "train_accuracy": float(logs["accuracy"]),
            "val_loss": float(logs["val_loss"]),
            "val_accuracy": float(logs["val_accuracy"]),
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "seconds": seconds,
        }
        if not math.isfinite(row["train_loss"]):
            self.result.nan_epoch = epoch + 1
            self.model.stop_training = True
        else:
            if self.stop_at_loss is not None and row["train_loss"] <= self.stop_at_loss:
                self.result.stopped_epoch = epoch + 1
                self.model.stop_training = True
            if epoch + 1 in self.snapshots or self.result.stopped_epoch:
                self.probe = self.probe or SnapshotProbe(self.model)
                details = self.probe.details(self.data)
                row.update({k: details.pop(k) for k in ("test_loss", "test_accuracy", "roc_auc")})
                self.result.snapshots[epoch + 1] = row
                self.result.details[epoch + 1] = details
        self.result.epochs.append(row)
        due = time.monotonic() - self.saved >= self.every_s
        if self.checkpoint is not None and due and self.result.nan_epoch is None:
            save_checkpoint(self.checkpoint, self.model, self.result.epochs)
            self.saved = time.monotonic()
        if self.on_epoch is not None:
            self.on_epoch(row)


class SnapshotProbe:
    """An inference model over a trained model's layers, built once per training run, giving
    the test metrics and diagnostics of the model as it is at each snapshot."""

    def __init__(self, model: keras.Model):
        layers = model.layers
        # hidden ReLU dense layers (any model: sweep's own or a KerasTuner hypermodel's)
        self.hidden = [layer for layer in layers[:-1] if isinstance(layer, keras.layers.Dense)
                       and layer.activation is keras.activations.relu]
        # the output stage: the last layer, or a GAP head's 1x1 conv to the classes
        head = next((i for i, layer in enumerate(layers) if layer.name == "classes"),
                    len(layers) - 1)
        # the features feeding the output stage (the image itself for a bare dense head)
        self.has_features = head > 0
        outputs = [model.outputs[0], *(layer.output for layer in self.hidden)]
        if self.has_features:
            outputs.append(layers[head - 1].output)
        self.probe = keras.Model(model.inputs, outputs)
        self.first = next((layer for layer in model.layers if isinstance(
            layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))), None)

    def _batches(self, x: np.ndarray):
        """The probe's outputs batch by batch. Every call has the same batch shape (the last
        batch is padded), so the inference function is traced once, not once per size."""
        for start in range(0, len(x), EVAL_BATCH_SIZE):
            batch = x[start : start + EVAL_BATCH_SIZE]
            n = len(batch)
            if n < EVAL_BATCH_SIZE:
                pad = np.zeros((EVAL_BATCH_SIZE - n, *batch.shape[1:]), dtype=batch.dtype)
                batch = np.concatenate([batch, pad])
            outputs = self.probe.predict_on_batch(batch)
            yield [np.asarray(o)[:n] for o in outputs]

    def details(self, data: Dataset) -> dict:
        """Test metrics and diagnostics: one pass over the test set, and one over the
        training set when there are hidden dense layers (to count their dead units there).

        Returns:
            ``diagnostics.logit_metrics``' keys, ``dead_units`` (``{layer: {units,
            dead_train, dead_test}}``), ``pca`` (``{x, y, labels}`` lists: the output layer's
            input features of up to ``PCA_POINTS`` test images in 2-D) and ``first_kernels``
            (the first conv layer's weights, ``(k, k, channels_in, filters)``, or None).
        """
        test = [np.concatenate(parts) for parts in zip(*self._batches(data.x_test))]
        details = diagnostics.logit_metrics(test[0], data.y_test, data.num_classes)
        dense_test = test[1 : 1 + len(self.hidden)]
        # the most each hidden unit gives on any training image, batch by batch
        train_max = [np.full(layer.units, -np.inf) for layer in self.hidden]
        if self.hidden:
            for outputs in self._batches(data.x_train):
                for i, acts in enumerate(outputs[1 : 1 + len(self.hidden)]):
                    train_max[i] = np.maximum(train_max[i], acts.max(axis=0))
        details["dead_units"] = {
            layer.name: {
                "units": int(layer.units),
                "dead_train": diagnostics.dead_units(peak[None, :]),
                "dead_test": diagnostics.dead_units(acts),
            }
            for layer, peak, acts in zip(self.hidden, train_max, dense_test)
        }
        features = test[-1] if self.has_features else data.x_test
        if features.ndim == 4:  # a feature map (global-average-pooling head): average over space
            features = features.mean(axis=(1, 2))
        shown = slice(0, PCA_POINTS)
        coords = diagnostics.pca_2d(features[shown])
        details["pca"] = {"x": coords[:, 0].tolist(), "y": coords[:, 1].tolist(),
                          "labels": data.y_test[shown].tolist()}
        details["first_kernels"] = self._first_kernels()
        return details

    def _first_kernels(self) -> np.ndarray | None:
        """The first conv layer's filters as ``(k, k, channels_in, filters)``; a depthwise
        layer's per-channel kernels become single-channel filters."""
        if self.first is None:
            return None
        kernel = np.asarray(keras.ops.convert_to_numpy(self.first.kernel))
        if isinstance(self.first, keras.layers.DepthwiseConv2D):  # (k, k, channels, multiplier)
            k = kernel.shape[0]
            kernel = kernel.reshape(k, k, 1, -1)
        return kernel


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
    momentum: float = 0.0,
    schedule: str = "constant",
    decay: float = 0.0,
    stop_at_loss: float | None = None,
    stop_requested: Callable[[], bool] | None = None,
    snapshots: list[int] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    done: list[dict] = (),
    checkpoint: Path | None = None,
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    tensorboard_dir: Path | None = None,
) -> TrainResult:
    """Compile and fit ``model`` on ``data``; test metrics and diagnostics at snapshot epochs.

    Args:
        optimizer: a key of ``OPTIMIZERS``.
        learning_rate: per optimizer step, at the first epoch.
        momentum: for sgd and rmsprop.
        schedule, decay: see ``learning_rate_at``; set at the start of each epoch.
        stop_at_loss: stop after the first epoch whose training loss is at most this (that
            epoch is then a snapshot too).
        stop_requested: asked after every batch; True raises KeyboardInterrupt there.
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
        extra = {"momentum": momentum} if optimizer != "adam" else {}
        model.compile(
            optimizer=OPTIMIZERS[optimizer](learning_rate=learning_rate, **extra),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            steps_per_execution=1 if on_cpu else ACCELERATOR_STEPS_PER_EXECUTION,
        )
    callbacks = [_Recorder(data, snapshots, result, on_epoch, checkpoint, checkpoint_every_s,
                           stop_at_loss, stop_requested)]
    if schedule != "constant":
        callbacks.insert(0, keras.callbacks.LearningRateScheduler(
            lambda epoch, _lr: learning_rate_at(schedule, learning_rate, decay, epoch, epochs)
        ))
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
