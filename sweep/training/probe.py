"""Snapshot diagnostics: the test metrics and the larger diagnostics of a model as it is at a
snapshot epoch, from one inference pass over the test set (and one over the training set when
there are hidden dense layers). Numbers only; ``diagnostics.py`` does the arithmetic.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import keras
import numpy as np

from sweep.data import Dataset
from sweep.training import diagnostics

# Evaluation has no gradients, so it runs in bigger batches than training: the metrics do not
# depend on it (BatchNorm uses its moving statistics at inference), only the speed does.
EVAL_BATCH_SIZE = 512
# Test images in the PCA picture of a snapshot: enough to see clusters, small to store.
PCA_POINTS = 2000


_probes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its probe


def probe_for(model: keras.Model) -> SnapshotProbe:
    """The model's probe, made once per model (so a compiled model kept for the next trial,
    ``sweep.training.reuse``, keeps its traced inference function too)."""
    if model not in _probes:
        _probes[model] = SnapshotProbe(model)
    return _probes[model]


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
        # one input, not a list of one: ``_batches`` feeds it a single array (a list here
        # makes Keras warn on every batch under JAX and PyTorch that the structures differ)
        self.probe = keras.Model(model.inputs[0], outputs)
        self.first = next((layer for layer in model.layers if isinstance(
            layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))), None)

    def _batches(self, x: np.ndarray) -> Iterator[list[np.ndarray]]:
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
        test = [np.concatenate(parts) for parts in zip(*self._batches(data.x_test), strict=True)]
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
            for layer, peak, acts in zip(self.hidden, train_max, dense_test, strict=True)
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
