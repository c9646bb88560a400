"""Reports: the frames first (what the plots are drawn from), then the figures and the file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sweep.cli import main
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
    assert len(fig.data) == 4 * 2
    # before: the raw column names (gap, dead_train) and no axis titles
    assert [a.text for a in fig.layout.annotations] == [
        "train − validation accuracy", "ROC AUC, macro one-vs-rest",
        "dead ReLU units, train set (fraction)", "dead ReLU units, test set (fraction)"]
    assert [fig.layout[f"yaxis{i}"].title.text for i in ("", 2, 3, 4)] == [
        "accuracy difference (fraction)", "area under the ROC curve",
        "fraction of hidden dense units", "fraction of hidden dense units"]
    assert fig.layout.xaxis.title.text == "model.pooling"


def test_grouped_by_a_param_is_one_point_per_trial_at_its_last_snapshot(swept):
    # before: both snapshot epochs of each trial in one box, unsaid (2 trials showed as 4)
    frame = load_study_result("tiny", swept[2]).snapshots
    by_pooling = grouped_figure(frame, "model.pooling")
    assert [len(trace.y) for trace in by_pooling.data] == [1] * 6  # 2 values x 3 metrics
    assert by_pooling.layout.title.subtitle.text == (
        "each trial at its last snapshot (epoch 2): one point per trial")
    last = frame[frame["epoch"] == 2].set_index("model.pooling")["test_accuracy"]
    test_boxes = [t for t in by_pooling.data if t.xaxis == "x2"]
    assert {t.name: t.y[0] for t in test_boxes} == last.to_dict()
    by_epoch = grouped_figure(frame, "epoch")
    assert [len(trace.y) for trace in by_epoch.data] == [2] * 6  # 2 epochs x 3 metrics
    assert "one point per trial and epoch" in by_epoch.layout.title.subtitle.text


def test_learning_curves_name_trials_by_their_values_on_whole_epochs(swept):
    from sweep.report.curve_figures import curves_figure

    result = load_study_result("tiny", swept[2])
    fig = curves_figure(result.curves, result.params)
    pooling = dict(zip(result.trials["trial"], result.trials["model.pooling"], strict=True))
    assert {t.name for t in fig.data} == {f"pooling={pooling[n]} (trial {n})" for n in pooling}
    assert (fig.layout.xaxis.tickmode, fig.layout.xaxis.dtick) == ("linear", 1)
    assert fig.layout.xaxis.tickformat == "d" and fig.layout.yaxis.title.text.startswith(
        "accuracy")
    many = result.curves.assign(epoch=result.curves["epoch"] * 15)  # up to epoch 30
    assert curves_figure(many, result.params).layout.xaxis.dtick == 5


def test_heatmaps_name_every_class(swept):
    # before: classes 0-9 for every dataset, and plotly thinned the ticks out
    from sweep.report.figures import confusion_figure, per_class_figure

    result = load_study_result("tiny", swept[2])
    assert result.class_names == ("0", "1", "2")  # the tiny npz has no class_names array
    names = ("airplane", "automobile", "bird")
    heat = per_class_figure(result.per_class, "model.pooling", names)
    assert list(heat.data[0].x) == list(names)
    assert list(heat.layout.xaxis.tickvals) == list(heat.layout.xaxis.ticktext) == list(names)
    cells = np.asarray(heat.data[0].z, dtype=float)  # the colours span the data (was 0 to 1)
    assert (heat.data[0].zmin, heat.data[0].zmax) == (np.nanmin(cells), max(
        np.nanmax(cells), np.nanmin(cells) + 0.01))
    confusion = confusion_figure(result.best_confusion, result.best_trial, names)
    assert list(confusion.data[0].x) == list(confusion.data[0].y) == list(names)
    assert confusion.layout.yaxis.tickmode == confusion.layout.xaxis.tickmode == "array"


def test_report_command_writes_html(swept, tmp_path):
    tmp = swept[0]
    result = load_study_result("tiny", swept[2])
    out = write_report(result, report_figures(result), tmp_path / "r.html", tmp / "artifacts")
    page = out.read_text()
    assert page.count("<div id='sweep-figure-") == 7 and "sweep report: tiny" in page
    # the last snapshot's two pictures of each of the two trials (best, worst), embedded
    assert page.count("<img src='data:image/png;base64,") == 4
    # before: 4.9 MB, plotly.js as it is and the template in every figure
    assert len(page.encode()) < 2_200_000
    assert page.count('"template"') == 1 and "<script src=" not in page


def test_the_report_and_sweep_summary_give_the_answer_in_words(swept, capsys):
    tmp, _, url = swept
    page = (tmp / "reports" / "tiny.html").read_text()  # written by `sweep run`
    answer = page.split("<h2>The answer</h2><pre style='white-space:pre-wrap'>")[1].split(
        "</pre>")[0]
    assert answer.startswith("tiny: 2 complete trial(s), objective val_accuracy (maximize)")
    assert "\nmodel.pooling: no verdict, nothing measures the noise: one run per point" in answer
    assert page.index("The answer") < page.index("sweep-figure-0")
    assert main(["summary", "tiny", "--storage", url]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[:2] == answer.replace("&#x27;", "'").splitlines()[:2]
    # the answer the report worked out is kept in the study, and read while no trial changed
    from sweep.report.summary import keep_answer, results_version
    from sweep.store import StoredStudy, open_storage, open_study

    store = open_storage(url)
    stored = StoredStudy.read(store, open_study(store, "tiny"))
    keep_answer(store, stored.study_id, results_version(store, stored), ["kept"])
    assert main(["summary", "tiny", "--storage", url]) == 0
    assert capsys.readouterr().out == "kept\n"
    keep_answer(store, stored.study_id, "an older version", ["kept"])
    assert main(["summary", "tiny", "--storage", url]) == 0
    assert capsys.readouterr().out == printed  # worked out again


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

    from sweep.cli import main
    from sweep.report import study_status
    from sweep.report.figures import confusion_figure

    from conftest import tiny_study, write_study

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


def test_a_param_no_trial_has_yet_draws_no_per_class_figure(swept):
    # a conditional hp whose parent never chose it: all NaN (before: ValueError, NaN to int)
    import dataclasses

    _, _, url = swept
    result = load_study_result("tiny", url)
    unseen = dataclasses.replace(result, params=(*result.params, "hp.units"), **{
        frame: getattr(result, frame).assign(**{"hp.units": None})
        for frame in ("snapshots", "curves", "trials", "per_class")})
    titles = [f.layout.title.text for f in report_figures(unseen)]
    assert "Per-class test accuracy by model.pooling" in titles
    assert "Per-class test accuracy by hp.units" not in titles


def test_the_trials_table_prints_counts_whole_beside_a_failed_trial():
    import pandas as pd

    from sweep.report.html import _table

    trials = pd.DataFrame({
        "trial": [0, 1], "state": ["COMPLETE", "FAIL"], "value": [0.61234, None],
        "value_epoch": [5.0, None], "param_count": [122570.0, None],
        "receptive_field": [18.0, None], "fail_reason": [None, "loss became NaN at epoch 2"]})
    table = _table(trials)
    # before: 1.226e+05 and 18 as "18", None as "None", once a failed row made them floats
    assert "<td>122570</td>" in table and "e+05" not in table and "<td>18</td>" in table
    assert "None" not in table and "<td>0.6123</td>" in table
    assert "loss became NaN at epoch 2" in table


def test_status_says_a_dead_worker_is_dead_not_running(tmp_path, tiny_npz):
    # issue 25, item 6: a worker gone for 74 s was listed as running ("heartbeat 74s ago")
    import time

    from sweep.report import study_status
    from sweep.store import claims, create_study, open_storage
    from sweep.study import load_study

    from conftest import tiny_study, write_study

    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_storage(url)
    create_study(store, load_study(str(write_study(tmp_path, tiny_study(tiny_npz)))))
    study_id = store.get_study_id_from_name("tiny")
    for point, worker in (("a", "elsewhere:1"), ("b", "elsewhere:2")):
        assert claims.claim_free(store.engine, study_id, point, worker)
    past = time.time() - claims.STALE_AFTER_S - 14
    with store.engine.begin() as conn:
        conn.execute(claims.CLAIMS.update().where(claims.CLAIMS.c.point == "a")
                     .values(heartbeat=past))
    lines = study_status("tiny", url).splitlines()
    dead = [line for line in lines if "elsewhere:1" in line]
    assert dead and dead[0].startswith("dead worker elsewhere:1 (no heartbeat for 74s): its "
                                       "point runs again")
    assert "worker elsewhere:2: starting a trial" in lines
