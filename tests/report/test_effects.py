"""The report's answer (issues 26 and 35) on crafted results whose truth is known: an axis
with a large effect, one with none, an interaction, repeats or none. The level of its
verdicts, by simulation: test_verdicts.py."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from sweep.report.effects import MATTERS, NOISE, Design, effects
from sweep.report.frames import StudyResult
from sweep.report.importance import importances
from sweep.report.interactions import interactions
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


def _result(rows: pd.DataFrame, axes=AXES, name="crafted", curves=None,
            sampler="grid") -> StudyResult:
    return StudyResult(name=name, metrics=("val_accuracy",), directions=("maximize",),
                       params=axes, snapshots=pd.DataFrame(), trials=rows,
                       curves=pd.DataFrame() if curves is None else curves,
                       definition={"search": {"sampler": sampler}})


def _one(found: pd.DataFrame, axis: str, value: str) -> pd.Series:
    return found[(found["axis"] == axis) & (found["value"] == value)].iloc[0]


def test_a_large_effect_is_found_and_no_effect_is_within_noise():
    found = effects(_rows(), AXES, "value", "maximize")
    assert set(found.verdicts["axis"]) == {"model.kernel", "model.pooling"}  # seed: noise
    assert _one(found.values, "model.kernel", "3")["best"]
    seven = _one(found.values, "model.kernel", "7")
    assert seven["low"] <= 4 * KERNEL_EFFECT <= seven["high"] and seven["low"] > 0
    kernel = found.verdict("model.kernel")
    assert kernel["verdict"] == MATTERS and kernel["p"] < 0.001
    assert (kernel["df_num"], kernel["df_den"]) == (2, 18 - 1 - 2 - 1 - 2)  # blocks: 1 + 2
    assert kernel["blocks"] == [("model.pooling", 2), ("seed", 3)]
    pooling = found.values[(found.values["axis"] == "model.pooling") & ~found.values["best"]]
    assert pooling["low"].iloc[0] <= 0 <= pooling["high"].iloc[0]
    assert found.verdict("model.pooling")["verdict"] == NOISE


def test_the_intervals_cover_the_truth_at_least_95_in_100_times():
    covered = []  # Tukey's intervals hold together: each one a little more often than 95 %
    for seed in range(200):
        found = effects(_rows(seed, noise=0.02), AXES, "value", "maximize").values
        if not _one(found, "model.kernel", "3")["best"]:
            continue  # the difference of 5 from 3 is then measured from 5
        five = _one(found, "model.kernel", "5")
        covered.append(five["low"] <= 2 * KERNEL_EFFECT <= five["high"])
    assert len(covered) > 150 and 0.93 <= np.mean(covered) <= 1.0


def test_an_interaction_is_found_and_additive_axes_have_none():
    rows = _rows(noise=0.01)
    flipped = rows.assign(value=rows["value"] + 0.05 * np.where(
        (rows["model.kernel"] == 7) == (rows["model.pooling"] == "avg"), 1, -1))
    assert interactions(rows, AXES, "value")["verdict"].iloc[0] == NOISE
    pair = interactions(flipped, AXES, "value").iloc[0]
    assert (pair["a"], pair["b"], pair["verdict"]) == ("model.kernel", "model.pooling",
                                                       MATTERS)
    table = pair["table"]  # the best pooling depends on the kernel
    assert table.loc["7"].idxmax() == "avg" and table.loc["3"].idxmax() == "max"
    assert 0 < pair["beyond"] < 0.05  # two cells differ beyond noise by this much


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
    assert "(F-test p < 0.001 over 18 trials, blocks 2 model.pooling x 3 seeds; Tukey's 95 " \
           "% interval 0.0" in lines[1]
    assert lines[2].startswith("model.pooling: within noise (F-test p = 0.")
    assert re.search(r"; about \d+ runs of each point would find a difference this size 8 "
                     r"times in 10 \(search.repeats\)\)$", lines[2])
    assert lines[3].startswith("tests: each knob by one F-test over all its values")
    assert re.fullmatch(r"importance \(Optuna's fANOVA\): model.kernel (0\.9\d|1\.00), "
                        r"model.pooling 0\.0\d \(within noise\)", lines[4])  # noise's share
    assert lines[5] == "interactions: none beyond noise (F-tests of 1 pair(s) of knobs)"
    assert lines[6] == ("overfitting: train − validation accuracy gap 0.350 at the last epoch "
                        "(5, mean of 4 trials); validation loss lowest before the last epoch in "
                        "4 of 4 trials (most often at epoch 3), then rising")


def test_one_run_per_point_says_where_its_noise_comes_from_on_every_line():
    rows = _rows(repeats=1).drop(columns="seed")
    lines = study_answer(_result(rows, axes=AXES[:2])).lines
    knobs = [line for line in lines if line.startswith("model.")]
    assert len(knobs) == 2 and all(
        "one run per point: the noise is measured from how the other axes combine" in line
        for line in knobs)
    pooling = next(line for line in knobs if line.startswith("model.pooling"))
    assert "over 6 trials, blocks 3 model.kernel" in pooling
    assert lines[-1].startswith("interactions: not tested, one run per point and no third axis")
    alone = study_answer(_result(rows[rows["model.pooling"] == "max"], axes=AXES[:1])).lines
    assert alone[1].startswith("model.kernel: no verdict, nothing measures the noise")


def test_two_studies_are_compared_point_by_point():
    base = _rows()
    better = base.assign(value=base["value"] + 0.05)
    lines = comparison([_result(base, name="plain"), _result(better, name="augmented")])
    assert lines[0].startswith("study matters: augmented beats plain by 0.05")
    assert "36 trials, blocks 3 model.kernel x 2 model.pooling x 3 seeds" in lines[0]


def test_many_sampled_values_are_binned_and_compared_as_groups():
    r = np.random.default_rng(1)
    rate = 10 ** r.uniform(-4, -2, 200)
    rows = pd.DataFrame({"trial": range(200), "state": "COMPLETE", "training.learning_rate": rate,
                         "model.pooling": r.choice(["max", "avg"], 200),
                         "value": 0.7 + 0.05 * np.log10(rate) / 2 + r.normal(0, 0.01, 200)})
    axes = ("training.learning_rate", "model.pooling")
    found = effects(rows, axes, "value", "maximize", Design("groups"))
    rates = found.values[found.values["axis"] == "training.learning_rate"]
    assert len(rates) == 8  # quantile bins, each named by its range
    verdict = found.verdict("training.learning_rate")
    assert verdict["verdict"] == MATTERS and (verdict["df_num"], verdict["blocks"]) == (7, [])
    lines = study_answer(_result(rows, axes=axes, sampler="random")).lines
    assert lines[1].startswith("training.learning_rate matters most: [")
    assert "over 200 trials;" in lines[1]
    assert lines[3].startswith("tests: each knob by one F-test over all its values (binned)")
    assert lines[-1] == ("interactions: not tested, values drawn at random: no two-way table "
                         "to test")


def test_the_answer_is_drawn_as_effects_importance_interactions_and_parallel_lines():
    from sweep.report.effect_figures import answer_figures

    result = _result(_rows())
    figures = answer_figures(result, study_answer(result))
    assert [f.layout.title.text for f in figures] == [
        "Effects on validation accuracy, Tukey's simultaneous 95 % intervals",
        "Importance of each axis",
        "model.kernel by model.pooling", "Every trial across the axes"]
    effects_trace = figures[0].data[0]
    names = set(effects_trace.y)  # every value but each axis's best
    assert {"model.kernel = 7", "model.kernel = 5"} < names and len(names) == 3
    seven = list(effects_trace.y).index("model.kernel = 7")
    low = effects_trace.x[seven] - effects_trace.error_x.arrayminus[seven]
    assert low > 0  # its interval is drawn, clear of 0
    heatmap = figures[2].data[0]  # within noise: the colours span 3 differences beyond noise
    assert heatmap.zmax - heatmap.zmin >= 3 * study_answer(result).interactions["beyond"][0]
    assert "interaction within noise (F-test p = 0." in figures[2].layout.title.subtitle.text
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
    found = effects(rows, axes, "value", "maximize").values
    assert set(found.loc[found["axis"] == "hp.units", "value"]) == {"8.0", "16.0"}
    assert found.loc[found["axis"] == "hp.activation", "count"].tolist() == [4, 4]
    lines = study_answer(_result(rows, axes=axes)).lines
    assert any(line.startswith("hp.units") for line in lines)


def test_points_with_fewer_runs_are_counted_as_they_are():
    # issue 35: "8 pairs over ... x 3 repeats" was printed where only 2 repeats matched
    rows = _rows().iloc[1:]  # kernel 3, max pooling: seeds 1 and 2 only
    lines = study_answer(_result(rows)).lines
    kernel = next(line for line in lines if line.startswith("model.kernel"))
    assert "over 17 trials, blocks 2 model.pooling x 3 seeds, 2 to 3 runs per point" in kernel


def test_no_runs_are_suggested_where_statsmodels_finds_no_number(recwarn):
    # A first GPU check's grid (make gpu-check --quick): 8 points, one run each, accuracies at
    # chance; statsmodels' power solver does not converge for pooling and returns nan, which
    # ended `sweep run` with a traceback in its report instead of "within noise".
    from sweep.report.effects import runs_to_find

    rows = pd.DataFrame([{"kernel": k, "pooling": p, "lr": lr} for k in (3, 5)
                         for p in ("max", "avg") for lr in (0.001, 0.002)])
    rows["v"] = [0.1, 0.05, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05]
    found = effects(rows, ("kernel", "pooling", "lr"), "v", "maximize")
    assert runs_to_find(found, "pooling") is None
    assert runs_to_find(found, "kernel") == 3
    assert not [w for w in recwarn if "converge" in str(w.message)]  # nothing shown
