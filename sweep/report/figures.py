"""The report's figures (plotly), each drawn from a frame of ``frames.py``.

The grouped comparison the seeds drew by hand: for each swept parameter, and for the snapshot
epoch, the distribution of train accuracy, test accuracy and test loss per value; then the
diagnostics grouped the same way (overfitting gap, ROC AUC, dead units, per-class accuracy),
the best trial's confusion matrix, and the Pareto front of a multi-objective study.

Every panel says what it shows in words and its axis the unit (``LABELS``); each figure's
subtitle says which rows it draws, so a box's points can be counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sweep.report.aggregate import MAX_BOX_POINTS, best_trials, box_stats, groups
from sweep.report.curve_figures import curves_figure, rung_figure
from sweep.report.frames import StudyResult, compared_snapshots, last_epoch
from sweep.report.panels import PALETTE, label, panel, panels, unit
from sweep.report.rungs import rungs_of

GROUPED_METRICS = ("train_accuracy", "test_accuracy", "test_loss")
# overfitting gap (train - validation accuracy), ROC AUC, fraction of dense units never active
DIAGNOSTIC_METRICS = ("gap", "roc_auc", "dead_train", "dead_test")
MAX_CELL_TEXTS = 400  # a heatmap writes each cell's value where it has at most this many


def _epochs(rows: pd.DataFrame) -> str:
    epochs = sorted(rows["epoch"].unique())
    return f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}–{epochs[-1]}"


def grouped_figure(snapshots: pd.DataFrame, by: str, metrics: Sequence[str] = GROUPED_METRICS,
                   title: str = "Grouped by", split: str | None = None) -> go.Figure:
    """Box plots of each of ``metrics`` (columns of ``snapshots``) per value of ``by`` (per
    quantile bin of a many-valued param, ``aggregate.groups``); with ``split`` (a column:
    ``study`` when studies are compared), a box per value of ``split`` side by side within
    each value of ``by``, one colour each.

    Grouped by a parameter, each trial is one point, at its last snapshot (a trial's
    snapshots are not independent results); grouped by ``epoch``, each trial has a point per
    snapshot epoch. The subtitle says which. A group of more than ``MAX_BOX_POINTS`` points
    is drawn as its box only, from its quartiles (``aggregate.box_stats``).
    """
    if by == "epoch":
        rows, which = snapshots, "every snapshot of every trial: one point per trial and epoch"
    else:
        rows = last_epoch(snapshots)
        which = f"each trial at its last snapshot ({_epochs(rows)}): one point per trial"
    keys = groups(rows, by)
    if isinstance(keys.dtype, pd.CategoricalDtype) and rows[by].dtype != keys.dtype:
        which += f"; {by} in {len(keys.cat.categories)} bins of about as many trials each"
    sizes = keys.value_counts()
    if (sizes > MAX_BOX_POINTS).any():
        which += (f"; a group of more than {MAX_BOX_POINTS} points: its box only (quartiles, "
                  "whiskers to the last point within 1.5 IQR)")
    metrics = [m for m in metrics if rows[m].notna().any()]
    # (name and colour of a split's part, its rows, their keys)
    parts: list[tuple[tuple[str, str] | None, pd.DataFrame, pd.Series]] = [(None, rows, keys)]
    if split is not None:
        # in sorted order, as grouping by the split column colours them
        masks = [(name, rows[split] == name) for name in sorted(rows[split].unique())]
        parts = [((str(name), PALETTE[j % len(PALETTE)]), rows[mask], keys[mask])
                 for j, (name, mask) in enumerate(masks)]
    traces = []
    for col, metric in enumerate(metrics, start=1):
        for part, part_rows, part_keys in parts:
            traces += _boxes(part_rows, part_keys, metric, col, part)
    layout = panels([label(m) for m in metrics],
                     xaxes=[{"title": {"text": by}, "type": "category"}] * len(metrics),
                     yaxes=[{"title": {"text": unit(m)}} for m in metrics])
    return go.Figure(traces, layout | {
        "title": {"text": f"{title} {by}", "subtitle": {"text": which}},
        "legend": {"title": {"text": split or by}}, "height": 460, "margin": {"t": 110},
        **({"boxmode": "group"} if split else {})})


def _boxes(rows: pd.DataFrame, keys: pd.Series, metric: str, col: int,
           part: tuple[str, str] | None) -> list[go.Box]:
    """One box per group of ``keys`` in panel ``col``, coloured by its group, or with
    ``part`` (its name and colour) all in that part's colour, side by side with the other
    parts' boxes."""
    stats = box_stats(rows, keys, metric).set_index("group")
    boxes = []
    for i, (value, group) in enumerate(rows.groupby(keys, sort=True, observed=True)):
        name, colour = part or (str(value), PALETTE[i % len(PALETTE)])
        style = {"name": name, "marker_color": colour, "legendgroup": name,
                 "showlegend": col == 1 and (part is None or i == 0), **panel(col)}
        if part is not None:
            style["offsetgroup"] = name
        if len(group) <= MAX_BOX_POINTS:
            boxes.append(go.Box(x=[str(value)] * len(group), y=group[metric], boxpoints="all",
                                text=[f"trial {t}" for t in group["trial"]], **style))
        elif value in stats.index:
            s = stats.loc[value]
            boxes.append(go.Box(x=[str(value)], q1=[s.q1], median=[s["median"]], q3=[s.q3],
                                lowerfence=[s.lowerfence], upperfence=[s.upperfence],
                                mean=[s["mean"]], hovertext=[f"{s['count']} trials"], **style))
    return boxes


