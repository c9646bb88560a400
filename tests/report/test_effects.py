"""The report's answer (issue 26) on crafted results whose truth is known: an axis with a
large effect, one with none, an interaction, repeats or none; then a real digits study."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from sweep.report.effects import effects, interactions, within_noise
from sweep.report.frames import StudyResult
from sweep.report.importance import importances
from sweep.report.summary import comparison, study_answer

AXES = ("model.kernel", "model.pooling", "seed")
KERNEL_EFFECT = 0.02  # val_accuracy lost per pixel of kernel width: 3 beats 7 by 0.08


def _rows(seed: int = 0, noise: float = 0.01, repeats: int = 3, pooling_effect: float = 0.0):
    """Trials of kernel [3, 5, 7] x pooling [max, avg] x ``repeats`` seeds: the kernel
    matters, the pooling by ``pooling_effect`` (none by default)."""
    r = np.random.default_rng(seed)
    return pd.DataFrame([
        {"trial": i, "state": "COMPLETE", "model.kernel": k, "model.pooling": p, "seed": s,
         "value": 0.8 - KERNEL_EFFECT * (k - 3) + pooling_effect * (p == "max")
         + r.normal(0, noise)}
        for i, (k, p, s) in enumerate(itertools.product([3, 5, 7], ["max", "avg"],
                                                         range(repeats)))])


def _result(rows: pd.DataFrame, axes=AXES, name="crafted", curves=None) -> StudyResult:
    return StudyResult(name=name, metrics=("val_accuracy",), directions=("maximize",),
                       params=axes, snapshots=pd.DataFrame(), trials=rows,
                       curves=pd.DataFrame() if curves is None else curves)


def _one(found: pd.DataFrame, axis: str, value: str) -> pd.Series:
    return found[(found["axis"] == axis) & (found["value"] == value)].iloc[0]


def test_a_large_effect_is_found_and_no_effect_is_within_noise():
    found = effects(_rows(), AXES, "value", "maximize")
    assert set(found["axis"]) == {"model.kernel", "model.pooling"}  # the seed is the noise
    assert _one(found, "model.kernel", "3")["best"]
    seven = _one(found, "model.kernel", "7")
    assert seven["pairs"] == 6  # the same pooling and seed, other kernel: 2 x 3 pairs
    assert seven["low"] <= 4 * KERNEL_EFFECT <= seven["high"] and within_noise(seven) is False
    pooling = found[(found["axis"] == "model.pooling") & ~found["best"]].iloc[0]
    assert pooling["low"] <= 0 <= pooling["high"] and within_noise(pooling) is True


def test_the_intervals_cover_the_truth_about_95_in_100_times():
    covered = []
    for seed in range(200):
        found = effects(_rows(seed, noise=0.02), AXES, "value", "maximize")
        if not _one(found, "model.kernel", "3")["best"]:
            continue  # the difference of 5 from 3 is then measured from 5
        five = _one(found, "model.kernel", "5")
        covered.append(five["low"] <= 2 * KERNEL_EFFECT <= five["high"])
    assert len(covered) > 150 and 0.9 <= np.mean(covered) <= 0.99


def test_an_interaction_is_found_and_additive_axes_have_none():
    rows = _rows(noise=0.0, repeats=1)
    flipped = rows.assign(value=rows["value"] + 0.05 * np.where(
        (rows["model.kernel"] == 7) == (rows["model.pooling"] == "avg"), 1, -1))
    assert interactions(rows, AXES, "value")["strength"].iloc[0] == pytest.approx(0, abs=1e-12)
    pair = interactions(flipped, AXES, "value").iloc[0]
    assert (pair["a"], pair["b"]) == ("model.kernel", "model.pooling")
    assert pair["strength"] > 0.02
    table = pair["table"]  # the best pooling depends on the kernel
    assert table.loc["7"].idxmax() == "avg" and table.loc["3"].idxmax() == "max"


def test_importance_is_optunas_and_ranks_the_kernel_first():
    shares = importances(_rows(), AXES, "value", "maximize")
    assert list(shares.index) == ["model.kernel", "model.pooling"]
    assert shares.sum() == pytest.approx(1.0) and shares["model.kernel"] > 0.9


def test_a_study_whose_trials_all_scored_the_same_has_no_importance_to_share():
    # fANOVA raised "zero total variance in all trees" from sweep run's report (every trial
    # of a tiny study at val_accuracy 1.0)
    rows = _rows().assign(value=1.0)
    assert importances(rows, AXES, "value", "maximize").empty
    assert study_answer(_result(rows)).lines[0].startswith("crafted: 18 complete trial(s)")


def test_the_answer_says_it_in_the_seeds_terms():
    curves = pd.DataFrame([
        {"trial": t, "state": "COMPLETE", "epoch": e, "train_accuracy": 0.5 + 0.1 * e,
         "val_accuracy": 0.5 + 0.05 * min(e, 3), "val_loss": 1.0 + abs(e - 3) * 0.1}
        for t in range(4) for e in range(1, 6)])
    lines = study_answer(_result(_rows(), curves=curves)).lines
    assert lines[0] == "crafted: 18 complete trial(s), objective val_accuracy (maximize)"
    assert lines[1].startswith("model.kernel matters most: 3 beats 7 by 0.0")
    assert "6 pairs over 2 model.pooling x 3 repeats" in lines[1]
    assert lines[2].startswith("model.pooling: within noise (")
    assert re.search(r"; about \d+ runs of each point would settle it\)$", lines[2])
    shares = dict(part.rsplit(" ", 1) for part in lines[3].split(": ")[1].split(", "))
    assert lines[3].startswith("importance (Optuna's fANOVA): model.kernel ")
    assert float(shares["model.kernel"]) > 0.9 > float(shares["model.pooling"])
    assert lines[4] == ("overfitting: train − validation accuracy gap 0.350 at the last epoch "
                        "(5, mean of 4 trials); validation loss lowest before the last epoch in "
                        "4 of 4 trials (most often at epoch 3), then rising")


def test_one_run_per_point_says_where_its_interval_comes_from():
    rows = _rows(repeats=1).drop(columns="seed")
    lines = study_answer(_result(rows, axes=AXES[:2])).lines
    pooling = next(line for line in lines if line.startswith("model.pooling"))
    assert "3 pairs over 3 model.kernel" in pooling
    assert "one run per point: the interval is from the other axes only" in pooling


def test_two_studies_are_compared_point_by_point():
    base = _rows()
    better = base.assign(value=base["value"] + 0.05)
    lines = comparison([_result(base, name="plain"), _result(better, name="augmented")])
    assert lines[0].startswith("study matters: augmented beats plain by 0.05")
    assert "18 pairs over 3 model.kernel x 2 model.pooling x 3 repeats" in lines[0]


def test_many_sampled_values_are_binned_paired_over_the_other_axis_or_unpaired():
    r = np.random.default_rng(1)
    rate = 10 ** r.uniform(-4, -2, 200)
    rows = pd.DataFrame({"trial": range(200), "state": "COMPLETE", "training.learning_rate": rate,
                         "model.pooling": r.choice(["max", "avg"], 200),
                         "value": 0.7 + 0.05 * np.log10(rate) / 2 + r.normal(0, 0.01, 200)})
    axes = ("training.learning_rate", "model.pooling")
    found = effects(rows, axes, "value", "maximize")
    rates = found[found["axis"] == "training.learning_rate"]
    assert len(rates) == 8  # quantile bins, each named by its range
    assert (rates[~rates["best"]]["pairs"] == 2).all()  # paired over the 2 poolings
    lines = study_answer(_result(rows, axes=axes)).lines
    assert lines[1].startswith("training.learning_rate matters most: [")
    assert "2 pairs over 2 model.pooling" in lines[1]
    assert "pairs over 8 training.learning_rate" in lines[2]
    # the rate alone: nothing to pair over, the bins compared as groups (Welch's interval)
    alone = effects(rows, axes[:1], "value", "maximize")
    lowest = alone.iloc[0]  # the lowest rates' bin, the furthest from the best
    assert lowest["pairs"] == 0 and within_noise(lowest) is False
    assert "unpaired trials" in study_answer(_result(rows, axes=axes[:1])).lines[1]


def test_the_answer_is_drawn_as_effects_importance_interactions_and_parallel_lines():
    from sweep.report.effect_figures import answer_figures

    result = _result(_rows())
    figures = answer_figures(result, study_answer(result))
    assert [f.layout.title.text for f in figures] == [
        "Effects on validation accuracy, 95 % intervals", "Importance of each axis",
        "model.kernel by model.pooling", "Every trial across the axes"]
    effects_trace = figures[0].data[0]
    names = set(effects_trace.y)  # every value but each axis's best
    assert {"model.kernel = 7", "model.kernel = 5"} < names and len(names) == 3
    seven = list(effects_trace.y).index("model.kernel = 7")
    low = effects_trace.x[seven] - effects_trace.error_x.arrayminus[seven]
    assert low > 0  # its interval is drawn, clear of 0
    dimensions = figures[3].data[0].dimensions
    assert [d.label for d in dimensions] == ["model.kernel", "model.pooling", "val_accuracy"]
    assert list(dimensions[0].ticktext) == ["3", "5", "7"]  # a few numbers: one tick each


def test_a_conditional_axis_is_compared_where_it_has_a_value():
    # a hypermodel's hp.units exists only where hp.activation is relu (define-by-run); before,
    # the report of such a study stopped with a KeyError
    rows = pd.DataFrame({"trial": range(8), "state": "COMPLETE",
                         "hp.activation": ["relu", "relu", "linear", "linear"] * 2,
                         "hp.units": [8, 16, np.nan, np.nan] * 2,
                         "value": [0.5, 0.6, 0.7, 0.4, 0.55, 0.62, 0.71, 0.45]})
    axes = ("hp.activation", "hp.units")
    found = effects(rows, axes, "value", "maximize")
    assert set(found.loc[found["axis"] == "hp.units", "value"]) == {"8.0", "16.0"}
    assert found.loc[found["axis"] == "hp.activation", "count"].tolist() == [4, 4]
    lines = study_answer(_result(rows, axes=axes)).lines
    assert any(line.startswith("hp.units") for line in lines)
