"""The figures that answer the study's question, drawn from ``effects``, ``interactions`` and
``importance``: each value's difference from its knob's best with Tukey's simultaneous 95 %
interval, Optuna's importances (where a knob matters), the two-way tables of the pairs of
knobs, their interaction tested, and every trial across all axes (parallel coordinates, as
W&B draws a sweep)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from sweep.report.aggregate import many_valued
from sweep.report.effects import NONE, Effects, knobs
from sweep.report.frames import StudyResult
from sweep.report.panels import label
from sweep.report.summary import Answer

MAX_INTERACTIONS = 3  # pairs of knobs drawn as heatmaps, those that interact first
NOISE_SPAN = 3  # a heatmap's colours span at least this many differences beyond noise
MAX_PARALLEL = 5000  # trials drawn as parallel lines (the best, where there are more)


def answer_figures(result: StudyResult, answer: Answer) -> list[go.Figure]:
    """The figures above the report's grouped ones: effects, importance, interactions, every
    trial across the axes (those the study has data for)."""
    figures = []
    if answer.effects.values["low"].notna().any():
        figures.append(effects_figure(answer.effects, result.metric))
    if not answer.importances.empty:
        figures.append(importance_figure(answer.importances, answer.evaluator))
    figures += interaction_figures(answer.interactions, result.metric)
    if len(knobs(result.params)) > 1 and len(answer.rows) > 1:
        figures.append(parallel_figure(answer.rows, result.params, result.metric,
                                       result.direction))
    return figures


def effects_figure(found: Effects, metric: str) -> go.Figure:
    """Per knob and value, how much worse than the knob's best value it does, with Tukey's
    simultaneous 95 % interval; a bar that crosses 0 is within noise of the best."""
    values = found.values
    rest = values[~values["best"] & values["low"].notna()].iloc[::-1]
    verdicts = found.verdicts.set_index("axis")["verdict"]
    names = [f"{r.axis} = {r.value}" for r in rest.itertuples()]
    trace = go.Scatter(
        x=rest["difference"], y=names, mode="markers", marker={"size": 10},
        error_x={"type": "data", "symmetric": False,
                 "array": rest["high"] - rest["difference"],
                 "arrayminus": rest["difference"] - rest["low"]},
        text=[f"{r.axis}: {verdicts[r.axis]}" for r in rest.itertuples()],
        name="difference")
    best = values[values["best"]]
    subtitle = ("the knob's best value minus each other value (" + ", ".join(
        f"{r.axis}: best {r.value}, {verdicts[r.axis]}" for r in best.itertuples()
        if r.axis in set(rest["axis"])) + "); a bar across 0 is within noise of the best")
    return go.Figure(trace, {
        "title": {"text": f"Effects on {label(metric)}, Tukey's simultaneous 95 % intervals",
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
    """Two-way tables of the mean objective by (value, value) as heatmaps, the pairs that
    interact first: does the best value of one knob depend on the other? The colours span at
    least ``NOISE_SPAN`` differences beyond noise, so cells within noise of each other look
    alike."""
    figures = []
    for pair in pairs.head(MAX_INTERACTIONS).itertuples():
        table = pair.table
        z = table.to_numpy(dtype=float)
        middle, half = (z.max() + z.min()) / 2, (z.max() - z.min()) / 2
        if pair.beyond == pair.beyond:  # known: at least NOISE_SPAN of it across the scale
            half = max(half, NOISE_SPAN * pair.beyond / 2)
        said = (f"interaction {pair.verdict} (F-test p = {pair.p:.3f})" if pair.verdict != NONE
                else f"interaction not tested: {pair.why}")
        scale = (f"; colours span at least {NOISE_SPAN}x the smallest difference beyond "
                 f"noise ({pair.beyond:.3f})" if pair.beyond == pair.beyond else "")
        figures.append(go.Figure(go.Heatmap(
            z=z, x=[str(c) for c in table.columns], y=[str(i) for i in table.index],
            zmin=middle - half, zmax=middle + half, colorscale="Viridis",
            texttemplate="%{z:.3f}", colorbar_title=metric), {
            "title": {"text": f"{pair.a} by {pair.b}",
                      "subtitle": {"text": f"mean {label(metric)} of each pair of values; "
                                           f"{said}{scale}"}},
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
