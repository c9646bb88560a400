"""Datasets: load, check, normalise to float32 in [0, 1], hold out a seeded validation split.

Every loader (``loaders.py``) returns plain numpy arrays; this module checks them, in one place
for every loader, and makes them a Dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sweep._lazy import resolve
from sweep.data.classes import class_names, declared_names
from sweep.data.loaders import Raw
from sweep.errors import DataError
from sweep.study.plugins import DATASETS


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
    # where each training and validation image sits among the loader's training images
    # (the seeded split): members of a fused group on one dataset share one copy of it
    train_index: np.ndarray | None = None
    val_index: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


def load_raw(cfg: dict, data_dir: str | None = None) -> Raw:
    """The arrays of the dataset in ``cfg`` as its loader reads them, before any checking,
    splitting or scaling."""
    return resolve(DATASETS[cfg["name"]].target)(cfg, data_dir)


def load_dataset(cfg: dict, seed: int, data_dir: str | None = None,
                 source: str | None = None) -> Dataset:
    """Load the dataset named in ``cfg`` (the study's ``dataset`` section).

    Args:
        cfg: ``{name, validation_split, label_mode, path, max_train, max_test}``.
        seed: seeds the validation split.
        data_dir: folder of pre-downloaded archives (``SWEEP_DATA_DIR``), or None.
        source: the study file, named first in a DataError as in every other study error.
    """
    try:
        raw = load_raw(cfg, data_dir)
        x_train, y_train, x_test, y_test, num_classes = _checked(
            raw, cfg.get("path") or f"dataset {cfg['name']}", declared_names(cfg))
    except DataError as err:
        if source is None:
            raise
        raise DataError(f"{source}: {err}") from None
    order = np.random.default_rng(seed).permutation(len(x_train))
    if cfg.get("max_train"):  # a seeded sample: folder data comes sorted by class
        order = order[: cfg["max_train"]]
    if cfg.get("max_test"):  # the same sample for every seed: trials score on one test set
        keep = np.sort(np.random.default_rng(0).permutation(len(x_test))[: cfg["max_test"]])
        x_test, y_test = x_test[keep], y_test[keep]
    n_val = max(1, round(len(order) * cfg["validation_split"]))
    val, train = order[:n_val], order[n_val:]
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
        train_index=train,
        val_index=val,
    )


CIFAR100_COARSE_CLASSES = 20


def input_spec(cfg: dict, data_dir: str | None = None,
               source: str | None = None) -> tuple[tuple[int, ...], int]:
    """``(image shape, number of classes)`` of the dataset in ``cfg``; folder and npz data
    are loaded to find out (``source``: the study file, for errors)."""
    entry = DATASETS[cfg["name"]]
    if entry.shape is not None:
        coarse = cfg["name"] == "cifar100" and cfg["label_mode"] == "coarse"
        return entry.shape, CIFAR100_COARSE_CLASSES if coarse else entry.num_classes
    data = load_dataset(cfg, 0, data_dir, source)
    return data.input_shape, data.num_classes


def _checked(raw: Raw, where: str, names: tuple[str, ...]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``(x_train, y_train, x_test, y_test, num_classes)`` normalised, or a DataError naming
    ``where`` (the data file) and what is wrong. ``num_classes``: the declared ``names``, else
    the largest training label + 1; every class must have images in both splits."""
    (x_train, y_train), (x_test, y_test) = (
        _split_checked(where, split, x, y)
        for split, x, y in (("train", *raw[:2]), ("test", *raw[2:])))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{where}: x_train's images are {x_train.shape[1:]} but x_test's "
                        f"{x_test.shape[1:]}: expected one shape")
    num_classes = len(names) or int(y_train.max()) + 1
    names = names or tuple(str(k) for k in range(num_classes))
    for split, y in (("train", y_train), ("test", y_test)):
        outside = y[(y < 0) | (y >= num_classes)]
        if len(outside):
            raise DataError(f"{where}: y_{split} holds label {outside[0]}: expected 0 to "
                            f"{num_classes - 1} (the {num_classes} classes)")
        empty = np.flatnonzero(np.bincount(y, minlength=num_classes) == 0)
        if len(empty):
            others = f" (nor have {len(empty) - 1} other classes)" if len(empty) > 1 else ""
            raise DataError(f"{where}: class {names[empty[0]]!r} has no {split} images"
                            f"{others}; every class needs images in both splits")
    return x_train, y_train.astype("int32"), x_test, y_test.astype("int32"), num_classes


def _split_checked(where: str, split: str, x: np.ndarray, y: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """One split's images normalised and labels as int64, once they are images (rank 3 or 4,
    finite numbers) with one integer label each."""
    x, y = np.asarray(x), np.asarray(y)
    numeric = np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    if x.ndim not in (3, 4) or len(x) == 0:
        problem = (f"x_{split} has shape {x.shape}: expected images (N, height, width) or "
                   "(N, height, width, channels), N > 0")
    elif not numeric:
        problem = f"x_{split} has dtype {x.dtype}: expected integer or float pixels"
    elif y.ndim != 1 and y.shape[1:] != (1,):
        problem = (f"y_{split} has shape {y.shape}: expected one class number per image "
                   "(one-hot labels? take their argmax)")
    elif not np.issubdtype(y.dtype, np.integer):
        problem = f"y_{split} has dtype {y.dtype}: expected integer class numbers"
    elif len(x) != len(y):
        problem = f"x_{split} has {len(x)} images but y_{split} {len(y)} labels"
    elif np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        problem = f"x_{split} holds NaN or infinite pixels"
    else:
        return _normalise(x), y.reshape(-1).astype("int64")
    raise DataError(f"{where}: {problem}")


def _normalise(x: np.ndarray) -> np.ndarray:
    """To float32 in [0, 1] with a channel axis. Done once per process, not per batch."""
    if x.ndim == 3:
        x = x[..., None]
    if x.dtype == np.uint8:
        return x.astype("float32") / np.float32(255)
    return x.astype("float32")
