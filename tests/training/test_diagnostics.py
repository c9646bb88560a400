"""Diagnostics on arrays and models whose answers are known."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from sweep.data import Dataset
from sweep.models import build_model
from sweep.training import SnapshotProbe, diagnostics, pictures

from conftest import tiny_arrays


def test_logit_metrics_loss_accuracy_confusion_and_per_class():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]))
    labels = np.array([0, 1, 1, 2])
    m = diagnostics.logit_metrics(logits, labels, num_classes=3)
    assert m["test_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.8, 0.3, 0.6])))
    assert m["test_accuracy"] == 0.75
    assert m["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]  # rows: true, columns: predicted
    assert m["per_class_accuracy"] == [1.0, 0.5, 1.0]


def test_macro_roc_auc_matches_scikit_learn_and_skips_absent_classes():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + np.eye(4)[labels] * 1.5
    m = diagnostics.logit_metrics(logits, labels, num_classes=4)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr"))
    # a class with no test example has no AUC and no accuracy, but does not break the rest
    m = diagnostics.logit_metrics(logits[labels != 3], labels[labels != 3], num_classes=4)
    assert m["per_class_accuracy"][3] is None and 0.5 < m["roc_auc"] <= 1.0


def test_pca_finds_the_direction_of_largest_variance():
    t = np.linspace(-1, 1, 50)
    points = np.stack([t * 3, t * 3, np.zeros(50) + 0.01 * np.sin(t * 40)], axis=1)
    coords = diagnostics.pca_2d(points)
    assert np.abs(coords[:, 0]).max() == pytest.approx(np.sqrt(18), rel=1e-3)
    assert np.abs(coords[:, 1]).max() < 0.02


def test_overfitting_signs_from_epoch_rows():
    def row(epoch, train_loss, val_loss, train_acc, val_acc):
        return {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                "train_accuracy": train_acc, "val_accuracy": val_acc}

    rows = [row(1, 1.0, 1.1, 0.5, 0.45), row(2, 0.7, 0.9, 0.7, 0.6), row(3, 0.5, 1.0, 0.8, 0.62),
            row(4, 0.3, 1.3, 0.9, 0.58)]
    assert diagnostics.overfitting(rows) == {
        "best_epoch": 3, "best_val_accuracy": 0.62, "final_gap": pytest.approx(0.32),
        "max_gap": pytest.approx(0.32), "overfit_from": 2,
    }
    healthy = [row(1, 1.0, 1.1, 0.5, 0.45), row(2, 0.7, 0.9, 0.7, 0.6)]
    assert diagnostics.overfitting(healthy)["overfit_from"] is None


def _tiny_dataset(classes=3):
    x_train, y_train, x_test, y_test = tiny_arrays(classes=classes)
    scale = np.float32(255)
    return Dataset("tiny", x_train / scale, y_train, x_train[:8] / scale, y_train[:8],
                   x_test / scale, y_test, classes)


def test_dead_units_of_a_layer_with_forced_zero_weights():
    data = _tiny_dataset()
    cfg = {"filters": [4], "kernel": 3, "pooling": "max", "padding": "valid", "dropout": 0.0,
           "batch_norm": False, "dense": [10, 6]}
    model = build_model(cfg, data.input_shape, data.num_classes)
    dense = model.get_layer("dense1")
    kernel = np.zeros(dense.kernel.shape, dtype="float32")  # no unit depends on its input
    bias = np.array([1.0] * 6 + [0.0, -1.0, 0.0, -2.0], dtype="float32")  # 4 never above 0
    dense.set_weights([kernel, bias])
    details = SnapshotProbe(model).details(data)
    assert details["dead_units"]["dense1"] == {"units": 10, "dead_train": 4, "dead_test": 4}
    assert set(details["dead_units"]) == {"dense1", "dense2"}
    assert details["first_kernels"].shape == (3, 3, 1, 4)
    assert len(details["pca"]["x"]) == len(data.y_test)
    assert np.array(details["confusion"]).sum() == len(data.y_test)
    # the test loss is the one Keras computes
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    loss, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    assert details["test_loss"] == pytest.approx(loss, rel=1e-4)
    assert details["test_accuracy"] == pytest.approx(accuracy)


def test_pictures_are_pngs_of_the_expected_size():
    from io import BytesIO

    from PIL import Image

    grid = Image.open(BytesIO(pictures.filters_png(np.random.default_rng(0).normal(
        size=(3, 3, 3, 8)))))
    cell = pictures.FILTER_PIXELS + 2
    assert grid.format == "PNG" and grid.size == (3 * cell, 3 * cell)  # 8 filters on a 3x3 grid
    scatter = Image.open(BytesIO(pictures.pca_png([0, 1, 2], [0, 1, 0], [0, 1, 2])))
    assert scatter.size == (pictures.PCA_SIZE, pictures.PCA_SIZE)
    assert len(scatter.getcolors()) > 1  # points were drawn on the white background


def test_the_pca_legend_is_readable_where_the_report_shows_it():
    from io import BytesIO

    from PIL import Image

    from sweep.report.gallery import SHOWN

    picture = Image.open(BytesIO(pictures.pca_png([0, 1], [0, 1], [0, 1],
                                                  ("airplane", "automobile"))))
    legend = np.asarray(picture.convert("L"))[:, pictures.PCA_SIZE + 28:]  # right of the swatches
    first = legend[12 + pictures.LEGEND_ROW: 12 + 2 * pictures.LEGEND_ROW]  # "airplane"
    rows = np.flatnonzero((first < 128).any(axis=1))
    shown = int(SHOWN["pca"].split("height:")[1].split("px")[0]) / picture.height
    # before: a 10-pixel bitmap font shown at 2/3 size, letters about 5 pixels high
    assert (rows[-1] - rows[0] + 1) * shown >= 11


def test_depthwise_first_layer_shows_one_filter_per_input_channel():
    data = _tiny_dataset()
    cfg = {"filters": [4], "block": "separable", "kernel": 3, "pooling": "max",
           "padding": "valid", "dropout": 0.0, "batch_norm": True, "head": "gap", "dense": []}
    details = SnapshotProbe(build_model(cfg, data.input_shape, data.num_classes)).details(data)
    assert details["first_kernels"].shape == (3, 3, 1, 1)  # one grey input channel
    assert details["dead_units"] == {}  # no dense layer
    assert len(details["pca"]["x"]) == len(data.y_test)  # features of the map before the head
