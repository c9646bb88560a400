"""The study's question answered from its results: does each knob move the objective beyond
noise, and by how much? Pure pandas and statsmodels over rows of ``frames`` (one per trial);
``effect_figures`` draws it, ``summary`` says it in words.

The verdict on a knob is one F-test over all its values at once, from an ordinary least
squares fit (statsmodels' ``OLS``, its ``f_test``). In a grid the other axes are blocks: the
fit gives each value of each axis its own shift of the objective (an additive model), so the
noise is what the shifts leave unexplained: the spread between repeats and, with one run per
point, the other axes' interactions too (which makes the test cautious, never bold). The
differences between a knob's values are Tukey's simultaneous 95 % intervals from the same fit:
all k(k-1)/2 pairs of values hold together 95 times in 100, so the best and the worst value,
picked after looking, are covered too. Where the values were drawn at random (``random``),
each knob's values (binned) are compared as groups, the other axes counting as noise; where
they were chosen from earlier results (``tpe``) or the trials that count survived pruning,
nothing is a designed comparison and no verdict is given. ``tests/report/test_verdicts.py``
checks the level by simulation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sweep.report.aggregate import groups

if TYPE_CHECKING:
    from statsmodels.regression.linear_model import RegressionResults

LEVEL = 0.05  # a knob "matters" when its F-test's p-value is below this
REPEAT_AXIS = "seed"  # a seed axis repeats every point: it is noise (a block), not a knob
INACTIVE = "none"  # the label of a conditional axis where it has no value
EFFECT_COLUMNS = ["axis", "value", "mean", "count", "best", "difference", "low", "high"]
VERDICT_COLUMNS = ["axis", "verdict", "p", "f", "df_num", "df_den", "n", "blocks", "runs",
                   "sd", "why"]
MATTERS, NOISE, NONE = "matters", "within noise", "no verdict"
MAX_DF = 1000  # degrees of freedom of the noise that Tukey's quantile is computed on, at most


@dataclass(frozen=True)
class Design:
    """Which test fits how the trials' values were chosen.

    ``test``: ``"blocks"`` (a grid: the other axes cross each knob and are its blocks),
    ``"groups"`` (values drawn independently of the results: each knob's values compared as
    groups) or ``"none"`` (no test fits; ``why`` says why, in words)."""

    test: str = "blocks"
    why: str = ""


@dataclass(frozen=True)
class Effects:
    """``values``: per knob and value, ``EFFECT_COLUMNS``: the ``mean`` and ``count`` of the
    objective over the trials at that value, whether it is the ``best`` value (by the fit),
    its ``difference`` from the best (positive: the best is better) with Tukey's simultaneous
    95 % interval ``low``..``high`` (NaN where no verdict). ``verdicts``: per knob,
    ``VERDICT_COLUMNS``: ``verdict`` (``MATTERS``, ``NOISE`` or ``NONE``), the F-test's ``p``,
    ``f`` and degrees of freedom, the ``n`` trials, the ``blocks`` (each block axis and its
    number of values), ``runs`` (the fewest and most runs of a point), the noise's standard
    deviation ``sd`` and, for no verdict, ``why``."""

    values: pd.DataFrame
    verdicts: pd.DataFrame

    def verdict(self, axis: str) -> pd.Series:
        return self.verdicts.set_index("axis").loc[axis]


def knobs(axes: tuple[str, ...]) -> list[str]:
    """The axes whose effect is asked for: every axis but the repeats' seed."""
    return [a for a in axes if a != REPEAT_AXIS]


def labelled(rows: pd.DataFrame, axes: tuple[str, ...]) -> pd.DataFrame:
    """``rows`` with each axis as text labels: its value, or its quantile bin (a numeric axis
    of many values), or ``"none"`` where a conditional axis has no value."""
    return rows.assign(**{a: groups(rows, a).astype(str).fillna(INACTIVE) for a in axes})


def effects(rows: pd.DataFrame, axes: tuple[str, ...], column: str, direction: str,
            design: Design = Design()) -> Effects:
    """Each knob's verdict and each value's difference from the knob's best (``Effects``).

    ``rows``: one row per trial, its value of every axis and of ``column``. A numeric axis of
    many values (random or tpe) is grouped in quantile bins (``aggregate.groups``); a
    conditional axis is compared over the trials where it has a value.
    """
    rows = rows.dropna(subset=[column])
    codes = axis_codes(rows, axes)
    y = rows[column].to_numpy(dtype=float)
    sign = 1.0 if direction == "maximize" else -1.0
    values, verdicts = [], []
    fits: dict[bytes, dict] = {}  # per set of active rows, the fits of those rows
    for axis in knobs(axes):
        active = rows[axis].notna().to_numpy()
        own = {a: _recoded(codes[a], active) for a in axes}
        if len(own[axis][1]) < 2:
            continue
        shared = fits.setdefault(active.tobytes(), {})
        fit = fit_knob(y[active], own, axis, axes, design, shared)
        verdicts.append(fit.verdict_row(axis))
        values += fit.value_rows(axis, own[axis], y[active], sign)
    return Effects(pd.DataFrame(values, columns=EFFECT_COLUMNS),
                   pd.DataFrame(verdicts, columns=VERDICT_COLUMNS))


