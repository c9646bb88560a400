"""The answer's "matters" holds its stated level (issue 35), by simulation on studies whose
truth the test made: on pure noise a knob is said to matter in at most 6.5 % of studies (5 %
plus sampling slack), and a real effect of 3 noise standard deviations is found in at least
90 % where the design has trials enough for any test to find it. Before, the best value
against the worst by a 95 % paired interval said "matters" on 12-23 % of noise studies.

The studies are grids: a knob of 2 to 6 values, one or two other axes (each with a real
effect of its own, which the blocks must absorb), one run per point or three seeds. Each
simulated study goes through the function that decides every verdict the answer prints
(``effects.fit_knob``); the last tests check that the answer's words follow it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweep.report.effects import MATTERS, NOISE, NONE, Design, axis_codes, effects, fit_knob
from sweep.report.frames import StudyResult
from sweep.report.interactions import interactions
from sweep.report.summary import study_answer

NULL_STUDIES = 2000  # per design: the share's standard error is then 0.5 % at 5 %
POWER_STUDIES = 300
EFFECT = 3.0  # noise standard deviations: the knob's last value above the rest
DESIGNS = [(k, others, repeats) for k in range(2, 7) for others in [(3,), (3, 2)]
           for repeats in (1, 3)]


def _grid(k: int, others: tuple[int, ...], repeats: int) -> tuple[pd.DataFrame, tuple]:
    """Every point of the knob x the other axes, ``repeats`` times (a seed axis), and the
    other axes' own effects (0.5 noise SDs per value, and an interaction between them)."""
    names = ["knob", *[f"other{i}" for i in range(len(others))], "seed"]
    grid = pd.DataFrame(itertools.product(range(k), *map(range, others), range(repeats)),
                        columns=names)
    axes = tuple(names if repeats > 1 else names[:-1])
    base = sum(0.5 * grid[f"other{i}"] for i in range(len(others)))
    if len(others) > 1:
        base = base + 0.7 * (grid["other0"] == 0) * (grid["other1"] == 1)
    return grid[list(axes)].assign(base=base), axes


def _shares(k: int, others: tuple[int, ...], repeats: int, effect: float, studies: int,
            seed: int) -> float:
    """The share of ``studies`` simulated studies in which the knob is said to matter."""
    grid, axes = _grid(k, others, repeats)
    codes = axis_codes(grid, axes)
    truth = grid["base"].to_numpy() + effect * (grid["knob"].to_numpy() == k - 1)
    noise = np.random.default_rng(seed).normal(size=(studies, len(grid)))
    said = [fit_knob(truth + e, codes, "knob", axes, Design()).test()[0] for e in noise]
    return float(np.mean([s == MATTERS for s in said]))


@pytest.mark.parametrize("k, others, repeats", DESIGNS,
                         ids=[f"{k}values-others{o}-x{r}" for k, o, r in DESIGNS])
def test_a_knob_without_effect_is_said_to_matter_at_most_6_5_in_100_studies(k, others,
                                                                             repeats):
    share = _shares(k, others, repeats, 0.0, NULL_STUDIES, seed=k * 100 + repeats)
    assert share <= 0.065, f"said to matter in {share:.1%} of null studies"


@pytest.mark.parametrize("k, others, repeats", DESIGNS,
                         ids=[f"{k}values-others{o}-x{r}" for k, o, r in DESIGNS])
def test_a_3_sd_effect_is_found_in_at_least_90_in_100_studies(k, others, repeats):
    share = _shares(k, others, repeats, EFFECT, POWER_STUDIES, seed=k * 100 + repeats + 1)
    if others == (3,) and repeats == 1:
        # 2k trials of which k - 1 + 2 parameters leave 2(k - 1) degrees of freedom for the
        # noise: no test at the 5 % level finds 3 SD there 9 times in 10 (the F-test, the
        # most powerful such test, does in 36-80 %); the answer says "within noise" then
        assert share >= 0.3
        return
    assert share >= 0.9, f"found in {share:.1%} of studies with a {EFFECT} SD effect"


def test_values_drawn_at_random_are_compared_as_groups_at_their_level():
    r = np.random.default_rng(7)
    said = []
    for _ in range(400):
        rows = pd.DataFrame({"training.learning_rate": 10 ** r.uniform(-4, -2, 60),
                             "model.pooling": r.choice(["max", "avg"], 60)})
        rows["value"] = 0.2 * (rows["model.pooling"] == "max") + r.normal(size=60)
        found = effects(rows, tuple(rows.columns[:2]), "value", "maximize", Design("groups"))
        said.append(found.verdict("training.learning_rate")["verdict"])
    assert set(said) <= {MATTERS, NOISE}
    assert np.mean([s == MATTERS for s in said]) <= 0.065


