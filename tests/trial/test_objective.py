"""The objective's value: at the last epoch run, or at its best one (``objective.at``)."""

from __future__ import annotations

import optuna

from sweep.cli import main
from sweep.report import load_study_result
from sweep.training.fit import TrainResult
from sweep.trial.ending import _objective_row

from conftest import tiny_study, write_study


def _run(values: list[float], snapshots: dict[int, float]) -> TrainResult:
    epochs = [{"epoch": e, "val_loss": v, "val_accuracy": 1 - v} for e, v in
              enumerate(values, start=1)]
    rows = {e: dict(epochs[e - 1], test_accuracy=a) for e, a in snapshots.items()}
    return TrainResult(epochs=epochs, snapshots=rows)


def test_best_picks_the_best_epochs_value_in_the_metrics_direction():
    result = _run([0.9, 0.4, 0.6, 0.4, 0.7], {2: 0.5, 4: 0.8, 5: 0.6})
    assert _objective_row(result, "val_loss", "best", "minimize")["epoch"] == 2  # earliest tie
    assert _objective_row(result, "val_accuracy", "best", "maximize")["epoch"] == 2
    assert _objective_row(result, "val_loss", "last", "minimize")["epoch"] == 5
    # test metrics exist at snapshots only: the best snapshot, or the last one
    assert _objective_row(result, "test_accuracy", "best", "maximize")["epoch"] == 4
    assert _objective_row(result, "test_accuracy", "last", "maximize")["epoch"] == 5


def test_a_study_at_best_stores_its_best_epochs_value_and_says_which(tmp_path, tiny_npz, db_url,
                                                                     monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, objective={"metric": "val_loss", "at": "best"},
                     search={"params": {"training.learning_rate": [0.3, 0.01]}})
    raw["training"] = {**raw["training"], "epochs": 4, "snapshots": [4]}
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    study = optuna.load_study(study_name="tiny", storage=db_url)
    result = load_study_result("tiny", db_url)
    for trial in study.trials:
        curve = result.curves[result.curves["trial"] == trial.number].set_index("epoch")
        best_epoch = int(curve["val_loss"].idxmin())
        assert trial.value == curve["val_loss"].min()
        assert trial.user_attrs["objective_epoch"] == best_epoch
    # learning rate 0.3 overshoots: its best epoch is not its last (else this proves nothing)
    assert any(t.user_attrs["objective_epoch"] < 4 for t in study.trials)
    assert list(result.trials["value_epoch"]) == [
        t.user_attrs["objective_epoch"] for t in sorted(study.trials, key=lambda t: t.value)]
    capsys.readouterr()
    assert main(["status", "tiny", "--storage", db_url]) == 0
    best = min(study.trials, key=lambda t: t.value)
    assert (f"best val_loss {best.value:.4f} at epoch {best.user_attrs['objective_epoch']} "
            "(its best)") in capsys.readouterr().out


def test_a_model_that_cannot_fit_in_memory_is_one_line_before_it_is_built(tmp_path, tiny_npz,
                                                                          capsys):
    # issue 33: filters [100000, 100000] ended in a 52-line ResourceExhaustedError, exit 1
    raw = tiny_study(tiny_npz, search={"sampler": "grid", "params": {
        "model.filters": [[100000, 100000], [4, 8]]}})
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", url,
                 "--checkpoint-dir", str(tmp_path / "checkpoints")]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ResourceExhausted" not in err
    line = next(line for line in err.splitlines() if "rejected before training:" in line)
    assert "parameters need about" in line and "GiB of memory" in line
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "FAIL"]
