"""The study's question answered from its results: how much each axis moves the objective,
with a 95 % interval, and which pairs of axes interact. Pure pandas, numpy and scipy over
rows of ``frames`` (one per trial); ``figures`` draws it, ``summary`` says it in words.

An axis's effect is each value's mean objective and its difference from the axis's best
value. The difference is paired where the grid allows: a trial at the best value and one at
the other value that agree on every other axis (the seed included, where the study repeats
its points with a ``seed`` axis) make one pair, so the interval comes from how the difference
varies across the other axes and the repeats. Where no two trials pair up (random or tpe
values), the two groups are compared as they are (Welch's interval).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # scipy.stats takes a second to import

from sweep.report.aggregate import groups

CONFIDENCE = 0.95
REPEAT_AXIS = "seed"  # a seed axis repeats every point: it is noise, not a knob
INACTIVE = "none"  # the label of a conditional axis where it has no value
EFFECT_COLUMNS = ["axis", "value", "mean", "count", "best", "difference", "low", "high",
                  "pairs", "sd"]


def knobs(axes: tuple[str, ...]) -> list[str]:
    """The axes whose effect is asked for: every axis but the repeats' seed."""
    return [a for a in axes if a != REPEAT_AXIS]


def effects(rows: pd.DataFrame, axes: tuple[str, ...], column: str, direction: str
            ) -> pd.DataFrame:
    """Per axis (``knobs``) and value: ``mean`` and ``count`` of ``column`` over the rows at
    that value, whether it is the ``best`` value, and its ``difference`` from the best (the
    best's mean minus its own, signed so that positive means the best is better) with the
    95 % interval ``low``..``high`` (None where one pair or fewer), the ``pairs`` it comes from
    (0: unpaired) and their standard deviation ``sd``.

    ``rows``: one row per trial, its value of every axis and of ``column``. A numeric axis of
    many values (random or tpe) is grouped in quantile bins (``aggregate.groups``).
    """
    rows = rows.dropna(subset=[column])
    sign = 1.0 if direction == "maximize" else -1.0
    out = []
    binned = labelled(rows, axes)
    for axis in knobs(axes):
        active = binned[rows[axis].notna()]  # a conditional axis: where it has a value
        means = active.groupby(axis, sort=True)[column].agg(["mean", "count"])
        if means.empty:
            continue
        best = (means["mean"] * sign).idxmax()
        others = [a for a in axes if a != axis]
        # the mean of each point of the other axes at each value of this one, for pairing
        cells = (active.groupby([*others, axis], sort=False)[column].mean().unstack(axis)
                 if others else None)
        for value, row in means.iterrows():
            pair = (_compared(active, axis, cells, column, best, value, sign)
                    if value != best else (None, None, None, 0, None))
            out.append([axis, value, row["mean"], int(row["count"]), value == best, *pair])
    return pd.DataFrame(out, columns=EFFECT_COLUMNS)


def labelled(rows: pd.DataFrame, axes: tuple[str, ...]) -> pd.DataFrame:
    """``rows`` with each axis as text labels: its value, or its quantile bin (a numeric axis
    of many values), or ``"none"`` where a conditional axis has no value."""
    return rows.assign(**{a: groups(rows, a).astype(str).fillna(INACTIVE) for a in axes})


def _compared(rows: pd.DataFrame, axis: str, cells: pd.DataFrame | None, column: str, best,
              value, sign: float) -> tuple:
    """``(difference, low, high, pairs, sd)`` of ``best`` over ``value``: paired over the
    points of the other axes (``cells``: their mean at each value; None without other axes)
    where at least two pairs exist, else Welch's."""
    if cells is not None:
        both = (cells[[best, value]].dropna() if best in cells and value in cells
                else cells.iloc[:0])
        if len(both) >= 2:
            diffs = sign * (both[best] - both[value])
            half = _half_width(diffs.std(ddof=1), len(diffs), len(diffs) - 1)
            mean = diffs.mean()
            return mean, mean - half, mean + half, len(diffs), diffs.std(ddof=1)
    a = rows.loc[rows[axis] == best, column]
    b = rows.loc[rows[axis] == value, column]
    mean = sign * (a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return mean, None, None, 0, None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return mean, mean, mean, 0, 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = stdtrit(df, 0.5 + CONFIDENCE / 2) * se
    return mean, mean - half, mean + half, 0, None


def _half_width(sd: float, n: int, df: int) -> float:
    """Half the width of the ``CONFIDENCE`` t-interval of a mean of ``n`` values."""
    return float(stdtrit(df, 0.5 + CONFIDENCE / 2) * sd / math.sqrt(n))


def within_noise(effect: pd.Series) -> bool | None:
    """Whether an effect's interval holds 0 (None: it has no interval)."""
    if effect["low"] is None or pd.isna(effect["low"]):
        return None
    return bool(effect["low"] <= 0 <= effect["high"])


def pairs_to_settle(effect: pd.Series, most: int = 100_000) -> int | None:
    """The fewest pairs whose 95 % t-interval would exclude 0, were the difference and its
    spread what they are now (None: no spread known, no difference, or more than ``most``)."""
    sd, difference = effect["sd"], effect["difference"]
    if sd is None or pd.isna(sd) or not difference:
        return None
    n = 2
    while n <= most:
        if _half_width(sd, n, n - 1) < abs(difference):
            return n
        n = n + 1 if n < 100 else int(n * 1.1)
    return None


def interactions(rows: pd.DataFrame, axes: tuple[str, ...], column: str) -> pd.DataFrame:
    """For every pair of ``knobs``: ``strength``, the standard deviation of the two-way table
    of mean ``column`` that adding the two axes' own effects leaves unexplained (0: the best
    value of one does not depend on the other), largest first; ``cells``: the table filled."""
    rows = rows.dropna(subset=[column])
    binned = labelled(rows, axes)
    out = []
    names = knobs(axes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            table = binned.pivot_table(index=a, columns=b, values=column, aggfunc="mean")
            filled = table.notna().to_numpy()
            if table.shape[0] < 2 or table.shape[1] < 2 or not filled.all():
                continue
            values = table.to_numpy(dtype=float)
            grand = values.mean()
            residual = (values - values.mean(axis=1, keepdims=True)
                        - values.mean(axis=0, keepdims=True) + grand)
            out.append({"a": a, "b": b, "strength": float(np.sqrt((residual ** 2).mean())),
                        "table": table})
    return pd.DataFrame(out, columns=["a", "b", "strength", "table"]).sort_values(
        "strength", ascending=False, kind="stable").reset_index(drop=True)
