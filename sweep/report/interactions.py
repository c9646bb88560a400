"""Whether two knobs interact (the best value of one depends on the other), tested as their
main effects are (``effects``): an F-test of the interaction's terms in an OLS fit with both
knobs and every other axis as blocks. The noise is what that fit leaves unexplained, so with
one run per point and no third axis nothing is left: the two-way table then cannot tell an
interaction from noise, and the answer says so instead of giving a number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweep.report.effects import (
    LEVEL,
    MATTERS,
    NOISE,
    NONE,
    Codes,
    Design,
    dummies,
    knobs,
    labelled,
    tukey_critical,
)

COLUMNS = ["a", "b", "verdict", "p", "why", "beyond", "table"]


def interactions(rows: pd.DataFrame, axes: tuple[str, ...], column: str,
                 design: Design = Design()) -> pd.DataFrame:
    """For every pair of ``knobs`` whose two-way table of mean ``column`` is full: the
    ``verdict`` on their interaction (``effects.MATTERS``, ``NOISE`` or ``NONE`` with ``why``)
    and its ``p`` (Holm-adjusted over the pairs tested, as the pairs that interact are picked
    after looking), the ``table`` (rows: values of ``a``; columns: of ``b``) and ``beyond``,
    the smallest difference between two cells of the table that is more than noise (Tukey's,
    from the additive fit; NaN: not known). Interactions that matter first, then by p."""
    rows = rows.dropna(subset=[column])
    binned = labelled(rows, axes)
    codes = {a: pd.factorize(binned[a], sort=True) for a in axes}
    y = rows[column].to_numpy(dtype=float)
    names = knobs(axes)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            table = binned.pivot_table(index=a, columns=b, values=column, aggfunc="mean")
            if table.shape[0] < 2 or table.shape[1] < 2 or not table.notna().to_numpy().all():
                continue
            fitted = [codes[x] for x in (a, b, *_blocks(codes, (a, b), axes))]
            out.append([a, b, *_tested(y, fitted, design), table])
    frame = pd.DataFrame(out, columns=COLUMNS)
    tested = frame["verdict"] != NONE
    if tested.sum() > 1:  # several pairs: which interact is chosen after looking (Holm)
        from statsmodels.stats.multitest import multipletests

        found, adjusted = multipletests(frame.loc[tested, "p"], alpha=LEVEL, method="holm")[:2]
        frame.loc[tested, "p"] = adjusted
        frame.loc[tested, "verdict"] = np.where(found, MATTERS, NOISE)
    order = frame["verdict"].map({MATTERS: 0, NOISE: 1, NONE: 2})
    return frame.assign(_order=order).sort_values(["_order", "p"], kind="stable").drop(
        columns="_order").reset_index(drop=True)


def _blocks(codes: dict[str, Codes], pair: tuple[str, str], axes: tuple[str, ...]
            ) -> list[str]:
    """The axes other than the pair that vary: blocks of the fit."""
    return [x for x in axes if x not in pair and len(codes[x][1]) > 1]


def _tested(y: np.ndarray, codes: list[Codes], design: Design
            ) -> tuple[str, float, str, float]:
    """``(verdict, p, why, beyond)`` of the first two axes' interaction, the rest of
    ``codes`` as blocks: its F-test, and the smallest difference between two cells of their
    table that is more than noise (Tukey's over every pair of cells; NaN: no noise left to
    measure). The noise is from the fit with the interaction where there are trials enough,
    else from the additive fit (which then holds the interaction too)."""
    from statsmodels.regression.linear_model import OLS

    main = dummies(codes)
    widths = (len(codes[0][1]), len(codes[1][1]))
    # the interaction's terms: each of a's columns times each of b's
    cross = np.hstack([main[:, [i]] * main[:, widths[0]:widths[0] + widths[1] - 1]
                       for i in range(1, widths[0])])
    full = np.hstack([main, cross])
    verdict, p, why, noise = NONE, np.nan, "", None
    if design.test != "blocks":
        why = design.why or "values drawn at random: no two-way table to test"
    elif full.shape[0] <= full.shape[1]:
        why = ("one run per point and no third axis: an interaction of these two cannot be "
               "told from noise; search.repeats: 3 would tell")
    else:
        result = OLS(y, full).fit()
        if result.model.rank < full.shape[1] or result.ssr <= 0:
            why = "a partial grid or no noise: the interaction cannot be told from the rest"
        else:
            p = float(result.f_test(np.eye(full.shape[1])[main.shape[1]:]).pvalue)
            verdict, noise = (MATTERS if p < LEVEL else NOISE), result
    if noise is None:  # no fit with the interaction: the additive one's noise
        if main.shape[0] <= main.shape[1]:
            return verdict, p, why, np.nan
        noise = OLS(y, main).fit()
    if noise.ssr <= 0:
        return verdict, p, why, np.nan
    per_cell = np.bincount(np.ravel_multi_index([codes[0][0], codes[1][0]], widths)).min()
    beyond = (tukey_critical(widths[0] * widths[1], int(noise.df_resid))
              * np.sqrt(noise.scale * 2 / per_cell))
    return verdict, p, why, float(beyond)