def _categories(axis: str, names: list[str]) -> dict:
    """An axis with a tick for every category (plotly thins them out when many)."""
    return {f"{axis}axis": {"type": "category", "tickmode": "array", "tickvals": names,
                            "ticktext": names, "tickangle": -60 if len(names) > 10 else 0,
                            "tickfont": {"size": 9 if len(names) > 40 else 12}}}


def class_labels(class_names: tuple[str, ...], count: int) -> list[str]:
    """The names of classes 0 .. count-1 (their numbers where a study has no names)."""
    return [class_names[c] if c < len(class_names) else str(c) for c in range(count)]


def per_class_figure(per_class: pd.DataFrame, by: str,
                     class_names: tuple[str, ...] = ()) -> go.Figure:
    """Mean per-class test accuracy (last snapshot of each trial) per value of ``by``; the
    colours span the accuracies there are (a 0–1 scale leaves a study of 0.9–0.99 one
    colour), each cell says its value."""
    rows = last_epoch(per_class)
    table = rows.assign(**{by: groups(rows, by)}).pivot_table(
        index=by, columns="class", values="accuracy", aggfunc="mean", observed=True)
    classes = class_labels(class_names, int(table.columns.max()) + 1)
    x = [classes[c] for c in table.columns]
    y = [str(v) for v in table.index]
    low, high = float(np.nanmin(table.values)), float(np.nanmax(table.values))
    fig = go.Figure(go.Heatmap(z=table.values, x=x, y=y, zmin=low, zmax=max(high, low + 0.01),
                               colorscale="Viridis", colorbar_title="accuracy",
                               texttemplate="%{z:.2f}" if table.size <= MAX_CELL_TEXTS else None))
    fig.update_layout(
        title={"text": f"Per-class test accuracy by {by}",
               "subtitle": {"text": "mean over the trials of each value, each at its last "
                                    f"snapshot; colours from {low:.2f} to {high:.2f}"}},
        xaxis_title="class", yaxis_title=by, height=340 + 14 * len(table) + 4 * len(x),
        **_categories("x", x), **_categories("y", y))
    return fig


