"""The answer in words: one line per axis in the seeds' own terms ("3 beats 7 by 0.041", or
within noise), which axes matter most, and whether the trials overfit. Printed by ``sweep
summary`` and at the top of the report; ``sweep report A B`` says it for the studies.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import optuna
import pandas as pd

from sweep.report.aggregate import groups
from sweep.report.effects import (
    REPEAT_AXIS, effects, interactions, knobs, pairs_to_settle, within_noise,
)
from sweep.report.frames import StudyResult, load_study_result
from sweep.report.importance import evaluator_name, importances
from sweep.store import (
    StoredStudy, open_storage, open_study, replace_study_system_attrs, study_system_attr,
    trials_version,
)

ANSWER = "sweep:answer"  # the study system attribute keeping the last answer worked out
# Part of a kept answer's version: bump it when the words or how they are worked out change,
# so that answers kept by an older sweep are worked out again.
ANSWER_FORMAT = 1


@dataclass(frozen=True)
class Answer:
    """What a study's results say, worked out once for the words and the figures.

    ``rows``: one per complete trial (its axes and objective ``value``); ``effects``:
    ``effects.effects`` of the objective; ``importances`` and the ``evaluator`` that gave
    them; ``interactions``: ``effects.interactions``; ``lines``: the answer in words."""

    rows: pd.DataFrame
    effects: pd.DataFrame
    importances: pd.Series
    evaluator: str
    interactions: pd.DataFrame
    lines: list[str]


def answer_lines(name: str, storage_url: str) -> list[str]:
    """``sweep summary NAME``: the study's answer in words, as the last report worked it out
    where no trial changed since (kept in the study, ``ANSWER``), else worked out now and
    kept."""
    store = open_storage(storage_url, create=False)
    stored = StoredStudy.read(store, open_study(store, name))
    version = results_version(store, stored)
    kept = study_system_attr(store, stored.study_id, ANSWER)
    if kept is not None and kept.get("version") == version:
        return kept["lines"]
    lines = study_answer(load_study_result(name, storage_url, details=False)).lines
    keep_answer(store, stored.study_id, version, lines)
    return lines


def results_version(store: optuna.storages.RDBStorage, stored: StoredStudy) -> str:
    """What the answer depends on: the trials (``trials_version``) and the study's
    definition (which trials are its results)."""
    definition = json.dumps(stored.definition, sort_keys=True, default=str)
    return (f"{ANSWER_FORMAT}:{trials_version(store.engine, stored.study_id)}:"
            f"{hashlib.sha256(definition.encode()).hexdigest()[:16]}")


def keep_answer(store: optuna.storages.RDBStorage, study_id: int, version: str,
                lines: list[str]) -> None:
    """Keep the answer in the study for ``answer_lines``, with the version it is of."""
    replace_study_system_attrs(store, study_id, ANSWER,
                               {ANSWER: {"version": version, "lines": lines}})


def completed(result: StudyResult) -> pd.DataFrame:
    """One row per complete trial: its axes' values and its objective ``value``."""
    return result.trials[result.trials["state"] == "COMPLETE"]


def study_answer(result: StudyResult) -> Answer:
    """The study's answer: a line saying what was compared, each axis's effect (the one that
    matters most first), Optuna's importances, and the overfitting seen in the curves."""
    rows = completed(result)
    metric = result.metric
    lines = [f"{result.name}: {len(rows)} complete trial(s), objective {metric} "
             f"({result.direction})" + (f" (the first of {len(result.metrics)} objectives)"
                                        if len(result.metrics) > 1 else "")]
    found = effects(rows, result.params, "value", result.direction)
    shares = importances(rows, result.params, "value", result.direction)
    evaluator = evaluator_name(len(rows))
    order = sorted(knobs(result.params), key=lambda a: (-shares.get(a, 0.0), a))
    ranked = [(axis, _widest(found, axis)) for axis in order]
    ranked = [(axis, effect) for axis, effect in ranked if effect is not None]
    # the axis that matters most: the first whose widest difference is more than noise
    most = next((axis for axis, effect in ranked if within_noise(effect) is False), None)
    repeats = rows[REPEAT_AXIS].nunique() if REPEAT_AXIS in result.params else 1
    lines += [effect_line(axis, effect, metric, result.params, rows, repeats, axis == most)
              for axis, effect in ranked]
    if len(rows) < 2:
        lines.append("not enough complete trials to compare")
    if not shares.empty:
        lines.append(f"importance (Optuna's {evaluator}): "
                     + ", ".join(f"{a} {s:.2f}" for a, s in shares.items()))
    overfit = overfitting_line(result)
    return Answer(rows, found, shares, evaluator, interactions(rows, result.params, "value"),
                  lines + ([overfit] if overfit else []))


