"""A successive-halving study's answer (issue 38): every point compared at the highest rung all
of them reached, never the survivors above it; its "matters" holds the 5 % level by
simulation on halved studies whose truth the test made."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from sweep.report.effects import MATTERS, NONE, Design, axis_codes, fit_knob
from sweep.report.figures import report_figures
from sweep.report.frames import StudyResult
from sweep.report.rungs import rungs_of
from sweep.report.summary import design_of, study_answer

LADDER = (1, 3, 9)  # min_epochs 1, factor 3, 9 epochs
AXES = ("knob", "other0", "other1")
SCHEDULE = {"kind": "halving", "min_epochs": 1, "factor": 3}


def _halved(values: np.ndarray, grid: pd.DataFrame, at: str = "last") -> StudyResult:
    """A study whose points (``grid``'s rows) have ``values[point, rung]`` at the end of each
    rung, halved as the workers would: the best third of each rung goes on to the next."""
    reached = np.full(len(grid), LADDER[0])
    for i, rung in enumerate(LADDER[:-1]):
        there = np.flatnonzero(reached == rung) if i == 0 else np.flatnonzero(reached >= rung)
        best = there[np.argsort(-values[there, i], kind="stable")][:len(there) // 3]
        reached[best] = LADDER[i + 1]
    curves = pd.DataFrame([
        {"trial": t, "epoch": e, "val_accuracy": values[t, LADDER.index(e)],
         "train_accuracy": values[t, LADDER.index(e)] + 0.1, "val_loss": 1.0 - e / 10}
        for t in range(len(grid)) for e in LADDER if e <= reached[t]])
    state = np.where(reached == LADDER[-1], "COMPLETE", "PRUNED")
    trials = grid.assign(trial=range(len(grid)), state=state,
                         value=values[np.arange(len(grid)), [LADDER.index(r) for r in reached]])
    return StudyResult(
        name="halved", metrics=("val_accuracy",), directions=("maximize",), params=AXES,
        snapshots=pd.DataFrame(), trials=trials, at=at,
        curves=curves.merge(trials[["trial", "state", *AXES]], on="trial"),
        definition={"search": {"sampler": "grid", "schedule": SCHEDULE},
                    "training": {"epochs": LADDER[-1]}})


def _grid() -> pd.DataFrame:
    return pd.DataFrame(itertools.product(range(3), range(3), range(2)), columns=list(AXES))


def test_every_point_is_compared_at_the_first_rung_with_its_value_there():
    grid = _grid()
    values = np.arange(len(grid) * 3, dtype=float).reshape(len(grid), 3) / 100
    rungs = rungs_of(_halved(values, grid))
    assert rungs is not None and rungs.epochs == LADDER and rungs.compared == 1
    assert len(rungs.points) == 18 and rungs.waiting == 0
    assert rungs.points.set_index("trial")["value"].to_dict() == {
        t: values[t, 0] for t in range(18)}  # at rung 1, whatever rung the point reached
    assert rungs.went_on() == [(3, 6), (9, 2)]
    assert rungs.trained == 12 * 1 + 4 * 3 + 2 * 9
    best = rungs_of(_halved(values[:, ::-1].copy(), grid, at="best"))
    assert best is not None  # at: best: the best epoch up to the rung (here, its only one)
    assert best.points.set_index("trial")["value"].to_dict() == {
        t: values[t, 2] for t in range(18)}


def test_the_answer_says_the_rung_and_gives_a_verdict_the_pruned_do_not_void():
    grid = _grid()
    r = np.random.default_rng(3)
    values = 0.5 + 0.3 * (grid["knob"].to_numpy() == 2)[:, None] + r.normal(0, 0.01, (18, 3))
    result = _halved(values, grid)
    assert design_of(result).test == "blocks"
    lines = study_answer(result).lines
    assert lines[0] == (
        "halved: 18 point(s) compared at rung 1 of 3 (1 epoch), the highest rung all "
        "reached, objective val_accuracy (maximize); successive halving promoted 6 to 3 and "
        "2 to 9: 42 epochs trained, 26 % of the 162 that training every point to 9 would "
        "take")
    assert lines[1].startswith("knob matters most: 2 beats ")
    assert all(NONE not in line for line in lines[1:4])
    titles = [f.layout.title.text for f in report_figures(result)]
    assert "Successive halving: each point's curve, coloured by the rung it stopped at" in titles
    figure = next(f for f in report_figures(result) if f.layout.title.text.startswith("Succ"))
    assert [t.name for t in figure.data] == [
        "stopped at rung 1 (1 epoch): 12 point(s)", "stopped at rung 2 (3 epochs): 4 point(s)",
        "stopped at rung 3 (9 epochs): 2 point(s)"]


def _knob_said(values: np.ndarray, grid: pd.DataFrame, codes: pd.DataFrame) -> str:
    rungs = rungs_of(_halved(values, grid))
    assert rungs is not None
    compared = rungs.points.set_index("trial").loc[grid.index, "value"].to_numpy()
    return fit_knob(compared, codes, "knob", AXES, Design()).test()[0]


def test_on_noise_a_halved_knob_matters_at_most_6_5_in_100_studies():
    # The rungs above the first hold the best of the one below: compared there, the knob
    # whose values won would look like it matters. At the first rung nothing was chosen.
    grid = _grid()
    codes = axis_codes(grid, AXES)
    r = np.random.default_rng(38)
    said = []
    for _ in range(400):
        # a point's later rungs follow its first (a good start stays good), plus noise
        values = r.normal(size=(18, 1)) + 3.0 * np.arange(3) + r.normal(0, 0.3, (18, 3))
        said.append(_knob_said(values, grid, codes))
    assert np.mean([s == MATTERS for s in said]) <= 0.065
    found = []
    for _ in range(200):  # and a real effect of 3 noise SDs is found 9 times in 10
        values = (3.0 * (grid["knob"].to_numpy() == 2)[:, None] + r.normal(size=(18, 1))
                  + r.normal(0, 0.3, (18, 3)))
        found.append(_knob_said(values, grid, codes) == MATTERS)
    assert np.mean(found) >= 0.9
