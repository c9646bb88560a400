"""Keras models built from a trial's plain ``model`` config.

The layers come from ``architecture.plan`` (see there for the families a study can ask for);
this module only turns each ``LayerSpec`` into its Keras layer. The output layer gives one
logit per class (the loss applies the softmax: numerically stabler, and a diverging run shows
up as a NaN loss instead of being clipped away). Only Keras 3 APIs, so any backend works.
"""

from __future__ import annotations

from sweep.models.architecture import POOL_SIZE, LayerSpec, plan


def build_model(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int):
    """A Sequential model for one trial; raises ConfigError when it cannot be built."""
    import keras

    layers = [_keras_layer(spec) for spec in plan(model_cfg, input_shape, num_classes).layers]
    return keras.Sequential([keras.Input(shape=input_shape), *layers])


def _keras_layer(spec: LayerSpec):
    from keras import layers

    a = spec.args
    if spec.kind == "conv":
        return layers.Conv2D(a["filters"], a["kernel"], padding=a["padding"], use_bias=a["bias"],
                             activation=a["activation"], name=spec.name)
    if spec.kind == "depthwise":
        return layers.DepthwiseConv2D(a["kernel"], padding=a["padding"], use_bias=False,
                                      name=spec.name)
    if spec.kind == "pool":
        pool = {"max": layers.MaxPooling2D, "avg": layers.AveragePooling2D}[a["pool"]]
        return pool(POOL_SIZE, name=spec.name)
    if spec.kind == "dense":
        return layers.Dense(a["units"], activation=a["activation"], name=spec.name)
    if spec.kind == "dropout":
        return layers.Dropout(a["rate"], name=spec.name)
    simple = {
        "batch_norm": layers.BatchNormalization,
        "relu": layers.ReLU,
        "flatten": layers.Flatten,
        "gap": layers.GlobalAveragePooling2D,
    }
    return simple[spec.kind](name=spec.name)
