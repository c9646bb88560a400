"""A model's layers as plain data, analysed before anything is built: output shape, receptive
field and parameter count per layer, as the seeds' authors wrote them in comments by hand.

``plan`` turns a trial's ``model`` config into a list of ``LayerSpec``;
``models.build.build_model`` instantiates exactly these layers with Keras, so the analysis
and the trained model cannot disagree (a test compares every count with Keras' own). Pure
Python: ``sweep describe`` and the ``max_params`` constraint never import Keras.

Families (the words used in study files):
- ``training.augment`` (given to ``plan`` as ``augment``): random crop after zero padding,
  flip, translation, rotation, contrast, in that order, at the input; no parameters, the
  image's shape (Keras preprocessing layers: active while fitting only).
- ``block: conv``: per entry of ``filters`` a Conv2D ``kernel`` x ``kernel`` with bias, ReLU
  (with ``batch_norm``: Conv -> BatchNorm -> ReLU).
- ``block: separable``: a depthwise ``kernel`` x ``kernel`` then a pointwise 1x1 convolution,
  both without bias, ReLU, then BatchNorm with ``batch_norm``, then dropout (the CIFAR-10
  exercise's order, seed 004).
- after a block: 2x2 pooling where the study asks (``pool_after`` or every block but the last,
  the last too with ``pool_last``), a 1x1 ``transition`` convolution after each pooling, then
  a conv block's dropout. ``padding`` and ``dropout`` are one value for every block or a list
  of one per block (seed 004 pads ``same`` in its first block only).
- ``head: flatten``: Flatten, a ReLU Dense layer per entry of ``dense`` (each with dropout),
  one logit per class. ``head: gap``: a 1x1 convolution to one channel per class and global
  average pooling, no dense layer. ``filters: []`` gives the flattened-input dense baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sweep.errors import ConfigError

POOL_SIZE = 2  # pooling window and stride, in pixels
# training.augment's fields, in the order their layers meet the image: field -> layer kind
AUGMENTS = {"crop_padding": "random_crop", "flip": "random_flip",
            "translate": "random_translation", "rotation": "random_rotation",
            "contrast": "random_contrast"}
AUGMENT_OFF = {"flip": "none"}  # the value that means "no such change" (0 for the others)
BN_PARAMS_PER_CHANNEL = 4  # gamma, beta (trained), moving mean and variance (not trained)


@dataclass
class LayerSpec:
    """One layer: ``kind`` and its ``args`` say what to build; the rest is the analysis.

    ``shape`` is the output shape without the batch axis; ``receptive_field`` is in input
    pixels (for flatten, dense and global pooling: the window the whole map sees); ``jump`` is
    the distance in input pixels between neighbouring outputs.
    """

    name: str
    kind: str  # conv, depthwise, batch_norm, relu, pool, dropout, flatten, dense, gap, AUGMENTS
    args: dict = field(default_factory=dict)
    shape: tuple[int, ...] = ()
    receptive_field: int = 1
    jump: int = 1
    params: int = 0
    trainable: int = 0


@dataclass
class Architecture:
    """The analysed layers of one configuration and their totals."""

    layers: list[LayerSpec]
    input_shape: tuple[int, ...]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable for layer in self.layers)

    @property
    def receptive_field(self) -> int:
        """Receptive field in input pixels of the last spatial layer (before flatten/GAP)."""
        spatial = [layer for layer in self.layers if len(layer.shape) == 3]
        return spatial[-1].receptive_field if spatial else self.input_shape[0]

    def shown(self) -> list[LayerSpec]:
        """The layers that have parameters or change the shape: those a table lists."""
        return [layer for layer in self.layers if layer.kind not in ("relu", "dropout")]

    def rows(self) -> list[dict]:
        """One plain dict per layer ``shown`` (for tables)."""
        return [
            {"layer": layer.name, "output": "x".join(map(str, layer.shape)),
             "receptive_field": layer.receptive_field, "params": layer.params}
            for layer in self.shown()
        ]


def plan(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int,
         augment: dict | None = None) -> Architecture:
    """Analyse the layers ``model_cfg`` asks for on images of ``input_shape``, after the
    augmentation layers ``augment`` (``training.augment``) asks for.

    Raises:
        ConfigError: the configuration cannot be built (a kernel or pooling window wider than
            the feature map it meets, pooling after a block that does not exist, a dense layer
            after a global-average-pooling head).
    """
    stack = _Stack(tuple(input_shape))
    for key, kind in AUGMENTS.items():
        value = (augment or {}).get(key, AUGMENT_OFF.get(key, 0))
        if value != AUGMENT_OFF.get(key, 0):
            stack.add(kind.removeprefix("random_"), kind, amount=value)
    pools = _pool_positions(model_cfg)
    paddings, rates = _each_block(model_cfg, "padding"), _each_block(model_cfg, "dropout")
    blocks = zip(model_cfg["filters"], paddings, rates, strict=True)
    for i, (channels, padding, rate) in enumerate(blocks, start=1):
        _conv_block(stack, model_cfg, i, channels, padding, rate, pooled=i in pools)
    _head(stack, model_cfg, num_classes, rates)
    return stack.architecture()


def _conv_block(stack: _Stack, model_cfg: dict, i: int, channels: int, padding: str,
                rate: float, pooled: bool) -> None:
    """Conv block ``i``: a convolution (or a separable one), batch norm and ReLU, then its
    pooling, transition and dropout."""
    separable = model_cfg.get("block", "conv") == "separable"
    if separable:  # dropout inside the block, before pooling (seed 004's blocks)
        stack.depthwise(f"depthwise{i}", model_cfg["kernel"], padding)
        stack.conv(f"pointwise{i}", channels, 1, "valid", bias=False)
        stack.add(f"relu{i}", "relu")
        if model_cfg["batch_norm"]:
            stack.batch_norm(f"batch_norm{i}")
        if rate:
            stack.add(f"dropout{i}", "dropout", rate=rate)
    else:
        # without batch norm the ReLU is the conv's own activation, as people write it
        fused = None if model_cfg["batch_norm"] else "relu"
        stack.conv(f"conv{i}", channels, model_cfg["kernel"], padding, bias=True,
                   activation=fused)
        if model_cfg["batch_norm"]:
            stack.batch_norm(f"batch_norm{i}")
            stack.add(f"relu{i}", "relu")
    if pooled:
        stack.pool(f"pool{i}", model_cfg["pooling"], block=i)
        if model_cfg.get("transition"):
            stack.conv(f"transition{i}", model_cfg["transition"], 1, "valid", bias=not separable)
    if rate and not separable:  # after pooling (the CIFAR-10 seeds' conv blocks)
        stack.add(f"dropout{i}", "dropout", rate=rate)


def _head(stack: _Stack, model_cfg: dict, num_classes: int, rates: list) -> None:
    """The classifier after the conv blocks: global average pooling of a 1x1 convolution to
    the classes, or flatten, the dense layers (with the last block's dropout) and logits."""
    if model_cfg.get("head", "flatten") == "gap":
        if not model_cfg["filters"]:
            raise ConfigError("head gap needs at least one conv block (filters is empty)")
        if model_cfg["dense"]:
            raise ConfigError(
                f"head gap has no dense layers, but dense is {model_cfg['dense']}; set dense: []"
            )
        bias = model_cfg.get("block", "conv") != "separable"
        stack.conv("classes", num_classes, 1, "valid", bias=bias)
        stack.gap("logits")
        return
    stack.flatten("flatten")
    dense_rate = rates[-1] if isinstance(model_cfg["dropout"], list) else model_cfg["dropout"]
    for j, units in enumerate(model_cfg["dense"], start=1):
        stack.dense(f"dense{j}", units, activation="relu")
        if dense_rate:
            stack.add(f"dense_dropout{j}", "dropout", rate=dense_rate)
    stack.dense("logits", num_classes, activation=None)


def _each_block(model_cfg: dict, field: str) -> list:
    """``padding`` or ``dropout`` of each conv block: one value for all, or a list of one each."""
    value, n = model_cfg[field], len(model_cfg["filters"])
    if not isinstance(value, list):
        return [value] * n
    if len(value) != n:
        raise ConfigError(f"{field} lists {len(value)} values but there are {n} conv blocks "
                          "(filters); give one per block, or one for all")
    return value


def _pool_positions(model_cfg: dict) -> set[int]:
    """The 1-based conv blocks followed by 2x2 pooling."""
    n = len(model_cfg["filters"])
    if model_cfg["pooling"] == "none":
        return set()
    if model_cfg.get("pool_after") is not None:
        outside = [i for i in model_cfg["pool_after"] if i > n]
        if outside:
            raise ConfigError(f"pool_after names conv block {outside[0]} but there are {n}")
        return set(model_cfg["pool_after"])
    return set(range(1, n + 1 if model_cfg.get("pool_last", False) else n))


class _Stack:
    """Appends layers while tracking shape, receptive field and jump."""

    def __init__(self, input_shape: tuple[int, ...]):
        self.input_shape = input_shape
        self.layers: list[LayerSpec] = []
        self.shape, self.rf, self.jump = input_shape, 1, 1

    def architecture(self) -> Architecture:
        return Architecture(self.layers, self.input_shape)

    def add(self, name: str, kind: str, params: int = 0, trainable: int | None = None,
            **args: Any) -> None:
        self.layers.append(LayerSpec(
            name, kind, args, self.shape, self.rf, self.jump, params,
            params if trainable is None else trainable,
        ))

    def _window(self, name: str, kernel: int, padding: str, stride: int = 1) -> None:
        """Slide a ``kernel`` window with ``stride``: new spatial size and receptive field."""
        height, width, channels = self.shape
        if padding == "valid" and kernel > min(height, width):
            raise ConfigError(
                f"{name} has a {kernel}x{kernel} kernel but meets a {height}x{width} feature "
                "map (padding: valid); padding: same would keep it"
            )
        if padding == "valid":
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        else:
            height, width = -(-height // stride), -(-width // stride)
        self.shape = (height, width, channels)
        self.rf += (kernel - 1) * self.jump
        self.jump *= stride

    def conv(self, name: str, filters: int, kernel: int, padding: str, *, bias: bool,
             activation: str | None = None) -> None:
        channels_in = self.shape[2]
        self._window(name.replace("conv", "conv layer "), kernel, padding)
        self.shape = self.shape[:2] + (filters,)
        params = kernel * kernel * channels_in * filters + (filters if bias else 0)
        self.add(name, "conv", params, filters=filters, kernel=kernel, padding=padding, bias=bias,
                 activation=activation)

    def depthwise(self, name: str, kernel: int, padding: str) -> None:
        self._window(name.replace("depthwise", "depthwise layer "), kernel, padding)
        params = kernel * kernel * self.shape[2]
        self.add(name, "depthwise", params, kernel=kernel, padding=padding)

    def batch_norm(self, name: str) -> None:
        channels = self.shape[-1]
        self.add(name, "batch_norm", BN_PARAMS_PER_CHANNEL * channels, 2 * channels)

    def pool(self, name: str, kind: str, *, block: int) -> None:
        height, width, _ = self.shape
        if min(height, width) < POOL_SIZE:
            raise ConfigError(
                f"pooling after conv layer {block} meets a {height}x{width} feature map, "
                f"smaller than its {POOL_SIZE}x{POOL_SIZE} window"
            )
        self._window(name, POOL_SIZE, "valid", stride=POOL_SIZE)
        self.add(name, "pool", pool=kind)

    def _whole_map(self) -> None:
        """A layer that sees every position of the map: flatten, global pooling."""
        if len(self.shape) == 3:
            self.rf += (max(self.shape[:2]) - 1) * self.jump

    def gap(self, name: str) -> None:
        self._whole_map()
        self.shape = (self.shape[2],)
        self.add(name, "gap")

    def flatten(self, name: str) -> None:
        self._whole_map()
        size = 1
        for d in self.shape:
            size *= d
        self.shape = (size,)
        self.add(name, "flatten")

    def dense(self, name: str, units: int, *, activation: str | None) -> None:
        params = self.shape[0] * units + units
        self.shape = (units,)
        self.add(name, "dense", params, units=units, activation=activation)