def confusion_figure(confusion: list, trial: int, class_names: tuple[str, ...] = ()) -> go.Figure:
    """The confusion matrix of one trial: rows true class, columns predicted."""
    names = class_labels(class_names, len(confusion))
    fig = go.Figure(go.Heatmap(z=confusion, x=names, y=names, colorscale="Blues",
                               colorbar_title="test images"))
    # the title names no trial: the dashboard keeps one figure per title (sweep.dashboard)
    fig.update_layout(title="Confusion matrix of the best trial",
                      xaxis_title=f"predicted class (trial {trial})", yaxis_title="true class",
                      height=520 + 6 * len(names), **_categories("x", names),
                      **_categories("y", names))
    fig.update_yaxes(autorange="reversed")
    return fig


def pareto_figure(pareto: pd.DataFrame, metrics: tuple[str, ...]) -> go.Figure:
    """The first two objectives of every completed trial, the Pareto front joined by a line."""
    x, y = metrics[0], metrics[1]
    front = pareto[pareto["on_front"]].sort_values(x)
    rest = pareto[~pareto["on_front"]]
    fig = go.Figure([
        go.Scatter(x=rest[x], y=rest[y], mode="markers", name="dominated",
                   marker_color="lightgray", text=[f"trial {t}" for t in rest["trial"]]),
        go.Scatter(x=front[x], y=front[y], mode="lines+markers", name="Pareto front",
                   marker_color=PALETTE[0], text=[f"trial {t}" for t in front["trial"]]),
    ])
    fig.update_layout(title=f"Pareto front: {x} vs {y}", xaxis_title=f"{label(x)} ({unit(x)})",
                      yaxis_title=f"{label(y)} ({unit(y)})", height=460)
    return fig


def report_figures(result: StudyResult) -> list[go.Figure]:
    """The report's figures, in order: one grouped figure per swept param and the epoch, the
    learning curves, the Pareto front, then the diagnostics grouped the same way."""
    figures = []
    groupings = (*result.params, "epoch")
    if not result.snapshots.empty:
        figures += [grouped_figure(result.snapshots, by) for by in groupings]
    if not result.curves.empty:
        figures.append(curves_figure(result.curves, result.params,
                                     best_trials(result.trials)))
        rungs = rungs_of(result)
        if rungs is not None and len(rungs.points):
            metric = result.metric if result.metric in result.curves else "val_accuracy"
            figures.append(rung_figure(result.curves, rungs, metric))
    if not result.pareto.empty:
        figures.append(pareto_figure(result.pareto, result.metrics))
    if not result.snapshots.empty:
        figures += [grouped_figure(result.snapshots, by, DIAGNOSTIC_METRICS, "Diagnostics by")
                    for by in groupings]
    if not result.per_class.empty:
        # a conditional param may have no value in any trial yet (its parent never chose it)
        figures += [per_class_figure(result.per_class, by, result.class_names)
                    for by in result.params if result.per_class[by].notna().any()]
    if result.best_confusion is not None and result.best_trial is not None:
        figures.append(confusion_figure(result.best_confusion, result.best_trial,
                                        result.class_names))
    return figures


def compare_figures(results: list[StudyResult]) -> list[go.Figure]:
    """Several studies side by side, at each trial's last snapshot: grouped by study, then by
    each swept param the studies share (per value a box for each study, side by side); then
    each study's learning curves."""
    frame = compared_snapshots(results)
    if frame.empty:
        return []
    shared = [p for p in results[0].params if all(p in r.params for r in results[1:])]
    figures = [grouped_figure(frame, "study", title="Studies compared, grouped by")]
    figures += [grouped_figure(frame, by, title="Studies compared, grouped by", split="study")
                for by in shared]
    for result in results:
        if not result.curves.empty:
            figure = curves_figure(result.curves, result.params, best_trials(result.trials))
            figure.update_layout(title_text=f"Learning curves: {result.name}")
            figures.append(figure)
    return figures
