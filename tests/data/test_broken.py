"""Broken data files: each is one line naming the file and what is wrong, exit code 2, and no
trial in the database. Each case makes its broken file for real."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sweep.cli import main
from sweep.store import open_storage

from conftest import tiny_arrays, tiny_study, write_study
from test_data import (
    make_cifar10,
    make_fashion_mnist,
    make_folder,
    make_mnist,
    publish,
    published,  # noqa: F401  (autouse: the archives made here are published)
)


def _npz(tmp_path, **change):
    """The tiny npz dataset with some arrays replaced."""
    x_train, y_train, x_test, y_test = tiny_arrays()
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test) | change
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return {"name": "npz", "path": str(path)}, path


def _cut(path, keep=0.5):
    """Truncate a file to ``keep`` of its bytes, as an interrupted copy leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def truncated_npz(tmp_path):
    dataset, path = _npz(tmp_path)
    _cut(path)
    return dataset, path, "not an .npz file"


def text_as_npz(tmp_path):
    dataset, path = _npz(tmp_path)
    path.write_text("x_train,y_train\n1,2\n")
    return dataset, path, "not an .npz file"


def mismatched_lengths(tmp_path):
    dataset, path = _npz(tmp_path, y_train=tiny_arrays()[1][:60])
    return dataset, path, "x_train has 64 images but y_train 60 labels"


def flat_images(tmp_path):
    dataset, path = _npz(tmp_path, x_test=tiny_arrays()[2].reshape(24, -1))
    return dataset, path, r"x_test has shape \(24, 144\): expected images"


def text_pixels(tmp_path):
    dataset, path = _npz(tmp_path, x_train=tiny_arrays()[0].astype(str))
    return dataset, path, "x_train has dtype <U3: expected integer or float pixels"


def float_labels(tmp_path):
    dataset, path = _npz(tmp_path, y_train=tiny_arrays()[1] + 0.5)
    return dataset, path, "y_train has dtype float64: expected integer class numbers"


def one_hot_labels(tmp_path):
    dataset, path = _npz(tmp_path, y_test=np.eye(3, dtype=int)[tiny_arrays()[3]])
    return dataset, path, r"y_test has shape \(24, 3\): expected one class number per image"


def label_out_of_range(tmp_path):
    dataset, path = _npz(tmp_path, y_test=tiny_arrays()[3] + 1)
    return dataset, path, r"y_test holds label 3: expected 0 to 2 \(the 3 classes\)"


def negative_label(tmp_path):
    dataset, path = _npz(tmp_path, y_train=tiny_arrays()[1] - 1)
    return dataset, path, "y_train holds label -1"


def label_past_the_class_names(tmp_path):
    dataset, path = _npz(tmp_path, class_names=np.array(["low", "high"]))
    return dataset, path, r"y_train holds label 2: expected 0 to 1 \(the 2 classes\)"


def empty_class(tmp_path):
    y_train = tiny_arrays()[1]
    dataset, path = _npz(tmp_path, y_train=np.where(y_train == 1, 0, y_train))
    return dataset, path, "class '1' has no train images"


def images_of_another_size(tmp_path):
    dataset, path = _npz(tmp_path, x_test=tiny_arrays(size=10)[2])
    return dataset, path, r"x_train's images are \(12, 12, 1\) but x_test's \(10, 10, 1\)"


def _folder(tmp_path):
    cfg, *_ = make_folder(tmp_path)
    return {"name": "folder", "path": cfg["path"]}, tmp_path / "images"


def unreadable_image(tmp_path):
    dataset, root = _folder(tmp_path)
    bad = root / "train" / "dog" / "0001.png"
    bad.write_bytes(b"not a picture")
    return dataset, bad, "not a readable image .*; remove or replace it"


def truncated_image(tmp_path):
    dataset, root = _folder(tmp_path)
    bad = root / "test" / "cat" / "0000.jpg"
    Image.fromarray(tiny_arrays(size=64, channels=3)[0][0]).save(bad, quality=95)
    _cut(bad)
    return dataset, bad, "not a readable image"


def classes_differ(tmp_path):
    dataset, root = _folder(tmp_path)
    (root / "test" / "frog").rename(root / "test" / "toad")
    return dataset, root, (r"train/ and test/ hold different classes \(only in train/: 'frog'; "
                           r"only in test/: 'toad'\)")


