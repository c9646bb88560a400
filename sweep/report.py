"""Reports: data first (pandas frames), figures second (plotly), files last.

The grouped comparison the seeds drew by hand: for each swept parameter, and for the snapshot
epoch, the distribution of train accuracy, test accuracy and test loss per value.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from sweep import storage

GROUPED_METRICS = ("train_accuracy", "test_accuracy", "test_loss")
PALETTE = qualitative.Plotly  # one colour per value (or trial), the same in every panel


@dataclass(frozen=True)
class StudyResult:
    """A study's results as frames.

    ``snapshots``: one row per completed trial and snapshot epoch: ``trial``, the swept params
    (dotted names), ``epoch``, train/val/test loss and accuracy, ``param_count``, ``value``.
    ``curves``: one row per trial and epoch (every epoch, every trial state).
    ``trials``: one row per trial, sorted by the objective (best first).
    """

    name: str
    metric: str
    direction: str
    params: tuple[str, ...]
    snapshots: pd.DataFrame
    curves: pd.DataFrame
    trials: pd.DataFrame


def load_results(name: str, storage_url: str = storage.DEFAULT_STORAGE) -> StudyResult:
    """Read a study's trials and epochs from storage into frames."""
    store = storage.open_storage(storage_url, create=False)
    study = storage.load_study(store, name)
    stored = study.user_attrs.get("study", {})
    metric = stored.get("objective", {}).get("metric", "value")
    params = tuple(stored.get("search", {}).get("params", {}))
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "value": t.value,
                **{p: t.params.get(p) for p in params},
                "param_count": t.user_attrs.get("param_count"),
                "train_seconds": t.user_attrs.get("train_seconds"),
                "fail_reason": t.user_attrs.get("fail_reason"),
            }
        )
    columns = ["trial", "state", "value", *params, "param_count", "train_seconds", "fail_reason"]
    trials = pd.DataFrame(rows, columns=columns)
    direction = study.direction.name.lower()
    trials = trials.sort_values("value", ascending=direction == "minimize", na_position="last")
    epochs = storage.epochs_frame(store, name).rename(columns={"trial_number": "trial"})
    info = trials[["trial", "state", "value", *params, "param_count"]]
    curves = info.merge(epochs, on="trial").sort_values(["trial", "epoch"])
    complete = curves[(curves["state"] == "COMPLETE") & curves["test_accuracy"].notna()]
    return StudyResult(
        name=name,
        metric=metric,
        direction=direction,
        params=params,
        snapshots=complete.drop(columns="state").reset_index(drop=True),
        curves=curves.reset_index(drop=True),
        trials=trials.reset_index(drop=True),
    )


def grouped_figure(snapshots: pd.DataFrame, by: str) -> go.Figure:
    """Box plots of train accuracy, test accuracy and test loss per value of ``by``."""
    fig = make_subplots(rows=1, cols=len(GROUPED_METRICS), subplot_titles=GROUPED_METRICS)
    for col, metric in enumerate(GROUPED_METRICS, start=1):
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
    fig.update_layout(title=f"Grouped by {by}", legend_title=by, height=420)
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
    """The report's figures, in order: one grouped figure per swept param and the epoch."""
    figures = []
    if not result.snapshots.empty:
        for by in (*result.params, "epoch"):
            figures.append(grouped_figure(result.snapshots, by))
    if not result.curves.empty:
        figures.append(curves_figure(result.curves))
    return figures


def write_report(result: StudyResult, path: Path) -> Path:
    """A self-contained HTML file (plotly.js inlined once, so it reads offline)."""
    parts = []
    for i, fig in enumerate(report_figures(result)):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0))
    trials = result.trials.assign(fail_reason=result.trials["fail_reason"].fillna(""))
    table = trials.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
    title = html.escape(f"sweep report: {result.name}")
    body = "\n".join(parts) or "<p>No completed trials yet.</p>"
    path.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>objective: {result.metric} ({result.direction})</p>"
        f"{body}<h2>Trials, best first</h2>{table}</body></html>\n"
    )
    return path


def export(result: StudyResult, fmt: str, path: Path) -> Path:
    """Write the snapshot frame (the one the grouped plots are drawn from) as csv or parquet."""
    if fmt == "csv":
        result.snapshots.to_csv(path, index=False)
    else:
        result.snapshots.to_parquet(path, index=False)
    return path
