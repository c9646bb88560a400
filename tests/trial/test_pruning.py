"""Pruning: hopeless trials stop early, count as done, and show as pruned in the report."""

from __future__ import annotations

import sqlite3

import optuna
import pytest

from sweep.cli import main
from sweep.errors import SpecError
from sweep.report import load_study_result
from sweep.report.curve_figures import curves_figure
from sweep.study import load_study

from conftest import tiny_study, write_study

GOOD = [0.01, 0.02, 0.03, 0.04, 0.05]  # Adam learning rates that learn the tiny images
HOPELESS = [1.0e-9, 2.0e-9]  # too small to move the loss at all


def pruning_study(tiny_npz, pruner: str) -> dict:
    raw = tiny_study(tiny_npz, search={
        "sampler": "grid", "pruner": pruner,
        "params": {"training.learning_rate": GOOD + HOPELESS}})
    raw["training"] = {**raw["training"], "epochs": 4, "snapshots": [4]}
    raw["objective"] = {"metric": "val_loss"}  # smooth per epoch, unlike accuracy on 16 images
    return raw


def epochs_per_trial(tmp_path) -> dict[int, int]:
    with sqlite3.connect(tmp_path / "sweeps.db") as conn:
        return dict(conn.execute("SELECT trial_number, COUNT(*) FROM sweep_epochs "
                                 "GROUP BY trial_number").fetchall())


def test_pruner_is_validated_and_recorded(tmp_path, tiny_npz):
    raw = pruning_study(tiny_npz, "sometimes")
    with pytest.raises(SpecError, match=r"search.pruner: expected one of none, median, "
                                        r"hyperband, got 'sometimes'"):
        load_study(str(write_study(tmp_path, raw)))
    spec = load_study(str(write_study(tmp_path, pruning_study(tiny_npz, "hyperband"))))
    assert spec.search.pruner == "hyperband" and spec.as_dict()["search"]["pruner"] == "hyperband"
    # Studies stored before pruners existed compare equal: no pruner, no key.
    raw = pruning_study(tiny_npz, "none")
    assert "pruner" not in load_study(str(write_study(tmp_path, raw))).as_dict()["search"]


@pytest.mark.slow
def test_median_pruner_stops_hopeless_trials(tmp_path, tiny_npz, db_url, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, pruning_study(tiny_npz, "median"))
    assert main(["run", str(path), "--storage", db_url]) == 0
    out = capsys.readouterr()
    assert "7 points: 7 run now (0 failed, 2 pruned)" in out.out
    assert "pruned at epoch 2" in out.err
    trials = {t.params["training.learning_rate"]: t
              for t in optuna.load_study(study_name="tiny", storage=db_url).trials}
    assert {lr: trials[lr].state.name for lr in GOOD + HOPELESS} == {
        **{lr: "COMPLETE" for lr in GOOD}, **{lr: "PRUNED" for lr in HOPELESS}}
    epochs = epochs_per_trial(tmp_path)
    assert [epochs[trials[lr].number] for lr in GOOD + HOPELESS] == [4] * 5 + [2] * 2
    # A pruned point is done: running again trains nothing.
    assert main(["run", str(path), "--storage", db_url]) == 0
    assert "0 run now (0 failed), 7 already done" in capsys.readouterr().out
    # The report shows them as pruned: the state column, dotted curves.
    result = load_study_result("tiny", db_url)
    states = dict(zip(result.trials["trial"], result.trials["state"], strict=True))
    assert sorted(states.values()) == ["COMPLETE"] * 5 + ["PRUNED"] * 2
    dotted = {t.name for t in curves_figure(result.curves, result.params).data
              if t.line.dash == "dot"}
    assert dotted == {f"learning_rate={lr} (trial {trials[lr].number}, pruned)"
                      for lr in HOPELESS}
    page = (tmp_path / "reports" / "tiny.html").read_text()
    assert page.count("<td>PRUNED</td>") == 2


@pytest.mark.slow
def test_hyperband_pruner_runs_every_point_once(tmp_path, tiny_npz, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, pruning_study(tiny_npz, "hyperband"))
    assert main(["run", str(path), "--storage", db_url]) == 0
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert len(trials) == 7 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    epochs = epochs_per_trial(tmp_path)
    for t in trials:
        assert (epochs[t.number] < 4) == (t.state.name == "PRUNED")
    assert any(t.state.name == "PRUNED" for t in trials)
