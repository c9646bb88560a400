"""End to end through the CLI: a real SQLite file, real training on tiny data, resuming,
rejected and NaN trials, and what a stock Optuna reads back."""

from __future__ import annotations

import io
import json
import signal
import sqlite3
import subprocess
import sys
import zipfile

import numpy as np
import optuna
import pytest

from sweep.cli import main
from sweep.store import claims, open_storage
from sweep.study.space import study_points

from conftest import tiny_study, write_study

pytestmark = pytest.mark.slow


def test_stock_optuna_reads_params_values_and_epochs(swept):
    tmp, _, url = swept
    study = optuna.load_study(study_name="tiny", storage=url)
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert sorted(t.params["model.pooling"] for t in trials) == ["avg", "max"]
    for t in trials:
        assert 0.0 <= t.value <= 1.0
        assert sorted(t.intermediate_values) == [1, 2]  # val_accuracy per epoch
        assert t.intermediate_values[2] == pytest.approx(t.value)
        assert [s["epoch"] for s in t.user_attrs["snapshots"]] == [1, 2]
        assert 0.0 <= t.user_attrs["snapshots"][-1]["test_accuracy"] <= 1.0
        assert t.user_attrs["param_count"] > 0
        prov = t.user_attrs["provenance"]
        assert prov["versions"]["backend"] == "tensorflow" and prov["device"] == "cpu"
        assert prov["study"]["training"]["epochs"] == 2
        assert t.user_attrs["config"]["model"]["pooling"] == t.params["model.pooling"]


def test_trials_carry_architecture_diagnostics_and_pictures(swept):
    tmp, _, url = swept
    study = optuna.load_study(study_name="tiny", storage=url)
    store = optuna.artifacts.FileSystemArtifactStore(str(tmp / "artifacts"))
    for t in study.get_trials():
        # 12x12 input: conv 3x3 (RF 3), pool (4), conv 3x3 at jump 2 (8)
        assert t.user_attrs["receptive_field"] == 8
        assert t.user_attrs["layers"][0] == {"layer": "conv1", "output": "10x10x4",
                                             "receptive_field": 3, "params": 40}
        assert t.user_attrs["param_count"] == 947
        for epoch in ("1", "2"):
            d = t.user_attrs["diagnostics"][epoch]
            assert np.array(d["confusion"]).shape == (3, 3)
            assert np.array(d["confusion"]).sum() == 24  # every test image once
            assert d["dead_units"]["dense1"]["units"] == 8
        assert 0.0 <= t.user_attrs["snapshots"][-1]["roc_auc"] <= 1.0
        assert t.user_attrs["overfitting"]["best_epoch"] in (1, 2)
        names = sorted(
            m.filename for m in optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        )
        assert names == ["filters-epoch1.png", "filters-epoch2.png", "pca-epoch1.png",
                         "pca-epoch2.png"]
        meta = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)[0]
        with store.open_reader(meta.artifact_id) as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_max_params_rejects_big_models_before_training(tmp_path, tiny_npz, db_url,
                                                       monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, search={"params": {"model.dense": [[8], [64]]}},
                     constraints={"max_params": 2000})
    path = write_study(tmp_path, raw)
    assert main(["describe", str(path)]) == 0
    out = capsys.readouterr().out
    assert "total 947 parameters" in out and "total 5,203 parameters" in out
    assert "REJECTED: over max_params 2,000: rejected before training" in out
    assert main(["run", str(path), "--storage", db_url]) == 0
    trials = {str(t.params["model.dense"]): t for t in optuna.load_study(
        study_name="tiny", storage=db_url).trials}
    assert trials["[8]"].state == optuna.trial.TrialState.COMPLETE
    big = trials["[64]"]
    assert big.state == optuna.trial.TrialState.FAIL
    assert big.user_attrs["fail_reason"] == "5,203 parameters, over the study's max_params 2,000"
    assert big.intermediate_values == {}  # not one epoch was trained


