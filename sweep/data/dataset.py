"""Datasets: load, normalise to float32 in [0, 1], hold out a seeded validation split.

Every loader (``loaders.py``) returns plain numpy arrays; this module makes them a Dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep.data.classes import class_names
from sweep.data.loaders import DATASETS, DIGITS_SCALE
from sweep.errors import DataError


@dataclass(frozen=True)
class Dataset:
    """Normalised arrays: images (N, H, W, C) float32 in [0, 1], labels (N,) int32, and the
    classes' names (``class_names[k]`` names label k)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])



def load_dataset(cfg: dict, seed: int, data_dir: str | None = None,
                 source: str | None = None) -> Dataset:
    """Load the dataset named in ``cfg`` (the study's ``dataset`` section).

    Args:
        cfg: ``{name, validation_split, label_mode, path, max_train}``.
        seed: seeds the validation split.
        data_dir: folder of pre-downloaded archives (``SWEEP_DATA_DIR``), or None.
        source: the study file, named first in a DataError as in every other study error.
    """
    try:
        x_train, y_train, x_test, y_test = DATASETS[cfg["name"]](cfg, data_dir)
    except DataError as err:
        if source is None:
            raise
        raise DataError(f"{source}: {err}") from None
    x_train, x_test = _normalise(x_train), _normalise(x_test)
    y_train = np.asarray(y_train).reshape(-1).astype("int32")
    y_test = np.asarray(y_test).reshape(-1).astype("int32")
    order = np.random.default_rng(seed).permutation(len(x_train))
    if cfg.get("max_train"):  # a seeded sample: folder data comes sorted by class
        order = order[: cfg["max_train"]]
    n_val = max(1, round(len(order) * cfg["validation_split"]))
    val, train = order[:n_val], order[n_val:]
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return Dataset(
        name=cfg["name"],
        x_train=x_train[train],
        y_train=y_train[train],
        x_val=x_train[val],
        y_val=y_train[val],
        x_test=x_test,
        y_test=y_test,
        num_classes=num_classes,
        class_names=class_names(cfg, num_classes),
    )


# Image shape and class count of the fixed datasets, so that a study's models can be analysed
# (``sweep describe``) without loading or downloading any data.
SHAPES = {
    "digits": ((8 * DIGITS_SCALE, 8 * DIGITS_SCALE, 1), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
    "fashion_mnist": ((28, 28, 1), 10),
    "mnist": ((28, 28, 1), 10),
}
CIFAR100_COARSE_CLASSES = 20


def input_spec(cfg: dict, data_dir: str | None = None,
               source: str | None = None) -> tuple[tuple[int, ...], int]:
    """``(image shape, number of classes)`` of the dataset in ``cfg``; folder and npz data
    are loaded to find out (``source``: the study file, for errors)."""
    if cfg["name"] == "cifar100" and cfg["label_mode"] == "coarse":
        return SHAPES["cifar100"][0], CIFAR100_COARSE_CLASSES
    if cfg["name"] in SHAPES:
        return SHAPES[cfg["name"]]
    data = load_dataset(cfg, 0, data_dir, source)
    return data.input_shape, data.num_classes


def _normalise(x: np.ndarray) -> np.ndarray:
    """To float32 in [0, 1] with a channel axis. Done once per process, not per batch."""
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype == np.uint8:
        return x.astype("float32") / np.float32(255)
    return x.astype("float32")
