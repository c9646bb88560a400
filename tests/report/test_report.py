"""Reports: the frames first (what the plots are drawn from), then the figures and the file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sweep.errors import StorageError
from sweep.report import grouped_figure, load_study_result, report_figures, write_report
from sweep.report.figures import DIAGNOSTIC_METRICS

pytestmark = pytest.mark.slow


def test_snapshot_frame_has_one_row_per_trial_and_snapshot(swept):
    _, _, url = swept
    result = load_study_result("tiny", url)
    frame = result.snapshots
    assert len(frame) == 4
    assert sorted(frame["epoch"].unique()) == [1, 2]
    assert sorted(frame["model.pooling"].unique()) == ["avg", "max"]
    for column in ("train_accuracy", "test_accuracy", "val_accuracy"):
        assert frame[column].between(0, 1).all()
    assert (frame["test_loss"] > 0).all()
    assert result.params == ("model.pooling",)
    assert result.metric == "val_accuracy" and result.direction == "maximize"


def test_trials_frame_is_sorted_best_first(swept):
    trials = load_study_result("tiny", swept[2]).trials
    values = trials["value"].dropna().tolist()
    assert values == sorted(values, reverse=True)
    assert set(trials["state"]) <= {"COMPLETE"}
    assert (trials["param_count"] > 0).all()


def test_curves_frame_has_every_epoch(swept):
    curves = load_study_result("tiny", swept[2]).curves
    assert curves.groupby("trial")["epoch"].apply(list).tolist() == [[1, 2], [1, 2]]


def test_grouped_figure_has_a_box_per_value_and_metric(swept):
    frame = load_study_result("tiny", swept[2]).snapshots
    fig = grouped_figure(frame, "epoch")
    assert len(fig.data) == 3 * 2  # train acc, test acc, test loss x epochs {1, 2}
    assert {trace.name for trace in fig.data} == {"1", "2"}
    figures = report_figures(load_study_result("tiny", swept[2]))
    assert [f.layout.title.text for f in figures] == [
        "Grouped by model.pooling", "Grouped by epoch", "Learning curves",
        "Diagnostics by model.pooling", "Diagnostics by epoch",
        "Per-class test accuracy by model.pooling",
        "Confusion matrix of the best trial"]


def test_diagnostic_frames(swept):
    result = load_study_result("tiny", swept[2])
    snapshots = result.snapshots
    assert (snapshots["gap"] == snapshots["train_accuracy"] - snapshots["val_accuracy"]).all()
    assert snapshots["roc_auc"].between(0, 1).all()
    assert snapshots["dead_test"].between(0, 1).all() and snapshots["dead_train"].notna().all()
    assert (snapshots["receptive_field"] == 8).all()
    # 2 trials x 2 snapshots x 3 classes; a class's accuracy is the confusion diagonal share
    assert len(result.per_class) == 12 and result.per_class["accuracy"].between(0, 1).all()
    assert sum(map(sum, result.best_confusion)) == 24
    assert sorted(result.pictures["kind"].unique()) == ["filters", "pca"]
    assert len(result.pictures) == 2 * 2 * 2  # trials x snapshots x kinds


def test_diagnostic_figure_groups_gap_auc_and_dead_units(swept):
    frame = load_study_result("tiny", swept[2]).snapshots
    fig = grouped_figure(frame, "model.pooling", DIAGNOSTIC_METRICS, "Diagnostics by")
    assert [a.text for a in fig.layout.annotations] == list(DIAGNOSTIC_METRICS)
    assert len(fig.data) == 4 * 2


def test_report_command_writes_html(swept, tmp_path):
    tmp = swept[0]
    result = load_study_result("tiny", swept[2])
    out = write_report(result, report_figures(result), tmp_path / "r.html", tmp / "artifacts")
    page = out.read_text()
    assert page.count("Plotly.newPlot") == 7 and "sweep report: tiny" in page
    # the last snapshot's two pictures of each of the two trials, embedded
    assert page.count("<img src='data:image/png;base64,") == 4


def test_unknown_study_lists_what_is_there(swept):
    with pytest.raises(StorageError, match="no study named 'nope'.*studies there: tiny"):
        load_study_result("nope", swept[2])


def test_console_script_reports_a_missing_database_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "report", "tiny", "--storage",
         f"sqlite:///{tmp_path / 'none.db'}"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("no such database file")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "none.db").exists()


def test_best_means_best_among_complete_trials(tmp_path, tiny_npz, monkeypatch, capsys):
    # before: a pruned trial (Optuna gives it its last reported value) could sort first, and
    # the confusion matrix of the best complete trial was labelled with the pruned one
    import optuna
    from optuna.distributions import CategoricalDistribution

    from conftest import tiny_study, write_study
    from sweep.cli import main
    from sweep.report import study_status
    from sweep.report.figures import confusion_figure

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert main(["run", str(write_study(tmp_path, tiny_study(tiny_npz))), "--storage", url]) == 0
    study = optuna.load_study(study_name="tiny", storage=url)
    complete = max(study.trials, key=lambda t: t.value)
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.PRUNED, value=1.5, intermediate_values={1: 1.5},
        params={"model.pooling": "max"},
        distributions={"model.pooling": CategoricalDistribution(["max", "avg"])}))
    result = load_study_result("tiny", url)
    assert result.trials["state"].iloc[0] == "COMPLETE"
    assert result.trials["trial"].iloc[0] == complete.number == result.best_trial
    assert list(result.trials["state"]) == ["COMPLETE", "COMPLETE", "PRUNED"]
    (figure,) = [f for f in report_figures(result) if f.layout.title.text.startswith("Confusion")]
    assert figure.layout.xaxis.title.text == f"predicted class (trial {complete.number})"
    assert confusion_figure(result.best_confusion, result.best_trial) == figure
    assert f": trial {complete.number} " in study_status("tiny", url).splitlines()[1]
