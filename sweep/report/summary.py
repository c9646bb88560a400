"""The answer in words: one line per knob in the seeds' own terms ("3 beats 7 by 0.041"), with
the verdict of a test that holds its level (matters, within noise, or no verdict and why),
the test used, the importances where a knob matters, the interactions, and whether the trials
overfit. Printed by ``sweep
summary`` and at the top of the report; ``sweep report A B`` says it for the studies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from sweep.report.effects import MATTERS, NONE, REPEAT_AXIS, Design, Effects, effects, runs_to_find
from sweep.report.frames import StudyResult, load_study_result
from sweep.report.importance import evaluator_name, importances
from sweep.report.interactions import interactions
from sweep.report.rungs import Rungs, rungs_of
from sweep.store import (
    StoredStudy,
    open_storage,
    open_study,
    replace_study_system_attrs,
    study_system_attr,
    trials_version,
)
from sweep.study.plugins import SAMPLERS

ANSWER = "sweep:answer"  # the study system attribute keeping the last answer worked out
# Part of a kept answer's version: bump it when the words or how they are worked out change,
# so that answers kept by an older sweep are worked out again.
ANSWER_FORMAT = 3
TESTS = {  # the line saying which test gave the verdicts, per Design.test
    "blocks": "tests: each knob by one F-test over all its values at the 5 % level, the other "
              "axes and the repeats as blocks (statsmodels OLS); differences with Tukey's "
              "simultaneous 95 % intervals over every pair of values",
    "groups": "tests: each knob by one F-test over all its values (binned) at the 5 % level, "
              "the other axes, drawn at random, counted as noise (statsmodels OLS); "
              "differences with Tukey's simultaneous 95 % intervals over every pair of values",
}


@dataclass(frozen=True)
class Answer:
    """What a study's results say, worked out once for the words and the figures.

    ``rows``: one per complete trial (its axes and objective ``value``); ``effects``:
    ``effects.effects`` of the objective; ``importances`` and the ``evaluator`` that gave
    them (empty where no knob matters); ``interactions``: ``interactions.interactions``;
    ``lines``: the answer in words."""

    rows: pd.DataFrame
    effects: Effects
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
    if isinstance(kept, dict) and kept.get("version") == version:
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
    attrs: dict[str, Any] = {ANSWER: {"version": version, "lines": lines}}  # stored as JSON
    replace_study_system_attrs(store, study_id, ANSWER, attrs)


def completed(result: StudyResult) -> pd.DataFrame:
    """One row per complete trial: its axes' values and its objective ``value``."""
    return result.trials[result.trials["state"] == "COMPLETE"]


def design_of(result: StudyResult) -> Design:
    """The test that fits how the study chose its trials: its sampler's (``SamplerEntry.
    compared``), none where trials were pruned on their results (the complete ones are then
    the survivors of a comparison, not a designed one)."""
    search = result.definition.get("search") or {}
    sampler = search.get("sampler", "grid")
    pruned = int((result.trials["state"] == "PRUNED").sum()) if len(result.trials) else 0
    if pruned and not search.get("schedule"):  # halving compares at a rung all reached
        return Design("none", f"not a designed comparison: {pruned} trial(s) were pruned on "
                              "their results, so the complete ones are the survivors")
    entry = SAMPLERS.get(sampler)
    if entry is None or entry.compared == "none":
        return Design("none", f"not a designed comparison: {sampler} chose each value from "
                              "the results before it (search.sampler: grid or random would "
                              "give one)")
    return Design(entry.compared)


def study_answer(result: StudyResult) -> Answer:
    """The study's answer: a line saying what was compared, each knob's verdict and effect
    (those that matter first, the largest first), the test used, Optuna's importances where a
    knob matters, the interactions, and the overfitting seen in the curves."""
    metric = result.metric
    rungs = rungs_of(result)
    if rungs is None:
        rows = completed(result)
        lines = [f"{result.name}: {len(rows)} complete trial(s), objective {metric} "
                 f"({result.direction})" + (f" (the first of {len(result.metrics)} objectives)"
                                            if len(result.metrics) > 1 else "")]
    else:
        rows = rungs.points.dropna(subset=["value"])
        lines = [rung_line(result, rungs, len(rows))]
    design = design_of(result)
    found = effects(rows, result.params, "value", result.direction, design)
    order = ranked(found)
    lines += [effect_line(axis, found, metric, most=i == 0) for i, axis in enumerate(order)]
    if len(rows) < 2:
        lines.append("not enough complete trials to compare")
    elif order:
        lines.append(TESTS.get(design.test, f"tests: none, {design.why}"))
    matters = [a for a in order if found.verdict(a)["verdict"] == MATTERS]
    shares = (importances(rows, result.params, "value", result.direction) if matters
              else pd.Series(dtype=float))
    evaluator = evaluator_name(len(rows))
    if not shares.empty:
        lines.append(f"importance (Optuna's {evaluator}): " + ", ".join(
            f"{a} {s:.2f}" + ("" if a in matters else " (within noise)")
            for a, s in shares.items()))
    elif len(order) > 1:
        lines.append("importance: not shown, as no knob is beyond noise (the shares would "
                     "split noise)")
    pairs = interactions(rows, result.params, "value", design)
    lines += interaction_lines(pairs)
    overfit = overfitting_line(result)
    return Answer(rows, found, shares, evaluator, pairs, lines + ([overfit] if overfit else []))


