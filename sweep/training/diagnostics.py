"""What the seeds' authors computed by hand, as pure functions of plain arrays and rows.

Test metrics from a model's logits (loss, accuracy, macro one-vs-rest ROC AUC, confusion
matrix, per-class accuracy), dead ReLU units, a 2-D PCA of hidden activations, and the
overfitting signs in a run's epoch rows. numpy (and scikit-learn's AUC) only: no Keras, no
Optuna, so every number can be checked on arrays whose answer is known.
"""

from __future__ import annotations

import numpy as np


def logit_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Loss and accuracy as Keras computes them, plus the classification diagnostics.

    Returns:
        ``test_loss`` (mean cross-entropy of the softmax), ``test_accuracy``, ``roc_auc``
        (macro average over classes of one-vs-rest AUC; classes absent from ``labels`` are
        left out; None when no class can be scored), ``per_class_accuracy`` (None for a class
        with no examples) and ``confusion`` (rows: true class, columns: predicted).
    """
    logits = np.asarray(logits, dtype="float64")
    labels = np.asarray(labels).reshape(-1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    predicted = logits.argmax(axis=1)
    confusion = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(confusion, (labels, predicted), 1)
    totals = confusion.sum(axis=1)
    per_class = [
        float(confusion[c, c] / totals[c]) if totals[c] else None for c in range(num_classes)
    ]
    return {
        "test_loss": float(-log_probs[np.arange(len(labels)), labels].mean()),
        "test_accuracy": float((predicted == labels).mean()),
        "roc_auc": macro_roc_auc(np.exp(log_probs), labels),
        "per_class_accuracy": per_class,
        "confusion": confusion.tolist(),
    }


def macro_roc_auc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """Mean over classes of the one-vs-rest ROC AUC of ``probs[:, c]``."""
    from sklearn.metrics import roc_auc_score

    scores = []
    for c in range(probs.shape[1]):
        positive = labels == c
        if positive.any() and not positive.all():
            scores.append(roc_auc_score(positive, probs[:, c]))
    return float(np.mean(scores)) if scores else None


def dead_units(activations: np.ndarray) -> int:
    """How many units (columns) never activate (stay <= 0) on any example (row)."""
    flat = np.asarray(activations).reshape(len(activations), -1)
    return int((flat.max(axis=0) <= 0).sum())


def pca_2d(features: np.ndarray) -> np.ndarray:
    """Each row projected onto the two directions of largest variance, shape (N, 2)."""
    flat = np.asarray(features, dtype="float64").reshape(len(features), -1)
    centred = flat - flat.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ components[:2].T
    if coords.shape[1] < 2:  # a single feature: the second axis is flat
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords


def overfitting(rows: list[dict]) -> dict:
    """The signs of overfitting in one run's epoch rows (``train``'s rows, 1-based epochs).

    Returns:
        ``best_epoch`` (highest validation accuracy) and its ``best_val_accuracy``;
        ``final_gap`` and ``max_gap``: train minus validation accuracy; ``overfit_from``: the
        epoch with the lowest validation loss when, after it, validation loss is higher and
        training loss lower (the model still fits the training data better while it
        generalises worse), else None.
    """
    if not rows:
        return {}
    gaps = [r["train_accuracy"] - r["val_accuracy"] for r in rows]
    best = max(rows, key=lambda r: r["val_accuracy"])
    lowest = min(rows, key=lambda r: r["val_loss"])
    last = rows[-1]
    overfitting_now = last is not lowest and last["train_loss"] < lowest["train_loss"]
    return {
        "best_epoch": best["epoch"],
        "best_val_accuracy": best["val_accuracy"],
        "final_gap": gaps[-1],
        "max_gap": max(gaps),
        "overfit_from": lowest["epoch"] if overfitting_now else None,
    }
