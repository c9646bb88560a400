"""What every report figure shares: each frame column in words and its unit (``LABELS``),
one colour per value or trial (``PALETTE``), and panels side by side (``panels``).
"""

from __future__ import annotations

from plotly.colors import qualitative

# A column of the frames -> (what it is, in words; its axis: the unit).
LABELS = {
    "train_accuracy": ("train accuracy", "accuracy (fraction correct)"),
    "val_accuracy": ("validation accuracy", "accuracy (fraction correct)"),
    "test_accuracy": ("test accuracy", "accuracy (fraction correct)"),
    "train_loss": ("train loss", "cross-entropy (nats)"),
    "val_loss": ("validation loss", "cross-entropy (nats)"),
    "test_loss": ("test loss", "cross-entropy (nats)"),
    "gap": ("train − validation accuracy", "accuracy difference (fraction)"),
    "roc_auc": ("ROC AUC, macro one-vs-rest", "area under the ROC curve"),
    "dead_train": ("dead ReLU units, train set (fraction)", "fraction of hidden dense units"),
    "dead_test": ("dead ReLU units, test set (fraction)", "fraction of hidden dense units"),
    "param_count": ("parameters", "parameters"),
}
PALETTE = qualitative.Plotly  # one colour per value (or trial), the same in every panel


def label(column: str) -> str:
    """A column in words (its own name where there is none)."""
    return LABELS.get(column, (column, column))[0]


def unit(column: str) -> str:
    """A column's axis title: its unit (its own name where there is none)."""
    return LABELS.get(column, (column, column))[1]


def panel(col: int) -> dict:
    """A trace's axes in panel ``col`` (1-based) of ``panels``."""
    suffix = "" if col == 1 else str(col)
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def panels(titles: list[str], xaxes: list[dict], yaxes: list[dict]) -> dict:
    """The layout of panels side by side, each titled, with its axes (``xaxes[i]``,
    ``yaxes[i]``), as ``make_subplots(rows=1, cols=n)`` lays them out, built in one go:
    ``make_subplots`` and an update per axis are slow in plotly, a figure at a time."""
    n = max(1, len(titles))
    gap = 0.2 / n
    width = (1 - gap * (n - 1)) / n
    layout: dict = {"annotations": []}
    for i, (title, xaxis, yaxis) in enumerate(zip(titles, xaxes, yaxes, strict=True)):
        low = i * (width + gap)
        axes = panel(i + 1)
        x, y = axes["xaxis"].replace("x", "xaxis"), axes["yaxis"].replace("y", "yaxis")
        layout[x] = {"domain": [low, low + width], "anchor": axes["yaxis"], **xaxis}
        layout[y] = {"domain": [0.0, 1.0], "anchor": axes["xaxis"], **yaxis}
        layout["annotations"].append({
            "text": title, "x": low + width / 2, "y": 1.0, "xref": "paper", "yref": "paper",
            "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 16}})
    return layout
