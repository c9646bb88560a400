"""Loaders, one per ``dataset.name``: ``(cfg, data_dir) -> (x_train, y_train, x_test, y_test)``,
named by the registry ``sweep.study.plugins.DATASETS``.

The Keras datasets keep Keras' own download-and-cache path; with ``data_dir``
(``SWEEP_DATA_DIR``) they read the same archives from a local folder, for machines without
internet. Keras is imported inside the loaders only, so nothing else pays for TensorFlow.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from sweep.data.classes import folder_classes
from sweep.errors import DataError
from sweep.study.reading import what_is

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
DIGITS_SCALE = 4  # digits are 8x8; each pixel becomes a 4x4 block -> 32x32, like CIFAR

Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test
# The SHA-256 of the publishers' archives, which Keras checks after a download: an archive in
# SWEEP_DATA_DIR must be that file (and so is a trusted pickle). Keras has none for
# Fashion-MNIST's idx files.
ARCHIVE_SHA256 = {
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-100-python.tar.gz": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
}
# Beside an archive, ``NAME.sha256`` (``sha256sum NAME > NAME.sha256``): its owner vouches for
# a copy that is not byte for byte the published one (repacked, another mirror); it is read
# like the published one, and reading it must still succeed.
VOUCHED = ".sha256"
# What reading a damaged file raises: ended streams (gzip, zip, tar), bad headers, pickles.
DAMAGED = (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, tarfile.TarError,
           pickle.UnpicklingError)


def digits(cfg: dict, data_dir: str | None) -> Raw:
    """scikit-learn's 1,797 real 8x8 handwritten digits (values 0..16), shipped with the package.

    Upscaled by pixel repetition to 32x32x1 so the CIFAR-sized conv stacks of the studies fit,
    and split 80/20 into train/test with a fixed seed, so the test set never depends on the
    study's seed.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.kron(digits.images, np.ones((DIGITS_SCALE, DIGITS_SCALE))) / 16.0
    order = np.random.default_rng(0).permutation(len(x))
    n_test = len(x) // 5
    test, train = order[:n_test], order[n_test:]
    return x[train], digits.target[train], x[test], digits.target[test]