Codes = tuple[np.ndarray, np.ndarray]  # an axis: each row's code, and the labels in order


def axis_codes(rows: pd.DataFrame, axes: tuple[str, ...]) -> dict[str, Codes]:
    """Each axis as integer codes of its labels (``labelled``), the labels in order: the fits
    are numpy, as the verdict simulation (tests/report/test_verdicts.py) runs thousands."""
    binned = labelled(rows, axes)
    return {a: pd.factorize(binned[a], sort=True) for a in axes}


def _recoded(codes: Codes, active: np.ndarray) -> Codes:
    """An axis's codes over the ``active`` rows, its labels those that occur there."""
    present, inverse = np.unique(codes[0][active], return_inverse=True)
    return inverse, codes[1][present]


def runs_per_point(codes: dict[str, Codes], axes: tuple[str, ...]) -> tuple[int, int]:
    """The fewest and the most trials at one point (the knobs' values, the seed aside)."""
    names = knobs(axes)
    if not names:
        return (0, 0)
    point = np.ravel_multi_index([codes[a][0] for a in names],
                                 [len(codes[a][1]) for a in names])
    counts = np.unique(point, return_counts=True)[1]
    return (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)


def _blocks(codes: dict[str, Codes], axis: str, axes: tuple[str, ...]) -> list[str]:
    """The other axes that cross ``axis``: every one of its values meets at least two of
    theirs (a conditional axis nested in one value of ``axis`` is no block of it)."""
    own, k = codes[axis][0], len(codes[axis][1])
    out = []
    for other in axes:
        width = len(codes[other][1])
        if other == axis or width < 2:
            continue
        pairs = np.unique(own * width + codes[other][0])
        if (np.bincount(pairs // width, minlength=k) >= 2).all():
            out.append(other)
    return out


def dummies(codes: list[Codes]) -> np.ndarray:
    """An intercept and one 0/1 column per label of each axis but its first (treatment
    coding: an axis's first label is its baseline)."""
    parts = [np.ones((len(codes[0][0]), 1))]
    parts += [np.eye(len(labels))[own][:, 1:] for own, labels in codes]
    return np.hstack(parts)


@dataclass
class KnobFit:
    """One knob's fitted model (``fit_knob``), or why there is none."""

    result: RegressionResults | None  # statsmodels' RegressionResults
    k: int = 0  # the knob's values: its columns are start .. start + k - 2 (the first value
    start: int = 1  # is the baseline, no column of its own)
    why: str = ""
    blocks: list = field(default_factory=list)  # (axis, its number of values)
    runs: tuple[int, int] = (0, 0)  # the fewest and most trials at one point
    n: int = 0  # the trials compared

    def test(self) -> tuple[str, float, float, int, int]:
        """``(verdict, p, F, df_num, df_den)`` of the knob's F-test (NaN: no test)."""
        if self.result is None:
            return NONE, np.nan, np.nan, 0, 0
        test = self.result.f_test(self._restriction())
        p = float(test.pvalue)
        return (MATTERS if p < LEVEL else NOISE, p, float(np.squeeze(test.fvalue)),
                int(test.df_num), int(test.df_denom))

    def verdict_row(self, axis: str) -> list:
        """The knob's row of ``Effects.verdicts``."""
        sd = float(np.sqrt(self.result.scale)) if self.result is not None else np.nan
        return [axis, *self.test(), self.n, self.blocks, self.runs, sd, self.why]

    def _restriction(self) -> np.ndarray:
        """The knob's coefficients, all zero."""
        assert self.result is not None  # asked by test() of a fit only
        return np.eye(len(self.result.params))[self.start:self.start + self.k - 1]

    def value_rows(self, axis: str, codes: Codes, y: np.ndarray, sign: float) -> list:
        """The knob's rows of ``Effects.values``."""
        own, labels = codes
        count = np.bincount(own, minlength=len(labels))
        mean = np.bincount(own, weights=y, minlength=len(labels)) / count
        # each value's shift from the first: the fit's, else the raw means'
        shift = (np.concatenate([[0.0], self.result.params[self.start:self.start + self.k - 1]])
                 if self.result is not None else mean - mean[0])
        best = int(np.argmax(shift * sign))
        low, high = self._intervals(best, len(labels), sign)
        return [[axis, label, mean[i], int(count[i]), i == best,
                 sign * (shift[best] - shift[i]), low[i], high[i]]
                for i, label in enumerate(labels)]

    def _intervals(self, best: int, k: int, sign: float) -> tuple[np.ndarray, np.ndarray]:
        """Tukey's simultaneous 95 % interval of the best value minus each value (signed;
        NaN for the best itself, and where there is no fit)."""
        low, high = np.full(k, np.nan), np.full(k, np.nan)
        if self.result is None:
            return low, high
        others = [i for i in range(k) if i != best]
        contrasts = np.zeros((len(others), len(self.result.params)))
        for row, i in enumerate(others):  # value j's shift (j >= 1): column start + j - 1
            if best:
                contrasts[row, self.start + best - 1] += sign
            if i:
                contrasts[row, self.start + i - 1] -= sign
        test = self.result.t_test(contrasts)
        middle = np.atleast_1d(np.squeeze(test.effect))
        half = tukey_critical(k, int(self.result.df_resid)) * np.atleast_1d(
            np.squeeze(test.sd))
        low[others], high[others] = middle - half, middle + half
        return low, high


def fit_knob(y: np.ndarray, codes: dict[str, Codes], axis: str, axes: tuple[str, ...],
             design: Design, fits: dict | None = None) -> KnobFit:
    """The OLS fit of ``y`` on ``axis`` and, in a grid, the other axes that cross it as
    blocks (``codes``: every axis's, over the rows of ``y``); or why no test fits. ``fits``
    keeps the fits of these rows by the axes fitted: in a full grid every knob's fit is the
    same additive model, fitted once."""
    blocks = _blocks(codes, axis, axes) if design.test == "blocks" else []
    shape: dict[str, Any] = dict(blocks=[(b, len(codes[b][1])) for b in blocks],
                                 runs=runs_per_point(codes, axes), n=len(y))
    if design.test == "none":
        return KnobFit(None, why=design.why, **shape)
    used = [a for a in axes if a == axis or a in blocks]  # the columns in the axes' order
    start = 1 + sum(len(codes[a][1]) - 1 for a in used[:used.index(axis)])
    fits = {} if fits is None else fits
    if tuple(used) not in fits:
        fits[tuple(used)] = _fit(y, [codes[a] for a in used])
    result, why = fits[tuple(used)]
    return KnobFit(result, k=len(codes[axis][1]), start=start, why=why, **shape)


def _fit(y: np.ndarray, codes: list[Codes]) -> tuple[RegressionResults | None, str]:
    """The additive OLS fit of ``y`` on the axes of ``codes``, or None and why not."""
    from statsmodels.regression.linear_model import OLS  # statsmodels.api: a second

    exog = dummies(codes)
    if exog.shape[0] <= exog.shape[1]:
        return None, ("nothing measures the noise: one run per point and no other axis to "
                      "compare over; search.repeats: 3 would")
    result = OLS(y, exog).fit()
    if result.model.rank < exog.shape[1]:
        return None, ("the other axes' values do not cross this one's (a partial grid): its "
                      "values and theirs cannot be told apart")
    if result.ssr <= 1e-12 * max(1.0, float((y ** 2).sum())):
        return None, ("every point scored exactly as its axes predict: there is no noise to "
                      "weigh a difference against")
    return result, ""


def tukey_critical(values: int, df: int) -> float:
    """The multiple of a difference's standard error that Tukey's simultaneous 95 % interval
    spans each side, for ``values`` values compared pairwise on ``df`` degrees of freedom
    (beyond ``MAX_DF``, on ``MAX_DF``: at most 0.2 % wider, and a tenth of the time)."""
    return _studentized(values, min(df, MAX_DF))


@lru_cache(maxsize=256)
def _studentized(values: int, df: int) -> float:
    from scipy.stats import studentized_range

    return float(studentized_range.ppf(1 - LEVEL, values, df) / np.sqrt(2))


def runs_to_find(found: Effects, axis: str, most: int = 100) -> int | None:
    """About how many runs of each point would find the knob's differences, were they what
    they are now, 8 times in 10 (statsmodels' power of a one-way F-test; None: no spread
    known, no difference, or more than ``most``)."""
    verdict = found.verdict(axis)
    rows = found.values[found.values["axis"] == axis]
    if verdict["verdict"] == NONE or not verdict["sd"] or not rows["difference"].std():
        return None
    from statsmodels.stats.power import FTestAnovaPower

    spread = float(np.std(rows["difference"], ddof=0)) / float(verdict["sd"])
    per_value = verdict["n"] / len(rows)
    points = per_value / verdict["runs"][0]  # the points at one value
    try:
        with warnings.catch_warnings():  # a solver that does not converge returns nan
            warnings.simplefilter("ignore")
            total = FTestAnovaPower().solve_power(effect_size=spread, alpha=LEVEL, power=0.8,
                                                  k_groups=len(rows))
    except (ValueError, RuntimeError, ZeroDivisionError):
        return None
    if not np.isfinite(total):  # beyond its search: far more runs than ``most``
        return None
    runs = int(np.ceil(total / len(rows) / points))
    return max(runs, verdict["runs"][0] + 1) if runs <= most else None