def rung_line(result: StudyResult, rungs: Rungs, compared: int) -> str:
    """What a halving study compares: ``tiny: 12 point(s) compared at rung 1 of 3 (1 epoch),
    the highest rung all reached, objective val_accuracy (maximize); successive halving
    promoted 4 to 3 epochs and 1 to 9: 25 epochs trained, 23 % of the 108 that training
    every point to 9 would take``."""
    at, top = rungs.compared, rungs.epochs[-1]
    line = (f"{result.name}: {compared} point(s) compared at rung {rungs.number(at)} of "
            f"{len(rungs.epochs)} ({at} epoch{'s' * (at != 1)}), the highest rung all reached, "
            f"objective {result.metric} ({result.direction})")
    promoted = " and ".join(f"{n} to {e}" for e, n in rungs.went_on())
    if promoted:
        line += f"; successive halving promoted {promoted}"
    full = (len(rungs.points) + rungs.waiting) * top
    if full:
        share = round(100 * rungs.trained / full)
        line += (f": {rungs.trained} epochs trained, {share} % of the {full} that training "
                 f"every point to {top} would take")
    return line + (f" ({rungs.waiting} more not yet at the first rung)" * bool(rungs.waiting))


def ranked(found: Effects) -> list[str]:
    """The knobs in the answer's order: those that matter, then within noise, then without a
    verdict; each by its widest difference, largest first."""
    order = {MATTERS: 0, NONE: 2}
    widest = found.values.groupby("axis")["difference"].max()
    return sorted(found.verdicts["axis"], key=lambda a: (
        order.get(found.verdict(a)["verdict"], 1), -widest.get(a, 0.0), a))


def _widest(found: Effects, axis: str) -> tuple[object, pd.Series]:
    """The knob's best value and the row of the value furthest from it."""
    rows = found.values[found.values["axis"] == axis]
    best = rows.loc[rows["best"], "value"].iloc[0]
    return best, rows.loc[rows["difference"].idxmax()]


def effect_line(axis: str, found: Effects, metric: str, most: bool = False) -> str:
    """One knob in words: ``model.kernel matters most: 3 beats 7 by 0.041 val_accuracy
    (F-test p = 0.002 over 18 trials, blocks 2 model.pooling x 3 seeds; Tukey's 95 % interval
    0.020 to 0.062)``, or within noise, or no verdict and why."""
    verdict = found.verdict(axis)
    best, worst = _widest(found, axis)
    by = f"{best} beats {worst['value']} by {worst['difference']:.3f}"
    basis = _basis(verdict)
    if verdict["verdict"] == NONE:
        return f"{axis}: no verdict, {verdict['why']} ({by} {metric}, {basis})"
    test = f"F-test {_p(verdict['p'])} over {basis}"
    interval = f"Tukey's 95 % interval {worst['low']:.3f} to {worst['high']:.3f}"
    caveat = ("; one run per point: the noise is measured from how the other axes combine, "
              "interactions included" * (verdict["runs"][1] == 1))
    if verdict["verdict"] == MATTERS:
        return (f"{axis} matters{' most' * most}: {by} {metric} ({test}; {interval}"
                f"{caveat})")
    runs = runs_to_find(found, axis)
    hint = (f"; about {runs} runs of each point would find a difference this size 8 times "
            "in 10 (search.repeats)") if runs else ""
    return f"{axis}: within noise ({test}; {by}, {interval}{caveat}{hint})"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _basis(verdict: pd.Series) -> str:
    """What the test compared: the trials, the blocks, and the runs of each point where some
    points have fewer than others."""
    shape = [f"{k} {'seeds' if b == REPEAT_AXIS else b}" for b, k in verdict["blocks"]]
    low, high = verdict["runs"]
    runs = f", {low} to {high} runs per point" if shape and low != high else ""
    return f"{verdict['n']} trials" + (f", blocks {' x '.join(shape)}" if shape else "") + runs


def interaction_lines(pairs: pd.DataFrame) -> list[str]:
    """The interactions in words: each that matters, else that none is beyond noise, else
    why none could be tested."""
    found = pairs[pairs["verdict"] == MATTERS]
    if not found.empty:
        holm = " Holm-adjusted" * (len(pairs[pairs["verdict"] != NONE]) > 1)
        return [f"{r.a} and {r.b} interact (F-test{holm} {_p(r.p)}): the best {r.b} depends "
                f"on {r.a}" for r in found.itertuples()]
    tested = pairs[pairs["verdict"] != NONE]
    if not tested.empty:
        return [f"interactions: none beyond noise (F-tests of {len(tested)} pair(s) of knobs)"]
    if not pairs.empty:
        return [f"interactions: not tested, {pairs['why'].iloc[0]}"]
    return []


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
    """``sweep report A B``: each study against the first, the axes they share as blocks (the
    same point in both studies), in the same words as a knob."""
    first = results[0]
    shared = [p for p in first.params if all(p in r.params for r in results[1:])]
    rows = pd.concat([completed(r)[[*shared, "value"]].assign(study=r.name) for r in results],
                     ignore_index=True)
    if rows["study"].nunique() < 2:
        return []
    found = effects(rows, ("study", *shared), "value", first.direction)
    if "study" not in set(found.verdicts["axis"]):
        return []
    return [effect_line("study", found, first.metric)]
