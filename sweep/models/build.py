"""Keras models built from a trial's plain ``model`` config.

The layers come from ``architecture.plan`` (see there for the families a study can ask for);
this module only turns each ``LayerSpec`` into its Keras layer. The output layer gives one
logit per class (the loss applies the softmax: numerically stabler, and a diverging run shows
up as a NaN loss instead of being clipped away). Only Keras 3 APIs, so any backend works.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sweep.models.architecture import AUGMENTS, POOL_SIZE, LayerSpec, plan

if TYPE_CHECKING:
    from collections.abc import Iterator

    import keras


def build_model(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int, *,
                augment: dict | None = None, l2: float = 0.0, seed: int | None = None,
                precision: str = "float32") -> keras.Sequential:
    """A Sequential model for one trial; raises ConfigError when it cannot be built.

    Args:
        augment: ``training.augment``: its layers come first, seeded from ``seed``.
        l2: L2 regularisation factor on every conv and dense kernel (0: none).
        precision: ``training.precision``, Keras' dtype policy for every layer but the last,
            which gives float32 logits (so the loss and the metrics are float32).
    """
    import keras

    architecture = plan(model_cfg, input_shape, num_classes, augment)
    regularizer = keras.regularizers.L2(l2) if l2 else None
    last = len(architecture.layers) - 1
    with dtype_policy(precision):
        layers = [_keras_layer(spec, input_shape, regularizer, None if seed is None else seed + i,
                               {"dtype": "float32"} if i == last else {})
                  for i, spec in enumerate(architecture.layers)]
        return keras.Sequential([keras.Input(shape=input_shape), *layers])


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to ``name`` while layers are made (they take it when
    constructed), then back to what it was."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _keras_layer(spec: LayerSpec, input_shape: tuple[int, ...],
                 regularizer: keras.regularizers.Regularizer | None, seed: int | None,
                 dtype: dict) -> keras.layers.Layer:
    from keras import layers

    a = spec.args
    if spec.kind in AUGMENTS.values():
        return _augment_layer(spec, input_shape, seed)
    if spec.kind == "conv":
        return layers.Conv2D(a["filters"], a["kernel"], padding=a["padding"], use_bias=a["bias"],
                             activation=a["activation"], kernel_regularizer=regularizer,
                             name=spec.name)
    if spec.kind == "depthwise":
        return layers.DepthwiseConv2D(a["kernel"], padding=a["padding"], use_bias=False,
                                      depthwise_regularizer=regularizer, name=spec.name)
    if spec.kind == "pool":
        pool = {"max": layers.MaxPooling2D, "avg": layers.AveragePooling2D}[a["pool"]]
        return pool(POOL_SIZE, name=spec.name)
    if spec.kind == "dense":
        return layers.Dense(a["units"], activation=a["activation"],
                            kernel_regularizer=regularizer, name=spec.name, **dtype)
    if spec.kind == "dropout":
        return layers.Dropout(a["rate"], name=spec.name)
    simple = {
        "batch_norm": layers.BatchNormalization,
        "relu": layers.ReLU,
        "flatten": layers.Flatten,
        "gap": layers.GlobalAveragePooling2D,
    }
    return simple[spec.kind](name=spec.name, **dtype)


def _augment_layer(spec: LayerSpec, input_shape: tuple[int, ...],
                   seed: int | None) -> keras.layers.Layer:
    """Keras' preprocessing layer for one ``training.augment`` field (images in [0, 1])."""
    from keras import layers

    amount, name = spec.args["amount"], spec.name
    if spec.kind == "random_crop":
        # Padding by p and cropping back at a random place is a shift by a whole number of
        # pixels in [-p, p] with zeros coming in: one layer, per image, identity in evaluation.
        height, width = input_shape[0], input_shape[1]
        return layers.RandomTranslation(amount / height, amount / width, fill_mode="constant",
                                        interpolation="nearest", seed=seed, name=name)
    if spec.kind == "random_flip":
        return layers.RandomFlip(amount, seed=seed, name=name)
    if spec.kind == "random_translation":
        return layers.RandomTranslation(amount, amount, seed=seed, name=name)
    if spec.kind == "random_rotation":
        return layers.RandomRotation(amount, seed=seed, name=name)
    return layers.RandomContrast(amount, value_range=(0, 1), seed=seed, name=name)
