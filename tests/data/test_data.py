"""Dataset loaders: one contract for every loader, fed the real file formats made here."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from sweep.data import load_dataset, loaders
from sweep.errors import DataError
from sweep.study.plugins import DATASETS

from conftest import tiny_arrays


@pytest.fixture(autouse=True)
def published(monkeypatch):
    """The archives made here stand in for the publishers' (the internet, which tests cannot
    reach): ``publish`` makes a file's checksum the one sweep checks an archive against."""
    monkeypatch.setattr(loaders, "ARCHIVE_SHA256", dict(loaders.ARCHIVE_SHA256))


def publish(path):
    loaders.ARCHIVE_SHA256[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()


def _cfg(name, **extra):
    return {"name": name, "validation_split": 0.2, "label_mode": "fine", "path": None,
            "max_train": None, **extra}


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _cifar_batch(x, labels: dict) -> bytes:
    # The python-pickle format of the CIFAR archives: rows of 3072 bytes, channels first.
    data = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    return pickle.dumps({b"data": data, **labels})


def make_cifar10(tmp_path):
    x_train, y_train, x_test, y_test = tiny_arrays(size=32, channels=3, classes=10, n_train=50)
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        for i in range(5):
            part = slice(i * 10, (i + 1) * 10)
            _add(tar, f"cifar-10-batches-py/data_batch_{i + 1}",
                 _cifar_batch(x_train[part], {b"labels": list(y_train[part])}))
        _add(tar, "cifar-10-batches-py/test_batch",
             _cifar_batch(x_test, {b"labels": list(y_test)}))
    publish(tmp_path / "cifar-10-python.tar.gz")
    return _cfg("cifar10"), (50, 32, 32, 3), 10


def make_cifar100(tmp_path, label_mode="coarse"):
    # every one of the 100 fine classes in both splits; fine class f is in coarse class f // 5
    x_train, y_train, x_test, y_test = tiny_arrays(size=32, channels=3, classes=100,
                                                   n_train=100, n_test=100)
    with tarfile.open(tmp_path / "cifar-100-python.tar.gz", "w:gz") as tar:
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            labels = {b"coarse_labels": list(y // 5), b"fine_labels": list(y)}
            _add(tar, f"cifar-100-python/{split}", _cifar_batch(x, labels))
    publish(tmp_path / "cifar-100-python.tar.gz")
    return _cfg("cifar100", label_mode=label_mode), (100, 32, 32, 3), (20 if label_mode ==
                                                                       "coarse" else 100)


def make_fashion_mnist(tmp_path):
    x_train, y_train, x_test, y_test = tiny_arrays(size=28, classes=10, n_train=30)
    for prefix, x, y in (("train", x_train, y_train), ("t10k", x_test, y_test)):
        with gzip.open(tmp_path / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"\0" * 16 + x.astype(np.uint8).tobytes())
        with gzip.open(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(b"\0" * 8 + y.astype(np.uint8).tobytes())
    return _cfg("fashion_mnist"), (30, 28, 28, 1), 10


def make_mnist(tmp_path):
    x_train, y_train, x_test, y_test = tiny_arrays(size=28, classes=10, n_train=30)
    x_train, x_test = x_train[..., 0], x_test[..., 0]
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    publish(tmp_path / "mnist.npz")
    return _cfg("mnist"), (30, 28, 28, 1), 10


def make_npz(tmp_path):
    x_train, y_train, x_test, y_test = tiny_arrays(n_train=40)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return _cfg("npz", path=str(path)), (40, 12, 12, 1), 3


def make_folder(tmp_path):
    x_train, y_train, x_test, y_test = tiny_arrays(size=16, channels=3, n_train=30)
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            folder = tmp_path / "images" / split / ("cat", "dog", "frog")[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:04d}.png")
    return _cfg("folder", path=str(tmp_path / "images")), (30, 16, 16, 3), 3


def make_digits(tmp_path):
    return _cfg("digits"), (1438, 32, 32, 1), 10


MAKERS = {
    "cifar10": make_cifar10,
    "cifar100": make_cifar100,
    "fashion_mnist": make_fashion_mnist,
    "mnist": make_mnist,
    "npz": make_npz,
    "folder": make_folder,
    "digits": make_digits,
}


def test_every_loader_has_a_contract_case():
    assert set(MAKERS) == set(DATASETS)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_loader_contract(tmp_path, name):
    cfg, (n_train, *shape), classes = MAKERS[name](tmp_path)
    data = load_dataset(cfg, seed=0, data_dir=str(tmp_path))
    assert data.input_shape == tuple(shape)
    assert len(data.x_train) + len(data.x_val) == n_train
    assert len(data.x_val) == round(n_train * 0.2)
    assert len(data.y_train) == len(data.x_train) and len(data.y_test) == len(data.x_test)
    for x in (data.x_train, data.x_val, data.x_test):
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert data.y_train.dtype == np.int32 and data.y_train.ndim == 1
    assert data.num_classes == classes


# Each loader's class names, as the report labels them (before: 0, 1, 2 everywhere).
NAMES = {
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"],
    "cifar100": ["aquatic_mammals", "fish", "flowers", "food_containers"],  # coarse, first 4
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "mnist": list("0123456789"),
    "npz": ["0", "1", "2"],  # no class_names array in the file: numbered
    "folder": ["cat", "dog", "frog"],  # its class folders, sorted
    "digits": list("0123456789"),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_every_loader_names_its_classes(tmp_path, name):
    cfg, _, classes = MAKERS[name](tmp_path)
    data = load_dataset(cfg, seed=0, data_dir=str(tmp_path))
    assert len(data.class_names) == classes
    assert list(data.class_names[: len(NAMES[name])]) == NAMES[name]


def test_class_names_of_an_npz_file_and_of_cifar100_fine(tmp_path):
    cfg, *_ = make_npz(tmp_path)
    with np.load(cfg["path"]) as f:
        arrays = dict(f)
    np.savez(cfg["path"], **arrays, class_names=np.array(["low", "middle", "high"]))
    assert load_dataset(cfg, 0).class_names == ("low", "middle", "high")
    fine_cfg, *_ = make_cifar100(tmp_path, "fine")
    fine = load_dataset(fine_cfg, 0, str(tmp_path))
    assert fine.class_names[:3] == ("apple", "aquarium_fish", "baby")
    assert fine.class_names[95] == "whale" and len(fine.class_names) == 100


def test_validation_split_is_seeded(tmp_path):
    cfg, *_ = make_npz(tmp_path)
    a, b = load_dataset(cfg, 0), load_dataset(cfg, 0)
    c = load_dataset(cfg, 1)
    assert np.array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)


def test_cifar100_label_modes(tmp_path):
    fine_cfg, *_ = make_cifar100(tmp_path, "fine")
    coarse = load_dataset({**fine_cfg, "label_mode": "coarse"}, 0, str(tmp_path))
    fine = load_dataset(fine_cfg, 0, str(tmp_path))
    assert np.array_equal(fine.y_test // 5, coarse.y_test)


def test_max_train_keeps_a_seeded_sample_of_every_class(tmp_path):
    cfg, *_ = make_npz(tmp_path)
    data = load_dataset({**cfg, "max_train": 20}, 0)
    assert len(data.x_train) + len(data.x_val) == 20
    again = load_dataset({**cfg, "max_train": 20}, 0)
    assert np.array_equal(data.y_train, again.y_train)  # the same sample for every trial
    # images sorted by class (as a folder loads them) still give a sample of every class
    x, y = np.zeros((90, 4, 4, 1), "uint8"), np.repeat(np.arange(3), 30)
    path = tmp_path / "sorted.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:3], y_test=y[::30])
    sample = load_dataset({**cfg, "path": str(path), "max_train": 12}, 0)
    assert set(np.concatenate([sample.y_train, sample.y_val])) == {0, 1, 2}


def test_download_failure_says_which_file_to_put_where(tmp_path, monkeypatch):
    import keras

    def no_internet():  # what Keras raises when the download cannot happen
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/~kriz/cifar-10-python."
                        "tar.gz: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", no_internet)
    with pytest.raises(DataError, match=r"cannot download cifar10 \(\[Errno -2\] Name or service "
                                        r"not known\); put cifar-10-python.tar.gz "
                                        "in a folder and set SWEEP_DATA_DIR"):
        load_dataset(_cfg("cifar10"), 0, data_dir=str(tmp_path))


@pytest.mark.parametrize("name", ["npz", "folder"])
def test_missing_path_is_one_line(tmp_path, name):
    with pytest.raises(DataError, match="dataset.path: .*missing"):
        load_dataset(_cfg(name, path=str(tmp_path / "missing")), 0)


def test_a_copy_of_an_archive_its_owner_vouched_for_is_read(tmp_path):
    # issue 34: offline, an archive that reads right but is not byte for byte the published
    # one (repacked) could only be refused, with "download it again"
    cfg, shape, _ = make_cifar10(tmp_path)
    archive = tmp_path / "cifar-10-python.tar.gz"
    loaders.ARCHIVE_SHA256[archive.name] = "0" * 64  # the published one is another file
    with pytest.raises(DataError, match="vouch for it: sha256sum cifar-10-python.tar.gz > "
                                        "cifar-10-python.tar.gz.sha256 in "):
        load_dataset(cfg, 0, data_dir=str(tmp_path))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (tmp_path / "cifar-10-python.tar.gz.sha256").write_text(f"{digest}  {archive.name}\n")
    data = load_dataset(cfg, 0, data_dir=str(tmp_path))
    assert len(data.x_train) + len(data.x_val) == shape[0]
    (tmp_path / "cifar-10-python.tar.gz.sha256").write_text("f" * 64)  # vouched for another
    with pytest.raises(DataError, match="not the published archive"):
        load_dataset(cfg, 0, data_dir=str(tmp_path))


def test_a_data_folder_that_does_not_exist_is_said_before_any_download(tmp_path,
                                                                       monkeypatch):
    import keras

    def download():
        raise AssertionError("no download may be tried")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", download)
    with pytest.raises(DataError, match=rf"the data folder {tmp_path / 'datta'} "
                                        r"\(SWEEP_DATA_DIR or --data-dir\) does not exist"):
        load_dataset(_cfg("cifar10"), 0, data_dir=str(tmp_path / "datta"))


def test_max_test_keeps_one_sample_of_the_test_set_for_every_seed(tmp_path):
    # issue 34: no field shrank the test set of a quick study (CIFAR-10: 10,000 images at
    # every snapshot epoch)
    x_train, y_train, x_test, y_test = tiny_arrays()
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    whole = load_dataset(_cfg("npz", path=str(path)), 0)
    one, other = (load_dataset(_cfg("npz", path=str(path), max_test=7), seed) for seed in (0, 1))
    assert len(whole.x_test) == len(x_test) and len(one.x_test) == 7
    assert np.array_equal(one.x_test, other.x_test) and np.array_equal(one.y_test, other.y_test)
    assert not np.array_equal(one.x_test, whole.x_test[:7])  # a sample, not the first rows