def empty_class_folder(tmp_path):
    dataset, root = _folder(tmp_path)
    for image in (root / "test" / "dog").iterdir():
        image.unlink()
    return dataset, root, "class 'dog' has no test images"


def truncated_archive(tmp_path):
    make_cifar10(tmp_path)  # its checksum is the published one ...
    _cut(tmp_path / "cifar-10-python.tar.gz")  # ... and the copy ends half way
    return ({"name": "cifar10"}, tmp_path / "cifar-10-python.tar.gz",
            r"not the published archive \(\d[\d,]* bytes, SHA-256 .*\): truncated, damaged or "
            r"another file; offline, train on images in folders \(dataset.name: folder\) or "
            r"arrays \(dataset.name: npz\), or, if this copy is right, vouch for it: sha256sum "
            r"cifar-10-python.tar.gz > cifar-10-python.tar.gz.sha256 in ")


def archive_of_another_checksum(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "mnist.npz"
    path.write_bytes(path.read_bytes().replace(b"x_train", b"x_trian"))
    return {"name": "mnist"}, path, "not the published archive"


def truncated_archive_without_checksum(tmp_path):
    make_fashion_mnist(tmp_path)  # Keras publishes no checksum of these: reading them fails
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    _cut(path)
    return {"name": "fashion_mnist"}, path, "cannot read it as a gzip'd idx file"


def damaged_archive_published(tmp_path):
    make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-python.tar.gz"
    _cut(path, 0.9)
    publish(path)  # as if the checksum were unknown: the reading itself must say it
    return {"name": "cifar10"}, path, "cannot read it as a CIFAR-10 python archive"


CASES = [truncated_npz, text_as_npz, mismatched_lengths, flat_images, text_pixels,
         float_labels, one_hot_labels, label_out_of_range, negative_label,
         label_past_the_class_names, empty_class, images_of_another_size,
         unreadable_image, truncated_image, classes_differ, empty_class_folder,
         truncated_archive, archive_of_another_checksum, truncated_archive_without_checksum,
         damaged_archive_published]


def _trials(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0] + conn.execute(
            "SELECT COUNT(*) FROM studies").fetchone()[0]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_broken_data_is_one_line_exit_2_and_no_trial(tmp_path, monkeypatch, capsys, case):
    dataset, broken, message = case(tmp_path)
    monkeypatch.chdir(tmp_path)
    study = write_study(tmp_path, tiny_study(broken, dataset=dataset))
    db = tmp_path / "sweeps.db"
    open_storage(f"sqlite:///{db}")  # a database that exists: it must stay without a trial
    capsys.readouterr()
    code = main(["run", str(study), "--storage", f"sqlite:///{db}", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"sweep: error: {study}: {broken}"), err
    assert re.search(message, err), err
    assert _trials(db) == 0


def test_a_broken_file_stops_the_parent_of_local_workers_too(tmp_path):
    # the real command in its own process, as a user types it: no traceback, no database
    dataset, broken, _ = truncated_npz(tmp_path)
    study = write_study(tmp_path, tiny_study(broken, dataset=dataset))
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "run", str(study), "--workers", "2",
                           "--storage", f"sqlite:///{tmp_path / 'sweeps.db'}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"sweep: error: {study}: {broken}: not an .npz file (no zip archive: truncated, or "
        "another kind of file)"]
    assert not (tmp_path / "sweeps.db").exists()


def test_describe_refuses_broken_data_in_one_line(tmp_path, capsys):
    dataset, broken, _ = classes_differ(tmp_path)
    study = write_study(tmp_path, tiny_study(broken, dataset=dataset))
    assert main(["describe", str(study)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_hidden_files_and_folders_are_not_images_or_classes(tmp_path):
    # macOS leaves ._name.png beside each image; Jupyter leaves .ipynb_checkpoints/
    from sweep.data import load_dataset

    dataset, root = _folder(tmp_path)
    (root / "train" / "dog" / "._0001.png").write_bytes(b"resource fork")
    (root / "train" / ".ipynb_checkpoints").mkdir()
    data = load_dataset({**dataset, "validation_split": 0.2, "max_train": None,
                         "label_mode": "fine"}, 0)
    assert data.class_names == ("cat", "dog", "frog")
    assert len(data.x_train) + len(data.x_val) == 30
