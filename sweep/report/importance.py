"""Which axes matter most: Optuna's own parameter importances over the study's current
trials (one per point: an earlier attempt the study superseded is not counted twice).

fANOVA (a random forest's functional ANOVA) for up to ``FANOVA_MAX`` trials; PED-ANOVA
beyond, where fANOVA's forest grows slow (8 s for 500 trials on 2 cores) and PED-ANOVA's
quantiles have trials enough, over a seeded sample of ``SAMPLE`` trials where there are more
(Optuna copies every trial it is given).
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
import pandas as pd

from sweep.report.aggregate import many_valued
from sweep.report.effects import knobs

FANOVA_MAX = 100  # complete trials fANOVA is asked about; more: PED-ANOVA
SAMPLE = 1000  # trials PED-ANOVA is given at most
SEED = 0  # fANOVA's forest: the same importances for the same trials


def evaluator_name(trials: int) -> str:
    """The evaluator ``importances`` uses for this many complete trials, in words."""
    if trials <= FANOVA_MAX:
        return "fANOVA"
    return "PED-ANOVA" + (f" over a sample of {SAMPLE:,} of the {trials:,} trials"
                          if trials > SAMPLE else "")


def importances(rows: pd.DataFrame, axes: tuple[str, ...], column: str, direction: str
                ) -> pd.Series:
    """Each knob's share of the objective's variation (they sum to 1), largest first; empty
    where fewer than two knobs vary, fewer than three trials are complete, or every trial
    scored the same (there is no variation to share out: fANOVA refuses it).

    ``rows``: one row per complete trial, its value of every axis and of ``column``.
    """
    rows = rows.dropna(subset=[column])
    varying = [a for a in knobs(axes) if rows[a].nunique() > 1]
    if len(varying) < 2 or len(rows) < 3 or rows[column].nunique() < 2:
        return pd.Series(dtype=float)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created in memory"
    try:
        study = optuna.create_study(direction=optuna.study.StudyDirection[direction.upper()])
    finally:
        optuna.logging.set_verbosity(verbosity)
    distributions = {a: distribution(rows[a]) for a in varying}
    # fANOVA's forest depends on the trials' order: the same trials in any order, one answer
    # (the report's rows come best first, the dashboard's by number)
    key = rows[varying].astype(str).agg("|".join, axis=1)
    rows = rows.assign(_key=key).sort_values([column, "_key"], kind="stable")
    if len(rows) > SAMPLE:
        rows = rows.sample(SAMPLE, random_state=SEED)
    trials = []
    for row in rows.to_dict("records"):
        active = [a for a in varying if not pd.isna(row[a])]  # a conditional axis may have none
        trials.append(optuna.trial.create_trial(
            params={a: _plain(row[a]) for a in active},
            distributions={a: distributions[a] for a in active}, value=float(row[column])))
    study.add_trials(trials)
    evaluator = (optuna.importance.FanovaImportanceEvaluator(seed=SEED)
                 if len(rows) <= FANOVA_MAX
                 else optuna.importance.PedAnovaImportanceEvaluator())
    with warnings.catch_warnings():  # "experimental" notes, and PED-ANOVA's small-sample one
        warnings.simplefilter("ignore")
        shares = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                         normalize=True)
    return pd.Series(shares, dtype=float).sort_values(ascending=False)


def distribution(column: pd.Series) -> optuna.distributions.BaseDistribution:
    """A numeric axis of many values as a range, any other as its choices (as the importances
    treat it)."""
    values = column.dropna().unique()
    if many_valued(column):
        return optuna.distributions.FloatDistribution(float(values.min()), float(values.max()))
    return optuna.distributions.CategoricalDistribution(sorted({_plain(v) for v in values},
                                                               key=str))


def _plain(value: Any) -> bool | int | float | str | None:
    """A value Optuna's distributions take (a list, as stored for ``filters``, as text)."""
    value = value.item() if hasattr(value, "item") else value
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)
