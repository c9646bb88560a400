"""A successive-halving study (``search.schedule``) as its answer compares it, as frames.

Every point trains to the first rung whatever its results; only the best go on. The points
above the first rung are the survivors of a comparison, so their values there are not a
designed one (a knob's worst values never reach the top). What is compared is every point at
the highest rung that all of them reached (the first, once one point stopped there): the
same epochs of training for each, chosen by nobody. ``summary`` says it in words,
``curve_figures.rung_figure`` draws each point's curve coloured by the rung it stopped at.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sweep.report.frames import StudyResult
from sweep.study.schedule import schedule

STATES = ("COMPLETE", "PRUNED", "RUNNING")  # a point's shown trial, by its state: has a curve


@dataclass(frozen=True)
class Rungs:
    """``epochs``: each rung's epochs, the last the study's. ``compared``: the epochs of the
    rung compared, the highest every point in ``points`` reached (0 before one did).
    ``points``: one row per point that finished the first rung: ``trial``, the swept params,
    ``reached`` (the epochs of the highest rung it finished), ``value`` (its objective after
    ``compared`` epochs, as the study's ``objective.at`` reads it), ``state``. ``waiting``: the
    points not yet at the first rung. ``trained``: the epochs the points' curves hold
    (each trained once: a promotion continues its checkpoint)."""

    epochs: tuple[int, ...]
    compared: int
    points: pd.DataFrame
    waiting: int
    trained: int

    def number(self, epochs: int) -> int:
        """The rung at ``epochs``, counted from 1."""
        return sum(r <= epochs for r in self.epochs)

    def went_on(self) -> list[tuple[int, int]]:
        """``(epochs, points)`` for each rung above the compared one: how many points were
        promoted to it (reached it or are training to it)."""
        return [(r, int((self.points["reached"] >= r).sum()))
                for r in self.epochs if r > self.compared]


def rungs_of(result: StudyResult) -> Rungs | None:
    """The study's rungs and its points compared at one of them, or None when it has no
    ``search.schedule``."""
    halving = schedule((result.definition.get("search") or {}).get("schedule"))
    if halving is None:
        return None
    ladder = halving.rungs(int(result.definition["training"]["epochs"]))
    curves = result.curves[result.curves["state"].isin(STATES)]
    last = curves.groupby("trial")["epoch"].max()
    reached = last.map(lambda e: max((r for r in ladder if r <= e), default=0))
    at_rung = reached[reached > 0]
    compared = int(at_rung.min()) if len(at_rung) else 0
    trials = result.trials.set_index("trial")
    points = trials.loc[at_rung.index, ["state", *result.params]].assign(
        reached=at_rung, value=_values_at(curves, compared, result))
    waiting = int((~trials["state"].isin(["FAIL"])).sum()) - len(points)
    return Rungs(ladder, compared, points.rename_axis("trial").reset_index(), waiting,
                 int(last.sum()))


def _values_at(curves: pd.DataFrame, epochs: int, result: StudyResult) -> pd.Series:
    """Each trial's objective after ``epochs`` epochs, by trial: the metric at that epoch
    (``objective.at: last``) or its best up to it (``best``)."""
    upto = curves[curves["epoch"] <= epochs]
    if result.metric not in upto:  # an objective the curves do not hold (param_count)
        return pd.Series(float("nan"), index=upto["trial"].unique())
    by_trial = upto.groupby("trial")[result.metric]
    if result.at == "best":
        return by_trial.min() if result.direction == "minimize" else by_trial.max()
    return upto[upto["epoch"] == epochs].set_index("trial")[result.metric]
