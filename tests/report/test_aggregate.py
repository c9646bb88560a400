"""Figures of many trials: binned groups, boxes from quartiles, curves as a band, on crafted
frames whose right answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sweep.report.aggregate import (
    BINS,
    MAX_BOX_POINTS,
    MAX_CURVES,
    best_trials,
    box_stats,
    curve_bands,
    groups,
)
from sweep.report.curve_figures import curves_figure
from sweep.report.figures import grouped_figure


def _snapshots(n: int) -> pd.DataFrame:
    """``n`` trials at one snapshot: lr spread log-uniformly, pooling cycling over three
    values, test accuracy rising with the trial number."""
    rng = np.random.default_rng(0)
    trial = np.arange(n)
    return pd.DataFrame({
        "trial": trial, "epoch": 5, "training.learning_rate": 10 ** rng.uniform(-4, -2, n),
        "model.pooling": np.array(["max", "avg", "min"])[trial % 3],
        "train_accuracy": trial / n, "test_accuracy": (trial / n) ** 2, "test_loss": 1 - trial / n,
    })


def test_a_many_valued_param_is_grouped_in_quantile_bins_named_by_their_range():
    frame = _snapshots(1000)
    keys = groups(frame, "training.learning_rate")
    assert len(keys.cat.categories) == BINS
    assert keys.value_counts().tolist() == [1000 // BINS] * BINS  # as many trials each
    for name, rows in frame.groupby(keys, observed=True):
        low, high = (float(x) for x in name.strip("[]").split(", "))
        lr = rows["training.learning_rate"]
        assert (low, high) == (float(f"{lr.min():.3g}"), float(f"{lr.max():.3g}"))
    # few values: the values themselves
    assert groups(frame, "model.pooling").equals(frame["model.pooling"])
    assert groups(frame.head(12), "training.learning_rate").equals(
        frame.head(12)["training.learning_rate"])


def test_box_stats_are_the_quartiles_and_tukey_whiskers():
    values = list(range(1, 10)) + [30]  # 30 lies beyond 1.5 IQR
    frame = pd.DataFrame({"g": ["a"] * 10 + ["b"] * 3, "m": values + [1.0, 2.0, np.nan]})
    stats = box_stats(frame, "g", "m").set_index("group")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    assert stats.loc["a", ["q1", "median", "q3"]].tolist() == [q1, median, q3]
    assert (stats.loc["a", "lowerfence"], stats.loc["a", "upperfence"]) == (1, 9)
    assert stats.loc["a", "count"] == 10 and stats.loc["a", "mean"] == np.mean(values)
    assert stats.loc["b", "count"] == 2  # the missing value is not a point


def test_grouped_figure_of_many_trials_draws_boxes_from_quartiles():
    frame = _snapshots(3 * MAX_BOX_POINTS + 3)
    fig = grouped_figure(frame, "model.pooling")
    assert len(fig.data) == 3 * 3  # three metrics x three values
    expected = box_stats(frame, "model.pooling", "test_accuracy").set_index("group")
    boxes = [t for t in fig.data if t.xaxis == "x2"]  # test accuracy, the second panel
    for box in boxes:
        assert box.y is None and box.q1[0] == expected.loc[box.name, "q1"]
        assert box.median[0] == expected.loc[box.name, "median"]
    binned = grouped_figure(frame, "training.learning_rate")
    assert len(binned.data) == 3 * BINS and all(t.y is not None for t in binned.data)
    assert "bins" in binned.layout.title.subtitle.text
    small = grouped_figure(frame.head(30), "model.pooling")  # every point, as before
    assert sum(len(t.y) for t in small.data) == 3 * 30


def _curves(n: int, epochs: int = 4) -> pd.DataFrame:
    """Trial k's accuracy at epoch e is k / 100 + e / 10; trial 0 was pruned after epoch 2."""
    rows = [{"trial": k, "epoch": e, "state": "PRUNED" if k == 0 else "COMPLETE",
             "model.kernel": 3, "value": k, "train_accuracy": k / 100 + e / 10,
             "val_accuracy": k / 100 + e / 10, "val_loss": 2 - k / 100 - e / 10}
            for k in range(n) for e in range(1, epochs + 1) if k or e <= 2]
    return pd.DataFrame(rows)


