"""The figures that answer the study's question, drawn from ``effects`` and ``importance``:
each value's difference from its axis's best with its 95 % interval, Optuna's importances,
the pairs of axes that interact most, and every trial across all axes (parallel
coordinates, as W&B draws a sweep)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from sweep.report.aggregate import many_valued
from sweep.report.effects import knobs
from sweep.report.figures import label
from sweep.report.frames import StudyResult
from sweep.report.summary import Answer

MAX_INTERACTIONS = 3  # pairs of axes drawn as heatmaps, the strongest first
MAX_PARALLEL = 5000  # trials drawn as parallel lines (the best, where there are more)


def answer_figures(result: StudyResult, answer: Answer) -> list[go.Figure]:
    """The figures above the report's grouped ones: effects, importance, interactions, every
    trial across the axes (those the study has data for)."""
    figures = []
    if answer.effects["difference"].notna().any():
        figures.append(effects_figure(answer.effects, result.metric))
    if not answer.importances.empty:
        figures.append(importance_figure(answer.importances, answer.evaluator))
    strong = answer.interactions[answer.interactions["strength"] > 0]
    figures += interaction_figures(strong, result.metric)
    if len(knobs(result.params)) > 1 and len(answer.rows) > 1:
        figures.append(parallel_figure(answer.rows, result.params, result.metric,
                                       result.direction))
    return figures


def effects_figure(found: pd.DataFrame, metric: str) -> go.Figure:
    """Per axis and value, how much worse than the axis's best value it does, with the 95 %
    interval; a bar that crosses 0 is within noise."""
    rest = found[~found["best"]].iloc[::-1]
    names = [f"{r.axis} = {r.value}" for r in rest.itertuples()]
    bounds = rest.assign(low=rest["low"].astype(float), high=rest["high"].astype(float))
    trace = go.Scatter(
        x=rest["difference"], y=names, mode="markers", marker={"size": 10},
        error_x={"type": "data", "symmetric": False,
                 "array": (bounds["high"] - rest["difference"]).fillna(0),
                 "arrayminus": (rest["difference"] - bounds["low"]).fillna(0)},
        text=[f"{r.pairs} pairs" if r.pairs else "unpaired" for r in rest.itertuples()],
        name="difference")
    best = found[found["best"]]
    subtitle = ("the axis's best value minus each other value (" + ", ".join(
        f"{r.axis}: best {r.value}" for r in best.itertuples()) + "); a bar across 0 is "
        "within noise")
    return go.Figure(trace, {
        "title": {"text": f"Effects on {label(metric)}, 95 % intervals",
                  "subtitle": {"text": subtitle}},
        "xaxis": {"title": {"text": f"{label(metric)}: best minus this value"},
                  "zeroline": True, "zerolinewidth": 2},
        "yaxis": {"type": "category", "automargin": True},
        "height": 220 + 28 * len(names), "margin": {"t": 110}, "showlegend": False})


def importance_figure(shares: pd.Series, evaluator: str) -> go.Figure:
    """Optuna's importances as bars, largest on top."""
    shares = shares.iloc[::-1]
    return go.Figure(go.Bar(x=shares.values, y=list(shares.index), orientation="h"), {
        "title": {"text": "Importance of each axis",
                  "subtitle": {"text": f"Optuna's {evaluator}: each axis's share of the "
                                       "objective's variation, over the current trials"}},
        "xaxis": {"title": {"text": "share of the variation"}, "range": [0, 1]},
        "yaxis": {"automargin": True}, "height": 220 + 30 * len(shares),
        "margin": {"t": 110}})


def interaction_figures(pairs: pd.DataFrame, metric: str) -> list[go.Figure]:
    """The pairs of axes whose interaction is strongest, as heatmaps of the mean objective by
    (value, value): does the best value of one depend on the other?"""
    figures = []
    for pair in pairs.head(MAX_INTERACTIONS).itertuples():
        table = pair.table
        figures.append(go.Figure(go.Heatmap(
            z=table.to_numpy(), x=[str(c) for c in table.columns],
            y=[str(i) for i in table.index], colorscale="Viridis", texttemplate="%{z:.3f}",
            colorbar_title=metric), {
            "title": {"text": f"{pair.a} by {pair.b}",
                      "subtitle": {"text": f"mean {label(metric)} of each pair of values; "
                                           f"interaction {pair.strength:.2g} (what the two "
                                           "axes' own effects leave unexplained)"}},
            "xaxis": {"title": {"text": pair.b}, "type": "category"},
            "yaxis": {"title": {"text": pair.a}, "type": "category"},
            "height": 300 + 30 * len(table), "margin": {"t": 110}}))
    return figures


def parallel_figure(rows: pd.DataFrame, axes: tuple[str, ...], metric: str,
                    direction: str) -> go.Figure:
    """Every complete trial as a line through its value of each axis to its objective,
    coloured by the objective (the best ``MAX_PARALLEL`` where there are more)."""
    rows = rows.dropna(subset=["value"])
    rows = rows.sort_values("value", ascending=direction == "minimize").head(MAX_PARALLEL)
    dimensions = []
    for axis in knobs(axes):
        column = rows[axis]
        if many_valued(column):  # a sampled range: an axis of numbers
            dimensions.append({"label": axis, "values": column})
            continue
        numeric = (pd.api.types.is_numeric_dtype(column)
                   and not pd.api.types.is_bool_dtype(column))
        values = sorted(column.dropna().unique(), key=lambda v: (not numeric, v if numeric
                                                                 else str(v)))
        codes = column.map({v: i for i, v in enumerate(values)})
        dimensions.append({"label": axis, "values": codes, "tickvals": list(range(len(values))),
                           "ticktext": [str(v) for v in values]})
    dimensions.append({"label": metric, "values": rows["value"]})
    return go.Figure(go.Parcoords(
        line={"color": rows["value"], "colorscale": "Viridis", "showscale": True},
        dimensions=dimensions), {
        "title": {"text": "Every trial across the axes",
                  "subtitle": {"text": f"one line per complete trial, coloured by {metric}"}},
        "height": 460, "margin": {"t": 130, "l": 80, "r": 80}})
