"""`sweep describe`: the seeds' studies analysed before training, matching the seeds' counts."""

from __future__ import annotations

import re

import pytest

from sweep.cli import main


def _totals(capsys, study: str) -> list[int]:
    assert main(["describe", study]) == 0
    out = capsys.readouterr().out
    return [int(n.replace(",", "")) for n in re.findall(r"total ([\d,]+) parameters", out)]


@pytest.mark.parametrize("study,counts", [
    ("first_model", [122_570]),  # the CIFAR-10 notebook's first model
    ("coarse_overfitting", [592_552]),  # CIFAR-100 coarse; dropout changes no layer
    ("filters", [55_098, 113_386, 243_786]),  # Fashion-MNIST 16 / 32 / 64 filters
    ("conv_width", [122_570, 160_970, 122_570, 160_970]),  # kernel 7 cannot be built
    ("separable_under_100k", [35_387, 42_907, 111_131]),  # one table per architecture
    ("augmentation", [35_387] * 4),  # augmentation layers have no parameters
    ("weight_decay", [35_387] * 4),
])
def test_seed_studies_have_the_seeds_parameter_counts(capsys, study, counts):
    assert _totals(capsys, study) == counts


def test_describe_names_rejected_points_and_needs_no_data_or_keras(capsys):
    import subprocess
    import sys

    code = ("import sys; from sweep.cli import main; main(['describe', 'separable_under_100k']);"
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("REJECTED: over max_params 100,000") == 1  # one table, 2 points
    assert done.stdout.count("model.filters=[64, 128, 256, 64, 128, 256, 64]") == 2
    assert "depthwise1" in done.stdout and "transition3" in done.stdout
    # the seed's network, each architecture once (before: 195 lines, six tables for three)
    assert re.search(r"depthwise7 +2x2x32 +30 ", done.stdout)
    assert re.search(r"logits +10 +34 ", done.stdout)
    assert done.stdout.startswith("separable_under_100k: 6 distinct model(s), 3 distinct "
                                  "architecture(s)")
    assert len(done.stdout.splitlines()) < 110


def test_describe_of_a_bad_study_is_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ndataset: {name: cifar10}\nmodel: {head: dense}\n")
    assert main(["describe", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model.head: expected one of flatten, gap" in err


def test_describe_counts_each_splits_classes_and_warns_when_unbalanced(tmp_path, capsys):
    import numpy as np

    from conftest import tiny_arrays, tiny_study, write_study

    x_train, y_train, x_test, y_test = tiny_arrays(n_train=90, classes=3)
    keep = (y_train != 2) | (np.arange(len(y_train)) < 15)  # class 2: 5 of 30 images left
    npz = tmp_path / "unbalanced.npz"
    np.savez(npz, x_train=x_train[keep], y_train=y_train[keep], x_test=x_test, y_test=y_test)
    raw = tiny_study(npz, training={"epochs": 1, "augment": {"flip": "horizontal"}},
                     dataset={"name": "npz", "path": str(npz), "validation_split": 0.1})
    assert main(["describe", str(write_study(tmp_path, raw))]) == 0
    out = capsys.readouterr().out
    assert "flip" in out  # the augmentation layer is part of the model's table
    assert "  train      59 images, 4 to 28 per class\n        0: 28  1: 27  2: 4\n" in out
    assert ("WARNING: train split is unbalanced: class '2' has 4 images, 7.0x fewer than '0' "
            "(28)") in out
    assert "WARNING: test split" not in out  # 8 per class


def test_describe_of_the_digits_quickstart_lists_balanced_counts(capsys):
    assert main(["describe", "quickstart"]) == 0
    out = capsys.readouterr().out
    assert "digits: 10 classes" in out and "  test      359 images" in out
    assert "WARNING" not in out
