"""Frames for figures of many trials: what a figure draws when one mark per trial or per value
would be unreadable (and the report too large to open).

- ``groups``: a numeric param with more values than ``MAX_GROUPS`` (a range sampled by random
  or tpe: every trial its own value) is grouped into quantile bins, each named by its range.
- ``box_stats``: a box's quartiles, Tukey fences and count per group, for boxes of more than
  ``MAX_BOX_POINTS`` trials, drawn from these instead of from every point.
- ``curve_bands``: learning curves of more than ``MAX_CURVES`` trials as the median and the
  10–90 % band per epoch, the best trials drawn on top as lines.
"""

from __future__ import annotations

import pandas as pd

MAX_GROUPS = 12  # values of a param shown one box each; more are binned
BINS = 8  # quantile bins of a many-valued param
MAX_BOX_POINTS = 400  # points of a group drawn one by one; a larger group: its box only
MAX_CURVES = 30  # learning curves drawn one line each; more: a band and the best few
BEST_CURVES = 5
BAND = (0.1, 0.9)  # the band's quantiles


def _short(value: float) -> str:
    return f"{value:.3g}"


def many_valued(column: pd.Series) -> bool:
    """Whether ``column`` is numeric with more than ``MAX_GROUPS`` values (a range sampled by
    random or tpe): binned by ``groups``, drawn and weighed as a range of numbers."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    return numeric and column.dropna().nunique() > MAX_GROUPS


def groups(frame: pd.DataFrame, by: str) -> pd.Series:
    """The group of each row by ``by``: its value, or for a numeric column of more than
    ``MAX_GROUPS`` values its quantile bin, named ``[low, high]`` (ordered, as a categorical).
    """
    column = frame[by]
    if not many_valued(column):
        return column
    bins = pd.qcut(column, BINS, duplicates="drop")
    # each bin by the values it holds (qcut's own edges extend below the lowest)
    low, high = column.groupby(bins, observed=True).min(), column.groupby(
        bins, observed=True).max()
    names = {b: f"[{_short(low[b])}, {_short(high[b])}]" for b in low.index}
    return bins.cat.rename_categories(
        [names.get(b, str(b)) for b in bins.cat.categories]).rename(by)


def box_stats(rows: pd.DataFrame, by: pd.Series | str, metric: str) -> pd.DataFrame:
    """Per group: ``count``, ``q1``, ``median``, ``q3`` (linear quantiles, as plotly's box),
    ``lowerfence``/``upperfence`` (the most extreme values within 1.5 IQR of the box, Tukey's
    whiskers) and ``mean`` of ``metric``, groups in order; rows without the metric are left
    out."""
    keys = rows[by] if isinstance(by, str) else by
    out = []
    for group, values in rows[metric].groupby(keys, sort=True, observed=True):
        values = values.dropna()
        if values.empty:
            continue
        q1, median, q3 = values.quantile([0.25, 0.5, 0.75]).tolist()
        reach = 1.5 * (q3 - q1)
        out.append({"group": group, "count": len(values), "q1": q1, "median": median,
                    "q3": q3, "lowerfence": values[values >= q1 - reach].min(),
                    "upperfence": values[values <= q3 + reach].max(),
                    "mean": values.mean()})
    return pd.DataFrame(out, columns=["group", "count", "q1", "median", "q3", "lowerfence",
                                      "upperfence", "mean"])


def curve_bands(curves: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per metric and epoch, across the trials with that epoch: ``trials`` (how many),
    ``median``, ``low`` and ``high`` (the ``BAND`` quantiles)."""
    out = []
    for metric in metrics:
        by_epoch = curves.dropna(subset=[metric]).groupby("epoch")[metric]
        frame = pd.DataFrame({
            "trials": by_epoch.size(), "median": by_epoch.median(),
            "low": by_epoch.quantile(BAND[0]), "high": by_epoch.quantile(BAND[1]),
        }).reset_index()
        out.append(frame.assign(metric=metric))
    columns = ["metric", "epoch", "trials", "median", "low", "high"]
    return pd.concat(out, ignore_index=True)[columns] if out else pd.DataFrame(columns=columns)


def best_trials(trials: pd.DataFrame, count: int = BEST_CURVES) -> list[int]:
    """The numbers of the best ``count`` complete trials (``trials``: best first)."""
    complete = trials[trials["state"] == "COMPLETE"]
    return [int(t) for t in complete["trial"].head(count)]
