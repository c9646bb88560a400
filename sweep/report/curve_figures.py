"""Learning curves (the seeds' overfitting: a validation loss that turns up while train
accuracy climbs), one line per trial in a colour of its own, or for many trials the median and
band of all of them with the best as lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from sweep.report.aggregate import MAX_CURVES, curve_bands
from sweep.report.panels import PALETTE, label, panel, panels, unit
from sweep.study import point_text

if TYPE_CHECKING:
    from sweep.report.rungs import Rungs

MAX_EPOCH_TICKS = 10
# up to MAX_CURVES lines, each its own colour (PALETTE has 10: 12 trials reused two)
LINE_COLOURS = qualitative.Dark24 + qualitative.Light24
LEGEND_ROW_PX = 21  # a legend entry's height, below the panels, two entries a row


def curve_name(trial: int, values: dict, pruned: bool = False) -> str:
    """A learning curve's legend entry: the trial by its values, then its number."""
    point = point_text(values)
    return f"{point} (trial {trial}{', pruned' * pruned})" if point else (
        f"trial {trial}" + " (pruned)" * pruned)


def curves_figure(curves: pd.DataFrame, params: tuple[str, ...] = (),
                  best: Sequence[int] = ()) -> go.Figure:
    """Learning curves: train and validation accuracy and validation loss per epoch (a
    validation loss that turns up while train accuracy climbs is the seeds' overfitting),
    one line per trial, named by its values of ``params``; a pruned trial's line is dotted
    and stops where the pruner stopped it. More than ``MAX_CURVES`` trials: the median and
    the 10–90 % band of all of them per epoch (``aggregate.curve_bands``), and the ``best``
    trials as lines."""
    metrics = ("train_accuracy", "val_accuracy", "val_loss")
    count = curves["trial"].nunique()
    last = int(curves["epoch"].max()) if len(curves) else 1
    traces = []
    many = count > MAX_CURVES
    if many:
        bands = curve_bands(curves, metrics)
        for col, metric in enumerate(metrics, start=1):
            band = bands[bands["metric"] == metric]
            epochs = list(band["epoch"])
            traces.append(go.Scatter(
                x=epochs + epochs[::-1], y=list(band["high"]) + list(band["low"])[::-1],
                fill="toself", line_width=0, fillcolor="rgba(120,120,120,0.25)",
                name="10–90 % of the trials", legendgroup="band", showlegend=col == 1,
                hoverinfo="skip", **panel(col)))
            traces.append(go.Scatter(
                x=epochs, y=band["median"], mode="lines", line_color="gray",
                name="median of the trials", legendgroup="median", showlegend=col == 1,
                text=[f"{n} trials" for n in band["trials"]], **panel(col)))
        curves = curves[curves["trial"].isin(best)]
    colours = PALETTE if curves["trial"].nunique() <= len(PALETTE) else LINE_COLOURS
    for i, (trial, group) in enumerate(curves.groupby("trial", sort=True)):
        pruned = group["state"].iloc[0] == "PRUNED"
        name = curve_name(trial, {p: group[p].iloc[0] for p in params}, pruned)
        for col, metric in enumerate(metrics, start=1):
            traces.append(go.Scatter(
                x=group["epoch"], y=group[metric], mode="lines", name=name,
                line_color=colours[i % len(colours)], line_dash="dot" if pruned else None,
                legendgroup=str(trial), showlegend=col == 1, **panel(col)))
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, last)
                if last / s <= MAX_EPOCH_TICKS)
    subtitle = (f"the median and 10–90 % band of all {count} trials, the best {len(best)} "
                "as lines" if many else "one line per trial")
    epoch_axis = {"title": {"text": "epoch"}, "tickmode": "linear", "tick0": 0, "dtick": step,
                  "tickformat": "d"}
    layout = panels([label(m) for m in metrics], xaxes=[epoch_axis] * len(metrics),
                     yaxes=[{"title": {"text": unit(m)}} for m in metrics])
    # the legend below the panels, as tall as its entries (beside them, 12 entries of a 460 px
    # figure were cut off)
    entries = sum(1 for t in traces if t.showlegend is not False)
    rows = -(-entries // 2)
    return go.Figure(traces, layout | {
        "title": {"text": "Learning curves", "subtitle": {"text": subtitle}},
        "height": 460 + LEGEND_ROW_PX * rows,
        "legend": {"title": {"text": "trial"}, "orientation": "h", "yanchor": "top",
                   "y": -0.2, "x": 0},
        "margin": {"t": 110, "b": 70 + LEGEND_ROW_PX * rows}})


def rung_figure(curves: pd.DataFrame, rungs: Rungs, metric: str) -> go.Figure:
    """Successive halving at a glance: each point's ``metric`` per epoch, from epoch 1 to the
    highest rung it finished, coloured by that rung; the rungs' epochs as dashed lines. One
    trace per rung, its points' curves apart by gaps, so that thousands of points stay a few
    traces."""
    reached = rungs.points.set_index("trial")["reached"]
    shown = curves[curves["trial"].isin(reached.index)]
    shown = shown[shown["epoch"] <= shown["trial"].map(reached)]
    traces = []
    for i, epochs in enumerate(rungs.epochs):
        trials = reached.index[reached == epochs]
        x: list = []
        y: list = []
        for _, group in shown[shown["trial"].isin(trials)].groupby("trial"):
            x += [*group["epoch"], None]
            y += [*group[metric], None]
        traces.append(go.Scatter(
            x=x, y=y, mode="lines+markers", line_color=PALETTE[i % len(PALETTE)],
            name=f"stopped at rung {i + 1} ({epochs} epoch{'s' * (epochs != 1)}): "
                 f"{len(trials)} point(s)"))
    lines = [{"type": "line", "x0": e, "x1": e, "xref": "x", "y0": 0, "y1": 1, "yref": "paper",
              "line": {"dash": "dash", "color": "gray", "width": 1}} for e in rungs.epochs]
    return go.Figure(traces, {
        "title": {"text": "Successive halving: each point's curve, coloured by the rung it "
                          "stopped at",
                  "subtitle": {"text": f"compared at {rungs.compared} epoch(s), the highest "
                                       f"rung all {len(reached)} points reached"}},
        "xaxis": {"title": {"text": "epoch"}, "tickmode": "array",
                  "tickvals": list(rungs.epochs)},
        "yaxis": {"title": {"text": f"{label(metric)} ({unit(metric)})"}},
        "shapes": lines, "height": 460, "margin": {"t": 110},
        "legend": {"title": {"text": "rung"}}})
