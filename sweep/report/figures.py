"""The report's figures (plotly), each drawn from a frame of ``frames.py``.

The grouped comparison the seeds drew by hand: for each swept parameter, and for the snapshot
epoch, the distribution of train accuracy, test accuracy and test loss per value; then the
diagnostics grouped the same way (overfitting gap, ROC AUC, dead units, per-class accuracy),
the best trial's confusion matrix, and the Pareto front of a multi-objective study.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from sweep.report.frames import StudyResult, compared_snapshots, last_epoch

GROUPED_METRICS = ("train_accuracy", "test_accuracy", "test_loss")
# overfitting gap (train - validation accuracy), ROC AUC, fraction of dense units never active
DIAGNOSTIC_METRICS = ("gap", "roc_auc", "dead_train", "dead_test")
PALETTE = qualitative.Plotly  # one colour per value (or trial), the same in every panel


def grouped_figure(snapshots: pd.DataFrame, by: str, metrics=GROUPED_METRICS,
                   title: str = "Grouped by") -> go.Figure:
    """Box plots of each of ``metrics`` (columns of ``snapshots``) per value of ``by``."""
    metrics = [m for m in metrics if snapshots[m].notna().any()]
    fig = make_subplots(rows=1, cols=max(1, len(metrics)), subplot_titles=metrics)
    for col, metric in enumerate(metrics, start=1):
        for i, (value, group) in enumerate(snapshots.groupby(by, sort=True)):
            fig.add_trace(
                go.Box(
                    y=group[metric],
                    name=str(value),
                    marker_color=PALETTE[i % len(PALETTE)],
                    boxpoints="all",
                    legendgroup=str(value),
                    showlegend=col == 1,
                    text=[f"trial {t}" for t in group["trial"]],
                ),
                row=1,
                col=col,
            )
    fig.update_layout(title=f"{title} {by}", legend_title=by, height=420)
    return fig



def per_class_figure(per_class: pd.DataFrame, by: str) -> go.Figure:
    """Mean per-class test accuracy (last snapshot of each trial) per value of ``by``."""
    table = last_epoch(per_class).pivot_table(index=by, columns="class", values="accuracy", aggfunc="mean")
    fig = go.Figure(go.Heatmap(z=table.values, x=[str(c) for c in table.columns],
                               y=[str(v) for v in table.index], zmin=0, zmax=1,
                               colorscale="Viridis", colorbar_title="accuracy"))
    fig.update_layout(title=f"Per-class test accuracy by {by}", xaxis_title="class",
                      yaxis_title=by, height=300 + 12 * len(table))
    return fig


def confusion_figure(confusion: list, trial: int) -> go.Figure:
    """The confusion matrix of one trial: rows true class, columns predicted."""
    fig = go.Figure(go.Heatmap(z=confusion, colorscale="Blues", colorbar_title="images"))
    # the title names no trial: the dashboard keeps one figure per title (sweep.dashboard)
    fig.update_layout(title="Confusion matrix of the best trial",
                      xaxis_title=f"predicted class (trial {trial})", yaxis_title="true class",
                      yaxis_autorange="reversed", height=520)
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
    fig.update_layout(title=f"Pareto front: {x} vs {y}", xaxis_title=x, yaxis_title=y,
                      height=460)
    return fig


def curves_figure(curves: pd.DataFrame) -> go.Figure:
    """Learning curves: train and validation accuracy per epoch, one line per trial; a pruned
    trial's line is dotted and stops where the pruner stopped it."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("train_accuracy", "val_accuracy"))
    for i, (trial, group) in enumerate(curves.groupby("trial", sort=True)):
        pruned = group["state"].iloc[0] == "PRUNED"
        for col, metric in enumerate(("train_accuracy", "val_accuracy"), start=1):
            fig.add_trace(
                go.Scatter(
                    x=group["epoch"], y=group[metric], mode="lines",
                    name=f"trial {trial}" + " (pruned)" * pruned,
                    line_color=PALETTE[i % len(PALETTE)], line_dash="dot" if pruned else None,
                    legendgroup=str(trial), showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_layout(title="Learning curves", height=420)
    fig.update_xaxes(title_text="epoch")
    return fig


def report_figures(result: StudyResult) -> list[go.Figure]:
    """The report's figures, in order: one grouped figure per swept param and the epoch, the
    learning curves, the Pareto front, then the diagnostics grouped the same way."""
    figures = []
    groups = (*result.params, "epoch")
    if not result.snapshots.empty:
        figures += [grouped_figure(result.snapshots, by) for by in groups]
    if not result.curves.empty:
        figures.append(curves_figure(result.curves))
    if not result.pareto.empty:
        figures.append(pareto_figure(result.pareto, result.metrics))
    if not result.snapshots.empty:
        figures += [grouped_figure(result.snapshots, by, DIAGNOSTIC_METRICS, "Diagnostics by")
                    for by in groups]
    if not result.per_class.empty:
        figures += [per_class_figure(result.per_class, by) for by in result.params]
    if result.best_confusion is not None:
        figures.append(confusion_figure(result.best_confusion, result.best_trial))
    return figures


def compare_figures(results: list[StudyResult]) -> list[go.Figure]:
    """Several studies side by side, at each trial's last snapshot: grouped by study, then by
    each swept param the studies share (one box per value, across the studies)."""
    frame = compared_snapshots(results)
    if frame.empty:
        return []
    shared = [p for p in results[0].params if all(p in r.params for r in results[1:])]
    return [grouped_figure(frame, by, title="Studies compared, grouped by")
            for by in ("study", *shared)]