def test_a_trial_stores_its_attributes_in_two_writes(tmp_path, tiny_npz, monkeypatch):
    # before: a commit per attribute, about twelve a trial (80-100 ms on PostgreSQL)
    import sqlalchemy as sa

    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, tiny_study(tiny_npz, search={"params": {}}))
    writes = []

    def count(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO trial_user_attributes"):
            writes.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        assert main(["run", str(path), "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 0
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    assert len(writes) == 2  # when training starts, and when the trial ends
    trial, = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 's.db'}").trials
    assert {"config", "seed", "provenance", "layers", "receptive_field", "param_count",
            "train_seconds", "snapshots", "overfitting", "diagnostics",
            "objective_epoch"} <= set(trial.user_attrs)


def test_every_epoch_is_a_row_of_sql(swept):
    tmp, _, _ = swept
    with sqlite3.connect(tmp / "sweeps.db") as conn:
        rows = conn.execute(
            "SELECT trial_number, epoch, train_accuracy, val_loss, test_loss, seconds "
            "FROM sweep_epochs JOIN studies USING (study_id) WHERE study_name = 'tiny' "
            "ORDER BY trial_number, epoch"
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert all(r[2] is not None and r[3] is not None and r[4] is not None and r[5] > 0
               for r in rows)


def test_run_writes_a_self_contained_report(swept):
    tmp, _, _ = swept
    page = (tmp / "reports" / "tiny.html").read_text()
    assert "Grouped by model.pooling" in page and "Grouped by epoch" in page
    assert "Learning curves" in page and "<table" in page
    assert "<script src=" not in page  # plotly.js inlined: readable offline


def test_running_again_resumes_without_retraining(swept, capsys):
    tmp, study, url = swept
    assert main(["run", str(study), "--storage", url]) == 0
    assert "0 run now (0 failed), 2 already done" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == 2


def test_status_and_export(swept, capsys, tmp_path):
    _, study, url = swept
    assert main(["status", str(study), "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "2 planned; 2 complete" in out and "best val_accuracy" in out
    for fmt in ("csv", "parquet"):
        path = tmp_path / f"tiny.{fmt}"
        assert main(["export", "tiny", "--storage", url, "--format", fmt, "--out", str(path)]) == 0
        import pandas as pd

        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        assert len(frame) == 4  # 2 trials x 2 snapshot epochs
        assert {"trial", "model.pooling", "epoch", "train_accuracy", "test_accuracy",
                "test_loss"} <= set(frame.columns)


@pytest.mark.parametrize("change,message", [
    ("model.kernel=2", "model.kernel: study 'tiny' in"),
    ("dataset.validation_split=0.5", "search.params.dataset.validation_split: [0.25, 0.5]"),
    ("objective.metric=val_loss", "objective.direction: study 'tiny' in"),
    ("training.epochs=1 training.snapshots=[1]", "fewer epochs are not the trials done"),
])
def test_a_change_of_what_a_trial_means_is_refused_and_nothing_written(swept, capsys, change,
                                                                        message):
    _, study, url = swept
    sets = [arg for item in change.split(" ") for arg in ("--set", item)]
    assert main(["run", str(study), "--storage", url, *sets]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "new name" in err
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == 2


def test_unbuildable_point_is_rejected_and_the_sweep_goes_on(tmp_path, tiny_npz, db_url,
                                                            monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, search={"params": {"model.kernel": [3, 13]}})
    path = write_study(tmp_path, raw)
    assert main(["run", str(path), "--storage", db_url]) == 0
    trials = {t.params["model.kernel"]: t for t in optuna.load_study(
        study_name="tiny", storage=db_url).trials}
    assert trials[3].state == optuna.trial.TrialState.COMPLETE
    assert trials[13].state == optuna.trial.TrialState.FAIL
    assert "13x13 kernel but meets a 12x12 feature map" in trials[13].user_attrs["fail_reason"]
    assert trials[13].number == 0  # rejected before the trainable point started
    printed = capsys.readouterr()
    assert "1 rejected before training, 1 to train" in printed.err
    assert ("trial 0 kernel=13 rejected before training: conv layer 1 has a 13x13 kernel "
            "but meets a 12x12 feature map (padding: valid); padding: same would keep it"
            ) in printed.err
    assert "1 run now (0 failed), 1 rejected before training, 0 already done" in printed.out
    assert main(["run", str(path), "--storage", db_url]) == 0
    assert "0 run now (0 failed), 2 already done" in capsys.readouterr().out
    # grown by another impossible point: rejected here, and no worker starts for it
    raw["search"]["params"]["model.kernel"].append(15)
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url,
                 "--workers", "2"]) == 0
    printed = capsys.readouterr()
    assert "kernel=15 rejected before training" in printed.err
    assert "workers on" not in printed.err  # the header names workers only where they start
    (last,) = optuna.load_study(study_name="tiny", storage=db_url).trials[2:]
    assert last.state == optuna.trial.TrialState.FAIL and "15x15" in last.user_attrs[
        "fail_reason"]


def test_nan_loss_fails_the_trial_with_its_reason(tmp_path, tiny_npz, db_url, monkeypatch,
                                                  capsys):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz)
    raw["training"] = {**raw["training"], "optimizer": "sgd"}
    raw["search"] = {"params": {"training.learning_rate": [0.01, 1.0e12]}}  # 1e12 diverges
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    trials = {t.params["training.learning_rate"]: t
              for t in optuna.load_study(study_name="tiny", storage=db_url).trials}
    assert trials[0.01].state == optuna.trial.TrialState.COMPLETE
    assert trials[1e12].state == optuna.trial.TrialState.FAIL
    assert trials[1e12].user_attrs["fail_reason"] == "loss became NaN at epoch 1"
    assert "1 failed" in capsys.readouterr().out


def test_random_sampler_runs_n_trials_and_resumes_to_more(tmp_path, tiny_npz, db_url,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, search={
        "sampler": "random", "n_trials": 2,
        "params": {"training.learning_rate": {"low": 1.0e-3, "high": 1.0e-1, "log": True}},
    })
    raw["training"] = {"epochs": 1, "batch_size": 16}
    path = write_study(tmp_path, raw)
    assert main(["run", str(path), "--storage", db_url]) == 0
    assert main(["run", str(path), "--storage", db_url, "--set", "search.n_trials=3"]) == 0
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert len(trials) == 3
    rates = [t.params["training.learning_rate"] for t in trials]
    assert len(set(rates)) == 3 and all(1e-3 <= r <= 1e-1 for r in rates)


def test_missing_data_is_one_line_and_no_study(tmp_path, db_url, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, tiny_study(tmp_path / "missing.npz"))
    assert main(["run", str(path), "--storage", db_url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset.path:" in err[0] and "missing.npz does not exist" in err[0]
    assert optuna.get_all_study_summaries(db_url) == []


def test_ctrl_c_marks_the_trial_interrupted_and_a_rerun_continues(tmp_path, tiny_npz, db_url):
    raw = tiny_study(tiny_npz)
    raw["training"] = {**raw["training"], "epochs": 400, "snapshots": [400]}
    path = write_study(tmp_path, raw)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "run", str(path), "--storage", db_url],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path,
    )
    for line in proc.stderr:  # wait until training is under way
        if "epoch 2/400" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert "interrupted; run the same command again to continue" in rest
    assert "Traceback" not in rest
    (trial,) = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["interrupted"]
    # The point was given back, so the next run trains it again (from its checkpoint).
    store = open_storage(db_url)
    assert claims.running(store.engine, store.get_study_id_from_name("tiny")) == []
    # `sweep status` counts it as interrupted, not failed (before: "1 fail")
    from sweep.report import study_status

    status = study_status("tiny", db_url, tmp_path / "checkpoints")
    assert "1 interrupted" in status and " fail" not in status.splitlines()[0]
    assert "2 planned; 1 interrupted, 1 not started" in status  # issue 34: was not counted
    assert f"interrupted: trial {trial.number}" in status and "failed:" not in status
    # issue 34: status said "runs again from its checkpoint" where none was written; it
    # says what is on disk (a first epoch, tracing included, is long enough to be saved)
    (saved,) = [len(json.loads(f.read_text()))
                for f in (tmp_path / "checkpoints" / "tiny").glob("*.json")]
    assert f"runs again from its checkpoint (after epoch {saved}) with the next" in status
    for kept in (tmp_path / "checkpoints" / "tiny").glob("*.[jk]*"):  # .json, .keras
        kept.unlink()  # as if it had stopped before a checkpoint was written
    status = study_status("tiny", db_url, tmp_path / "checkpoints")
    assert "starts over from epoch 1 with the next `sweep run` (no checkpoint was written" \
        in status
    proc = subprocess.Popen(  # and the next run says so as it starts the point again
        [sys.executable, "-m", "sweep.cli", "run", str(path), "--storage", db_url],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path)
    said = ""
    for line in proc.stderr:
        said += line
        if "epoch 1/400" in line:
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert "starts over from epoch 1 (no checkpoint was written before it stopped)" in said


@pytest.mark.parametrize("stop,workers", [(signal.SIGTERM, "2"), (signal.SIGHUP, "1")])
def test_sigterm_and_sighup_stop_a_run_as_ctrl_c_does(tmp_path, tiny_npz, db_url, stop,
                                                      workers):
    # issue 25, item 6: Slurm's preemption and time limit send SIGTERM; before, the parent
    # died at once, printing nothing, and its workers trained on
    raw = tiny_study(tiny_npz)
    raw["training"] = {**raw["training"], "epochs": 400, "snapshots": [400]}
    path = write_study(tmp_path, raw)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "run", str(path), "--storage", db_url,
         "--workers", workers, "--progress", "plain"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path)
    for line in proc.stderr:  # wait until training is under way
        if "epoch 2/400" in line:
            break
    proc.send_signal(stop)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert "interrupted; run the same command again to continue" in rest
    assert "Traceback" not in rest
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert trials and all(t.state == optuna.trial.TrialState.FAIL
                          and t.user_attrs["interrupted"] for t in trials)
    store = open_storage(db_url)
    assert claims.running(store.engine, store.get_study_id_from_name("tiny")) == []
    left = subprocess.run(["pgrep", "-f", str(path)], capture_output=True, text=True)
    assert left.stdout == ""  # no worker trains on


@pytest.mark.parametrize("damage", ["truncated", "garbage", "rows", "config", "row_items"])
def test_an_unreadable_checkpoint_is_set_aside_and_the_point_trains_from_epoch_1(
        tmp_path, tiny_npz, db_url, monkeypatch, capsys, damage):
    # issue 25, item 2: a truncated .keras ("File not found") failed its point on every run
    from sweep.models import complete_spec
    from sweep.study import load_study
    from sweep.training.checkpoints import checkpoint_file

    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, tiny_study(tiny_npz))
    spec = complete_spec(load_study(str(path)))
    assert main(["run", str(path), "--storage", db_url]) == 0  # a whole checkpoint to damage
    whole = (tmp_path / "checkpoints" / "tiny" / "trials" / "0.keras").read_bytes()
    point = next(iter(study_points(spec)))
    target = checkpoint_file(tmp_path / "checkpoints" / "tiny", point)
    if damage == "config":  # issue 33: a whole zip whose config.json is not a model's
        with zipfile.ZipFile(io.BytesIO(whole)) as src, zipfile.ZipFile(target, "w") as dst:
            for item in src.infolist():
                dst.writestr(item, b"{broken" if item.filename == "config.json"
                             else src.read(item))
    else:
        target.write_bytes({"truncated": whole[: len(whole) // 2], "garbage": b"\0" * 999,
                            "rows": whole, "row_items": whole}[damage])
    target.with_suffix(".json").write_text({"rows": "[{", "row_items": '[{"epoch":1},"x",3]'
                                            }.get(damage, "[]"))
    store = open_storage(db_url)
    with store.engine.begin() as conn:  # the point not done: as after a crash
        conn.execute(claims.CLAIMS.delete().where(claims.CLAIMS.c.point == point))
    capsys.readouterr()
    assert main(["run", str(path), "--storage", db_url]) == 0
    err = capsys.readouterr().err
    assert f"its checkpoint checkpoints/tiny/{target.name} cannot be read (" in err
    assert "set aside as" in err and "the point trains from epoch 1" in err
    assert (target.parent / f"{target.name}.unreadable").is_file() and not target.exists()
    last = optuna.load_study(study_name="tiny", storage=db_url).trials[-1]
    assert last.state == optuna.trial.TrialState.COMPLETE
    assert sorted(last.intermediate_values) == [1, 2]  # both epochs trained now


def test_out_of_gpu_memory_fails_the_trial_and_the_sweep_goes_on(
    tmp_path, tiny_npz, db_url, monkeypatch, capsys
):
    # No GPU here: the backend's out-of-memory error is raised in place of training.
    import tensorflow as tf

    import sweep.trial.objective

    real_train = sweep.trial.objective.train

    def train_or_oom(model, data, config, **kwargs):
        if config.batch_size == 16:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return real_train(model, data, config, **kwargs)

    monkeypatch.setattr(sweep.trial.objective, "train", train_or_oom)
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, search={"params": {"training.batch_size": [16, 8]}})
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    trials = {t.params["training.batch_size"]: t
              for t in optuna.load_study(study_name="tiny", storage=db_url).trials}
    assert trials[16].user_attrs["fail_reason"].startswith("out of GPU memory: OOM when")
    assert trials[8].state == optuna.trial.TrialState.COMPLETE


def test_multi_objective_study_finds_the_pareto_front(tmp_path, tiny_npz, db_url, monkeypatch,
                                                      capsys):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, search={"params": {"model.dense": [[8], [64], [96]]}},
                     objective={"metric": ["val_accuracy", "param_count"]})
    path = write_study(tmp_path, raw)
    assert main(["run", str(path), "--storage", db_url]) == 0
    out = capsys.readouterr().out
    assert "on the Pareto front of val_accuracy vs param_count" in out
    study = optuna.load_study(study_name="tiny", storage=db_url)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    trials = study.get_trials()
    assert all(len(t.values) == 2 and t.values[1] == t.user_attrs["param_count"] for t in trials)
    front = {t.number for t in study.best_trials}
    smallest = min(trials, key=lambda t: t.values[1])
    assert smallest.number in front  # nothing has fewer parameters, so nothing dominates it

    from sweep.report import load_study_result, report_figures

    result = load_study_result("tiny", db_url)
    assert set(result.pareto.loc[result.pareto["on_front"], "trial"]) == front
    assert result.trials["on_front"].iloc[: len(front)].all()  # the front is listed first
    titles = [f.layout.title.text for f in report_figures(result)]
    assert "Pareto front: val_accuracy vs param_count" in titles
    assert main(["status", str(path), "--storage", db_url]) == 0
    assert f"Pareto front of val_accuracy vs param_count: trials {sorted(front)}" in (
        capsys.readouterr().out)


def test_an_axis_mixing_null_and_lists_trains_each_value(tmp_path, tiny_npz, db_url,
                                                          monkeypatch):
    # before: `pool_after: [null, [1]]` decoded [1] as the string "[1]": TypeError in every run
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, search={"params": {"model.pool_after": [None, [1]]}})
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert [t.user_attrs["config"]["model"]["pool_after"] for t in trials] == [None, [1]]