def test_an_interaction_is_said_only_where_a_test_says_so():
    r = np.random.default_rng(0)
    grid, axes = _grid(3, (2,), 3)
    grid = grid.rename(columns={"other0": "pooling"})
    axes = ("knob", "pooling", "seed")
    said = [interactions(grid.assign(value=grid["base"] + r.normal(size=len(grid))), axes,
                         "value")["verdict"].iloc[0] for _ in range(1000)]
    assert np.mean([s == MATTERS for s in said]) <= 0.065
    flipped = grid.assign(value=grid["base"] + 3.0 * np.where(
        (grid["knob"] == 2) == (grid["pooling"] == 0), 1, -1) + r.normal(size=len(grid)))
    pair = interactions(flipped, axes, "value").iloc[0]
    assert pair["verdict"] == MATTERS and pair["p"] < 0.001
    once = flipped[flipped["seed"] == 0].drop(columns="seed")
    alone = interactions(once, axes[:2], "value").iloc[0]
    assert alone["verdict"] == NONE and "cannot be told from noise" in alone["why"]


def _result(rows: pd.DataFrame, axes: tuple, sampler: str = "grid") -> StudyResult:
    return StudyResult(name="simulated", metrics=("val_accuracy",), directions=("maximize",),
                       params=axes, snapshots=pd.DataFrame(), curves=pd.DataFrame(),
                       trials=rows.assign(state="COMPLETE", trial=range(len(rows))),
                       definition={"search": {"sampler": sampler}})


def test_the_answer_says_what_the_test_says_and_names_the_test():
    grid, axes = _grid(4, (3,), 3)
    r = np.random.default_rng(11)
    noise = grid.assign(value=grid["base"] + r.normal(size=len(grid)))
    lines = study_answer(_result(noise, axes)).lines
    knob = next(line for line in lines if line.startswith("knob"))
    verdict = effects(noise, axes, "value", "maximize").verdict("knob")
    assert verdict["verdict"] == NOISE and knob.startswith("knob: within noise (F-test p = ")
    assert "blocks 3 other0 x 3 seeds" in knob
    assert any(line.startswith("tests: each knob by one F-test over all its values at the "
                               "5 % level") for line in lines)
    # other0 matters: the importances are shown, the knob's said to be a share of noise
    importance = next(line for line in lines if line.startswith("importance ("))
    assert "knob 0." in importance and importance.split("knob 0.")[1][2:].startswith(
        " (within noise)")
    flat = noise.assign(value=r.normal(size=len(grid)))  # nothing matters: no importance
    verdicts = effects(flat, axes, "value", "maximize").verdicts["verdict"]
    lines = study_answer(_result(flat, axes)).lines
    assert not (verdicts == MATTERS).any()
    assert "importance: not shown, as no knob is beyond noise" in " ".join(lines)
    real = grid.assign(value=noise["value"] + 3.0 * (grid["knob"] == 3))
    lines = study_answer(_result(real, axes)).lines
    assert lines[1].startswith("knob matters most: 3 beats ")
    assert "Tukey's 95 % interval" in lines[1]


def test_values_chosen_from_earlier_results_get_no_verdict():
    grid, axes = _grid(3, (2,), 1)
    rows = grid.assign(value=grid["base"] + 5.0 * (grid["knob"] == 2))
    lines = study_answer(_result(rows, axes, sampler="tpe")).lines
    knob = next(line for line in lines if line.startswith("knob"))
    assert knob.startswith("knob: no verdict, not a designed comparison: tpe chose each value")
    assert "(2 beats 0 by 5.000 val_accuracy, 6 trials)" in knob
    assert "tests: none, not a designed comparison: tpe chose" in " ".join(lines)
    assert "matters" not in " ".join(lines)


@pytest.mark.slow
def test_a_real_study_names_the_knob_that_clearly_matters(tmp_path, capsys):
    # a learning rate of 1e-5 against 3e-3 on the digits: the rate clearly matters, the
    # pooling much less; `sweep summary` says so in the new words
    import yaml

    from sweep.cli import main

    study = yaml.safe_load((Path(__file__).parents[2] / "studies" / "quickstart.yaml")
                           .read_text())
    study["training"] |= {"epochs": 3, "snapshots": [3]}
    study["search"] = {"sampler": "grid", "repeats": 2, "params": {
        "training.learning_rate": [1.0e-5, 3.0e-3], "model.pooling": ["max", "avg"]}}
    path = tmp_path / "rates.yaml"
    path.write_text(yaml.safe_dump(study))
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert main(["run", str(path), "--storage", url, "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["summary", "quickstart", "--storage", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("training.learning_rate matters most: 0.003 beats 1e-05 by 0.")
    assert "over 8 trials, blocks 2 model.pooling x 2 seeds" in lines[1]
    assert lines[2].startswith("model.pooling: within noise (F-test p = ")
