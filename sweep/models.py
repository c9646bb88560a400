"""Keras models built from a trial's plain ``model`` config.

Layout, as in the seeds' notebooks: per entry of ``filters`` a Conv2D (``kernel`` x ``kernel``,
ReLU; with batch_norm: Conv -> BatchNorm -> ReLU), then 2x2 pooling after every conv but the
last (after the last too with ``pool_last``, as the Fashion-MNIST course model does), then
dropout; Flatten; per entry of ``dense`` a ReLU Dense layer and dropout; a Dense layer giving
one logit per class (the loss applies the softmax: numerically stabler, and a diverging run
shows up as a NaN loss instead of being clipped away). Only Keras 3 APIs, so any backend works.
"""

from __future__ import annotations

from sweep.errors import ConfigError

POOL_SIZE = 2  # pooling window and stride, in pixels


def feature_maps(model_cfg: dict, input_shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Output shape (height, width, channels) after each conv block, computed without Keras.

    Raises:
        ConfigError: when a kernel is wider than the feature map it meets, or pooling meets a
            map smaller than its window: the configuration cannot be built.
    """
    height, width = input_shape[0], input_shape[1]
    kernel, filters = model_cfg["kernel"], model_cfg["filters"]
    shapes = []
    for i, channels in enumerate(filters, start=1):
        if model_cfg["padding"] == "valid":
            if kernel > min(height, width):
                raise ConfigError(
                    f"conv layer {i} has a {kernel}x{kernel} kernel but meets a "
                    f"{height}x{width} feature map (padding: valid)"
                )
            height, width = height - kernel + 1, width - kernel + 1
        if _pools_after(i, model_cfg):
            if min(height, width) < POOL_SIZE:
                raise ConfigError(
                    f"pooling after conv layer {i} meets a {height}x{width} feature map, "
                    f"smaller than its {POOL_SIZE}x{POOL_SIZE} window"
                )
            height, width = height // POOL_SIZE, width // POOL_SIZE
        shapes.append((height, width, channels))
    return shapes


def _pools_after(layer: int, model_cfg: dict) -> bool:
    """Whether conv layer ``layer`` (1-based) is followed by pooling."""
    last = layer == len(model_cfg["filters"])
    return model_cfg["pooling"] != "none" and (not last or model_cfg.get("pool_last", False))


def build_model(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int):
    """A Sequential model for one trial; checks buildability first (see ``feature_maps``)."""
    import keras
    from keras import layers

    feature_maps(model_cfg, input_shape)
    pooling = {"max": layers.MaxPooling2D, "avg": layers.AveragePooling2D, "none": None}
    pool = pooling[model_cfg["pooling"]]
    dropout, batch_norm = model_cfg["dropout"], model_cfg["batch_norm"]
    stack = [keras.Input(shape=input_shape)]
    filters = model_cfg["filters"]
    for i, channels in enumerate(filters, start=1):
        conv_activation = None if batch_norm else "relu"
        stack.append(
            layers.Conv2D(
                channels, model_cfg["kernel"], padding=model_cfg["padding"],
                activation=conv_activation,
            )
        )
        if batch_norm:
            stack += [layers.BatchNormalization(), layers.Activation("relu")]
        if _pools_after(i, model_cfg):
            stack.append(pool(POOL_SIZE))
        if dropout:
            stack.append(layers.Dropout(dropout))
    stack.append(layers.Flatten())
    for units in model_cfg["dense"]:
        stack.append(layers.Dense(units, activation="relu"))
        if dropout:
            stack.append(layers.Dropout(dropout))
    stack.append(layers.Dense(num_classes))  # logits
    return keras.Sequential(stack)
