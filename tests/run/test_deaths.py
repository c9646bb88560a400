"""Workers that die again and again (issue 33, item 4), each tried with real ``sweep run``
processes: a point whose workers die after an epoch but before a checkpoint, a worker that
exits 0 with points left to train, and the model's code calling ``sys.exit``. Each stops the
run in one line and leaves no trial running, no claim held."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import optuna
import pytest

from sweep.store import claims, open_storage
from sweep.store.epochs import epochs_frame

from conftest import tiny_study, write_study

pytestmark = pytest.mark.slow

# A hypermodel whose fit ends the process when it is really called to train (sweep probes
# fit with epochs=1 while collecting its hps; the study trains 3).
EXITING_FIT = '''
import os
import re
import sys

import keras
import keras_tuner


class Exiting(keras_tuner.HyperModel):
    def build(self, hp):
        return keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(10)])

    def fit(self, hp, model, x, y, **kwargs):
        if kwargs["epochs"] > 1:
            EXIT
        return model.fit(x, y, **kwargs)
'''


def _sweep(*args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweep.cli", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _exiting_study(tmp_path, name: str, exit_call: str):
    """A 2-point study on digits whose hypermodel's fit runs ``exit_call`` as it trains."""
    (tmp_path / "hypermodel.py").write_text(EXITING_FIT.replace("EXIT", exit_call))
    raw = tiny_study(None, name=name, model={"hypermodel": "hypermodel.py:Exiting"},
                     dataset={"name": "digits", "max_train": 256, "validation_split": 0.25},
                     search={"sampler": "grid",
                             "params": {"training.learning_rate": [0.01, 0.1]}})
    raw["training"] = {"learning_rate": 0.01, "epochs": 3}
    return write_study(tmp_path, raw)


def _resumed_from(store, study_id: int, number: int) -> int:
    """The epoch trial ``number`` resumed after (0: none, or not said yet)."""
    trial = store.get_trial(store.get_trial_id_from_study_id_trial_number(study_id, number))
    return trial.user_attrs.get("resumed_from_epoch", 0)


def _nothing_held(url: str, name: str) -> None:
    """No trial of study ``name`` left RUNNING, no claim left running."""
    store = open_storage(url)
    study_id = store.get_study_id_from_name(name)
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert trials and all(t.state != optuna.trial.TrialState.RUNNING for t in trials)
    assert claims.running(store.engine, study_id) == []


def test_a_point_whose_workers_die_three_times_stops_the_run(tmp_path, tiny_npz, db_url):
    # Each death comes after an epoch of its own (the rule for deaths before one would stop
    # the run too), and may follow a checkpoint: without a bound, workers are replaced
    # for ever, each gaining an epoch or none.
    raw = tiny_study(tiny_npz)
    raw["training"] |= {"epochs": 3000, "snapshots": [3000]}
    study = write_study(tmp_path, raw)
    proc = _sweep("run", str(study), "--storage", db_url, "--workers", "2", cwd=tmp_path)
    store, killed, victim = open_storage(db_url), set(), None
    deadline = time.monotonic() + 400
    while len(killed) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            study_id = store.get_study_id_from_name("tiny")
        except KeyError:
            continue
        epochs = epochs_frame(store, study_id)
        for row in claims.running(store.engine, study_id):
            if row.trial_number is None or row.trial_number in killed:
                continue
            victim = victim or row.point  # the first point that ran is killed each time
            trained = epochs[epochs.trial_number == row.trial_number].epoch
            if row.point == victim and (
                    trained > _resumed_from(store, study_id, row.trial_number)).any():
                os.kill(int(row.worker.rsplit(":", 1)[1]), signal.SIGKILL)
                killed.add(row.trial_number)
    output, _ = proc.communicate(timeout=300)
    assert len(killed) == 3, output
    assert proc.returncode == 1, output
    assert re.search(r"stopping: the point pooling=(max|avg) \(trial \d+\) died 3 times in "
                     r"this run, the last after resuming from epoch \d+; the same command goes "
                     r"on from its checkpoint; the last said: \(nothing; exit code -9\)",
                     output), output
    assert "Traceback" not in output
    _nothing_held(db_url, "tiny")


def test_a_worker_exiting_0_with_points_left_is_a_death_not_a_finished_run(tmp_path,
                                                                           db_url):
    study = _exiting_study(tmp_path, "exits", "os._exit(0)")
    proc = _sweep("run", str(study), "--storage", db_url,
                  "--workers", "2", cwd=tmp_path)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output
    assert ("stopping: 3 workers in a row exited before finishing an epoch; the last said: "
            "(nothing; exit code 0)") in output
    _nothing_held(db_url, "exits")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sys_exit_in_the_models_code_stops_the_run_in_one_line(tmp_path, db_url, workers):
    study = _exiting_study(tmp_path, f"exits{workers}", "sys.exit(0)")
    proc = _sweep("run", str(study), "--storage", db_url,
                  "--workers", workers, cwd=tmp_path)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, output
    assert "the study's Python code (a hypermodel?) called sys.exit(0)" in output
    assert "Traceback" not in output and "report:" not in output
    _nothing_held(db_url, f"exits{workers}")
    interrupted = optuna.load_study(study_name=f"exits{workers}", storage=db_url).trials
    assert all(t.user_attrs.get("interrupted") for t in interrupted)  # run again next time