def _cifar(cfg: dict, data_dir: str | None, *, classes: int) -> Raw:
    archive = f"cifar-{classes}-python.tar.gz"
    local = _local(data_dir, archive)
    if local is None:
        import keras

        if classes == 10:
            return _download("cifar10", archive, keras.datasets.cifar10.load_data)
        return _download(
            "cifar100",
            archive,
            lambda: keras.datasets.cifar100.load_data(label_mode=cfg["label_mode"]),
        )
    label_key = b"labels" if classes == 10 else f"{cfg['label_mode']}_labels".encode()
    with _reading(local, f"a CIFAR-{classes} python archive"), tarfile.open(local) as tar:
        batches = {}
        for member in tar.getmembers():
            file = tar.extractfile(member) if member.isfile() else None
            if file is not None:
                batches[Path(member.name).name] = pickle.load(file, encoding="bytes")
    train_names = sorted(n for n in batches if n.startswith("data_batch_")) or ["train"]
    test_name = "test_batch" if classes == 10 else "test"

    def images(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        data = np.concatenate([np.asarray(batches[n][b"data"], np.uint8) for n in names])
        labels = np.concatenate([np.asarray(batches[n][label_key]) for n in names])
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels

    try:
        return (*images(train_names), *images([test_name]))
    except KeyError as missing:
        raise DataError(f"{local}: not a CIFAR-{classes} python archive (missing {missing})"
                        ) from None


def fashion_mnist(cfg: dict, data_dir: str | None) -> Raw:
    files = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    found = [_local(data_dir, f) or _local(data_dir, f"fashion-mnist/{f}") for f in files]
    paths = [p for p in found if p is not None]
    if len(paths) < len(found):
        import keras

        return _download(
            "fashion_mnist", "the 4 idx .gz files", keras.datasets.fashion_mnist.load_data
        )

    def idx(path: Path, offset: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        with _reading(path, "a gzip'd idx file"), gzip.open(path, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset).reshape(-1, *shape)

    x_train, x_test = idx(paths[0], 16, (28, 28)), idx(paths[2], 16, (28, 28))
    return x_train, idx(paths[1], 8), x_test, idx(paths[3], 8)


def mnist(cfg: dict, data_dir: str | None) -> Raw:
    local = _local(data_dir, "mnist.npz")
    if local is None:
        import keras

        return _download("mnist", "mnist.npz", keras.datasets.mnist.load_data)
    return _npz_arrays(local)


def npz(cfg: dict, data_dir: str | None) -> Raw:
    path = Path(cfg["path"])
    if not path.is_file():
        raise DataError(f"dataset.path: {path} {what_is(path)} (expected an .npz file)")
    return _npz_arrays(path)


def _npz_arrays(path: Path) -> Raw:
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz file (no zip archive: truncated, or another kind "
                        "of file)")
    with _reading(path, "an .npz file"), np.load(path, allow_pickle=False) as f:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f]
        if missing:
            raise DataError(f"{path}: missing arrays {', '.join(missing)}")
        return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


def folder(cfg: dict, data_dir: str | None) -> Raw:
    """``PATH/train/<class>/*.png`` and ``PATH/test/<class>/*``; classes sorted by name."""
    root = Path(cfg["path"])
    classes = _folder_classes(root)
    first: list = []  # (size, mode) of the first image; the rest are converted to match
    return (*_read_images(root / "train", classes, first),
            *_read_images(root / "test", classes, first))


def _folder_classes(root: Path) -> list[str]:
    """The class names of a folder dataset, the same under ``train/`` and ``test/``."""
    train_dir, test_dir = root / "train", root / "test"
    if not root.is_dir():
        raise DataError(f"dataset.path: {root} {what_is(root)} (expected a folder)")
    if not train_dir.is_dir() or not test_dir.is_dir():
        raise DataError(f"dataset.path: {root} must hold train/ and test/, each with class "
                        "folders")
    classes = folder_classes(root)
    if not classes:
        raise DataError(f"dataset.path: {train_dir} has no class folders")
    tested = folder_classes(root, "test")
    if tested != classes:
        raise DataError(f"{root}: train/ and test/ hold different classes "
                        f"(only in train/: {_listed(set(classes) - set(tested))}; only in "
                        f"test/: {_listed(set(tested) - set(classes))})")
    return classes


def _read_images(split_dir: Path, classes: list[str], first: list
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The images of one split (``x``, ``y``), each converted to the size and mode of the
    dataset's first image (``first``, filled by the first read)."""
    from PIL import Image

    xs, ys = [], []
    for label, name in enumerate(classes):
        for file in sorted((split_dir / name).glob("*")):
            if file.suffix.lower() not in IMAGE_SUFFIXES or file.name.startswith("."):
                continue
            if not file.is_file():  # a FIFO would block the read forever
                raise DataError(f"{file} {what_is(file)}, not an image file; remove it")
            try:  # an unreadable image is refused: a dataset does not shrink unseen
                with Image.open(file) as img:
                    if not first:
                        first.append((img.size, "L" if img.mode in ("L", "1") else "RGB"))
                    size, mode = first[0]
                    image = img.convert(mode)
                    xs.append(np.asarray(image if image.size == size else image.resize(size)))
            except (*DAMAGED, SyntaxError, Image.DecompressionBombError) as err:
                raise DataError(f"{file}: not a readable image ({_reason(err)}); remove "
                                "or replace it") from None
            ys.append(label)
    if not xs:
        raise DataError(f"dataset.path: no images under {split_dir}")
    return np.stack(xs), np.asarray(ys)


def _local(data_dir: str | None, name: str) -> Path | None:
    """``data_dir/name`` if it is there, after checking a publisher's archive's checksum
    (or the one its owner vouched for, ``VOUCHED``).

    Raises:
        DataError: ``data_dir`` is no folder (before any download is tried: a mistyped
            ``SWEEP_DATA_DIR`` would otherwise read as "no archive there"), or the archive is
            neither the published one nor one vouched for.
    """
    if not data_dir:
        return None
    if not Path(data_dir).is_dir():
        raise DataError(f"the data folder {data_dir} (SWEEP_DATA_DIR or --data-dir) does not "
                        f"exist: put {name} in a folder and name that one")
    path = Path(data_dir) / name
    if not path.is_file():
        return None
    want = ARCHIVE_SHA256.get(path.name)
    if want is None:
        return path
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() in (want, _vouched(path)):
        return path
    raise DataError(
        f"{path}: not the published archive ({path.stat().st_size:,} bytes, SHA-256 "
        f"{digest.hexdigest()[:16]}..., expected {want[:16]}...): truncated, damaged or another "
        f"file; offline, train on images in folders (dataset.name: folder) or arrays "
        f"(dataset.name: npz), or, if this copy is right, vouch for it: sha256sum {path.name} "
        f"> {path.name}{VOUCHED} in {path.parent}")


def _vouched(path: Path) -> str | None:
    """The SHA-256 its owner wrote beside an archive (``sha256sum``'s line), or None."""
    try:
        return (path.parent / (path.name + VOUCHED)).read_text().split()[0].lower()
    except (OSError, IndexError, UnicodeDecodeError):
        return None


@contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Whatever reading a damaged ``path`` raises becomes one line naming the file."""
    try:
        yield
    except DAMAGED as err:
        raise DataError(f"{path}: cannot read it as {what} ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    """The first line of an error's message (its type where it has none)."""
    lines = str(err).splitlines()
    return lines[0][:160] if lines else type(err).__name__


def _listed(names: set[str]) -> str:
    return ", ".join(repr(n) for n in sorted(names)) or "none"


def _download(name: str, archive: str, load: Callable[[], Any]) -> Raw:
    """Keras' own download-and-cache; when that is impossible, one line saying what to put
    where."""
    try:
        result = load()
    except Exception as err:  # Keras raises a bare Exception for "URL fetch failure"
        # "URL fetch failure on URL: errno -- reason": the reason, whole, is what to say
        reason = _reason(err).rpartition(" -- ")[2]
        raise DataError(
            f"cannot download {name} ({reason}); put {archive} in a "
            "folder and set SWEEP_DATA_DIR to it (or into ~/.keras/datasets/ as Keras caches it)"
        ) from None
    (x_train, y_train), (x_test, y_test) = result
    return x_train, y_train, x_test, y_test


def cifar10(cfg: dict, data_dir: str | None) -> Raw:
    return _cifar(cfg, data_dir, classes=10)


def cifar100(cfg: dict, data_dir: str | None) -> Raw:
    return _cifar(cfg, data_dir, classes=100)