def test_curve_bands_are_the_median_and_the_10_90_band_per_epoch():
    bands = curve_bands(_curves(50), ("val_accuracy",)).set_index("epoch")
    assert bands["trials"].tolist() == [50, 50, 49, 49]
    ks = np.arange(50)
    assert bands.loc[1, "median"] == pytest.approx(np.median(ks) / 100 + 0.1)
    assert bands.loc[1, "low"] == pytest.approx(np.quantile(ks, 0.1) / 100 + 0.1)
    assert bands.loc[4, "high"] == pytest.approx(np.quantile(ks[1:], 0.9) / 100 + 0.4)


def test_learning_curves_of_many_trials_are_a_band_and_the_best_lines():
    n = MAX_CURVES + 20
    curves = _curves(n)
    trials = (curves.groupby("trial").first().reset_index()
              .sort_values("value", ascending=False))
    best = best_trials(trials)
    assert best == [n - 1, n - 2, n - 3, n - 4, n - 5]
    fig = curves_figure(curves, ("model.kernel",), best)
    names = [t.name for t in fig.data]
    # a band and a median, then the 5 best, in each of 3 panels (train and validation
    # accuracy, validation loss)
    assert names.count("median of the trials") == 3 and len(fig.data) == 3 * 2 + 3 * 5
    median = next(t for t in fig.data if t.name == "median of the trials")
    bands = curve_bands(curves, ("train_accuracy",))
    assert list(median.y) == pytest.approx(bands["median"].tolist())
    assert f"band of all {n} trials" in fig.layout.title.subtitle.text
    few = curves_figure(_curves(3), ("model.kernel",), [2])
    assert len(few.data) == 3 * 3  # one line per trial and panel
    assert few.layout.annotations[2].text == "validation loss"
    assert few.layout.yaxis3.title.text == "cross-entropy (nats)"


def test_a_report_of_many_trials_embeds_the_best_of_each_bin_and_lists_the_best(tmp_path):
    from sweep.report import StudyResult, write_report
    from sweep.report.gallery import MAX_LINKS, picture_trials
    from sweep.report.html import MAX_TABLE_ROWS

    n = MAX_TABLE_ROWS + 200
    frame = _snapshots(n)
    trials = frame.assign(state="COMPLETE", value=frame["test_accuracy"], fail_reason=None)
    trials = trials.sort_values("value", ascending=False).reset_index(drop=True)
    pictures = pd.DataFrame({"trial": frame["trial"], "epoch": 5, "kind": "pca",
                             "artifact_id": [f"id{t}" for t in frame["trial"]]})
    params = ("training.learning_rate", "model.pooling")
    result = StudyResult(name="many", metrics=("val_accuracy",), directions=("maximize",),
                         params=params, snapshots=frame, curves=pd.DataFrame(),
                         trials=trials[["trial", "state", "value", *params, "fail_reason"]],
                         pictures=pictures, study_id=1)
    chosen = picture_trials(result)
    keys = groups(trials, "training.learning_rate")
    best_of_bins = {int(g["trial"].iloc[0]) for _, g in trials.groupby(keys, observed=True)}
    assert best_of_bins <= set(chosen) and n - 1 in chosen and 0 in chosen  # best, worst
    assert len(chosen) <= 2 + BINS + 3
    (tmp_path / "artifacts").mkdir()
    page = write_report(result, [], tmp_path / "r.html", tmp_path / "artifacts").read_text()
    assert page.count("dashboard/studies/1/trials?numbers=") == MAX_LINKS
    assert f"and {n - len(chosen) - MAX_LINKS} more" in page
    assert page.count("<tr>") == MAX_TABLE_ROWS  # the body's rows (the header has a style)
    assert f"The best {MAX_TABLE_ROWS} of {n} trials" in page


def test_twelve_learning_curves_each_have_a_colour_and_a_legend_that_fits():
    # issue 34: a 12-trial study's legend reused two colours and was cut off
    fig = curves_figure(_curves(12), ("model.kernel",))
    first_panel = [t for t in fig.data if t.showlegend]
    assert len(first_panel) == 12 and len({t.line.color for t in first_panel}) == 12
    assert fig.layout.legend.orientation == "h"  # below the panels, not squeezed beside
    assert fig.layout.height == 460 + 21 * 6 and fig.layout.margin.b == 70 + 21 * 6
    few = curves_figure(_curves(3), ("model.kernel",))
    assert len({t.line.color for t in few.data}) == 3 and few.layout.height == 460 + 21 * 2