def _widest(found: pd.DataFrame, axis: str) -> pd.Series | None:
    """The axis's value furthest from its best (None: the axis has one value)."""
    rest = found[(found["axis"] == axis) & ~found["best"]]
    if rest.empty:
        return None
    widest = rest.loc[rest["difference"].idxmax()]
    best = found.loc[(found["axis"] == axis) & found["best"], "value"].iloc[0]
    return pd.concat([widest, pd.Series({"best_value": best})])


def effect_line(axis: str, effect: pd.Series, metric: str, axes: tuple[str, ...],
                rows: pd.DataFrame, repeats: int, most: bool) -> str:
    """One axis in words: ``model.kernel matters most: 3 beats 7 by 0.041 val_accuracy (95 %
    interval 0.020 to 0.062, 6 pairs over 2 model.pooling x 3 repeats)``, or within noise."""
    best, worst, difference = effect["best_value"], effect["value"], effect["difference"]
    noise = within_noise(effect)
    basis = _basis(axis, effect, axes, rows, repeats)
    if noise is None:
        hint = "; a seed axis (search.params.seed) would repeat the points" * (repeats == 1)
        return (f"{axis}: {best} beats {worst} by {difference:.3f} {metric} ({basis}: no "
                f"interval{hint})")
    interval = f"95 % interval {effect['low']:.3f} to {effect['high']:.3f}, {basis}"
    if noise is False:
        return (f"{axis} matters{' most' * most}: {best} beats {worst} by {difference:.3f} "
                f"{metric} ({interval})")
    return (f"{axis}: within noise ({best} beats {worst} by {difference:.3f}, {interval}"
            f"{_repeat_hint(effect['pairs'], repeats, pairs_to_settle(effect))})")


def _basis(axis: str, effect: pd.Series, axes: tuple[str, ...], rows: pd.DataFrame,
           repeats: int) -> str:
    """Where the interval comes from: the pairs, over which other axes and repeats."""
    if not effect["pairs"]:
        return "unpaired trials" if effect["low"] is not None and not pd.isna(
            effect["low"]) else "one trial each"
    over = [f"{groups(rows, a).nunique()} {a}" for a in knobs(axes) if a != axis]
    if repeats > 1:
        over.append(f"{repeats} repeats")
    return f"{int(effect['pairs'])} pairs over {' x '.join(over)}"


def _repeat_hint(pairs: int, repeats: int, pairs_needed: int | None) -> str:
    """What would settle a difference within noise: more repeats of every point (and where
    the interval comes from, with one run per point)."""
    hint = "; one run per point: the interval is from the other axes only" * (repeats == 1)
    if pairs_needed is None or not pairs:
        return hint
    runs = max(repeats + 1, math.ceil(pairs_needed / (pairs / repeats)))
    return hint + f"; about {runs} runs of each point would settle it"


def overfitting_line(result: StudyResult) -> str | None:
    """The seeds' overfitting, read from the complete trials' curves: the train − validation
    accuracy gap at the last epoch, and the epoch of lowest validation loss."""
    if result.curves.empty:
        return None
    curves = result.curves[result.curves["state"] == "COMPLETE"].dropna(
        subset=["train_accuracy", "val_accuracy", "val_loss"])
    if curves.empty:
        return None
    last = curves[curves["epoch"] == curves.groupby("trial")["epoch"].transform("max")]
    gap = (last["train_accuracy"] - last["val_accuracy"]).mean()
    lowest = curves.loc[curves.groupby("trial")["val_loss"].idxmin(), ["trial", "epoch"]]
    at_last = lowest["epoch"].to_numpy() == last.set_index("trial").loc[
        lowest["trial"], "epoch"].to_numpy()
    trials, falling = len(last), int(at_last.sum())
    epoch = int(last["epoch"].mode().iloc[0])
    line = (f"overfitting: train − validation accuracy gap {gap:.3f} at the last epoch "
            f"({epoch}, mean of {trials} trials); ")
    if falling * 2 >= trials:
        return line + f"validation loss still falling at the last epoch in {falling} of " \
                      f"{trials} trials"
    earlier = lowest.loc[~at_last, "epoch"]
    return line + (f"validation loss lowest before the last epoch in {trials - falling} of "
                   f"{trials} trials (most often at epoch {int(earlier.mode().iloc[0])}), "
                   "then rising")


def comparison(results: list[StudyResult]) -> list[str]:
    """``sweep report A B``: each study against the first, paired over the axes they share
    (the same point in both studies), in the same words as an axis."""
    first = results[0]
    shared = [p for p in first.params if all(p in r.params for r in results[1:])]
    rows = pd.concat([completed(r)[[*shared, "value"]].assign(study=r.name) for r in results],
                     ignore_index=True)
    if rows["study"].nunique() < 2:
        return []
    axes = ("study", *shared)
    found = effects(rows, axes, "value", first.direction)
    effect = _widest(found, "study")
    if effect is None:
        return []
    repeats = rows[REPEAT_AXIS].nunique() if REPEAT_AXIS in shared else 1
    return [effect_line("study", effect, first.metric, axes, rows, repeats, False)]
