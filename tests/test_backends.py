"""The training path under the Keras backend in use (torch or JAX, CPU builds): a sweep in this
process, a ``--workers 2`` sweep, a worker SIGKILLed mid-training whose point resumes from its
checkpoint, and a model with ``training.augment`` compiled, checkpointed and trained on.

Run with ``KERAS_BACKEND=jax pytest -m backends`` (or torch; ``make test-backends`` runs both)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
import sqlalchemy as sa

from sweep.cli import main

from conftest import tiny_arrays, tiny_study, write_study

pytestmark = pytest.mark.backends

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
# as on the GPU machines lent here (make test-backends hides it: tests/without_tensorflow)
HIDDEN_TF = "without_tensorflow" in os.environ.get("PYTHONPATH", "")
# every field of training.augment: Keras' translation and rotation layers among them
AUGMENT = {"flip": "horizontal", "translate": 0.1, "crop_padding": 1, "rotation": 0.05,
           "contrast": 0.2}
CFG = {"filters": [4], "kernel": 3, "pooling": "max", "padding": "valid", "dropout": 0.0,
       "batch_norm": False, "dense": [8]}


def _sweep(*args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweep.cli", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _complete(db_url: str) -> list:
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    return [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]


def test_an_augmented_sweep_reuses_its_compiled_step_under_the_backend(tmp_path, tiny_npz,
                                                                        db_url, monkeypatch):
    import keras

    assert keras.backend.backend() == BACKEND
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, search={"sampler": "grid", "params": {
        "training.learning_rate": [0.01, 0.02]}})
    raw["training"]["augment"] = AUGMENT
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    first, second = _complete(db_url)
    assert second.user_attrs.get("reused_step")  # the first trial's model, optimizer zeroed
    prov = first.user_attrs["provenance"]
    assert prov["versions"]["backend"] == BACKEND
    assert prov["device"] == "cpu"
    if HIDDEN_TF:
        assert "tensorflow" not in sys.modules


# Keras' warnings when the probe is fed a list of one input, or a checkpoint's compiled step
# loads as eager: each would repeat on every snapshot or resume
@pytest.mark.filterwarnings("error:The structure of `inputs` doesn't match")
@pytest.mark.filterwarnings("error:Model doesn't support `jit_compile=True`")
def test_augmented_model_compiles_for_the_backend_and_trains_on_from_a_checkpoint(tmp_path):
    import keras

    from sweep.data import Dataset
    from sweep.models import build_model
    from sweep.study import TrainingConfig
    from sweep.training import train
    from sweep.training.checkpoints import load_checkpoint, save_checkpoint

    x_train, y_train, x_test, y_test = (a / np.float32(255) if a.dtype == np.uint8 else a
                                        for a in tiny_arrays())
    data = Dataset("tiny", x_train, y_train, x_train[:8], y_train[:8], x_test, y_test, 3)
    model = build_model(CFG, data.input_shape, data.num_classes, augment=AUGMENT, seed=0)
    result = train(
        model, data, TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=1)
    )
    # XLA compiles the augmented step under JAX (Keras would run it eagerly); others unchanged
    assert model.jit_compile is (BACKEND == "jax")
    save_checkpoint(tmp_path / "point.keras", model, result.epochs)
    resumed, done = load_checkpoint(tmp_path / "point.keras")
    more = train(
        resumed,
        data,
        TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=2),
        done=done,
    )
    assert resumed.jit_compile is (BACKEND == "jax")
    assert [r["epoch"] for r in more.epochs] == [1, 2]
    assert np.isfinite(more.epochs[-1]["train_loss"])
    assert [layer.name for layer in resumed.layers[:2]] == ["crop", "flip"]
    assert keras.backend.backend() == BACKEND


def test_two_worker_processes_share_a_sweep(tmp_path, tiny_npz, db_url):
    from sweep.store import open_storage
    from sweep.store.tables import CLAIMS

    raw = tiny_study(tiny_npz)  # 2 points
    raw["training"] |= {"epochs": 4, "snapshots": [4], "augment": {"flip": "horizontal"}}
    proc = _sweep("run", str(write_study(tmp_path, raw)), "--storage", db_url, "--workers",
                  "2", cwd=tmp_path)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    complete = _complete(db_url)
    assert sorted(t.params["model.pooling"] for t in complete) == ["avg", "max"]
    assert {t.user_attrs["provenance"]["versions"]["backend"] for t in complete} == {BACKEND}
    with open_storage(db_url).engine.connect() as conn:
        workers = set(conn.execute(sa.select(CLAIMS.c.worker)).scalars())
    assert len(workers) == 2 and str(proc.pid) not in {w.rsplit(":", 1)[1] for w in workers}


def test_a_sigkilled_worker_s_point_resumes_from_its_checkpoint(tmp_path, tiny_npz, db_url):
    from sweep.report import study_status
    from sweep.store import claims, epochs_frame, open_storage
    from sweep.training.checkpoints import checkpoint_file

    raw = tiny_study(tiny_npz)  # 2 points
    raw["training"] |= {"epochs": 30, "snapshots": [10, 30]}
    proc = _sweep("run", str(write_study(tmp_path, raw)), "--storage", db_url, "--workers",
                  "2", "--checkpoint-every", "0", cwd=tmp_path)
    store = open_storage(db_url)
    deadline, victim, saved = time.monotonic() + 240, None, 0
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            rows = claims.running(store.engine, store.get_study_id_from_name("tiny"))
        except KeyError:  # no worker created the study yet
            continue
        for row in rows:
            epochs_file = checkpoint_file(tmp_path / "checkpoints" / "tiny",
                                          row.point).with_suffix(".json")
            if row.trial_number is not None and epochs_file.is_file():
                saved = len(json.loads(epochs_file.read_text()))
                if 3 <= saved < 25:
                    victim = row
                    break
    assert victim is not None, "no checkpoint appeared mid-training"
    assert f"worker {victim.worker}: trial" in study_status("tiny", db_url)
    os.kill(int(victim.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert "exited with -9; its point runs again from its checkpoint" in output

    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    (dead,) = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert dead.user_attrs["died"] == "worker process exited with -9"
    (resumed,) = [t for t in _complete(db_url) if t.params == dead.params]
    assert resumed.user_attrs["resumed_from_epoch"] >= saved  # the epoch the kill found saved
    assert resumed.user_attrs["provenance"]["versions"]["backend"] == BACKEND
    epochs = epochs_frame(store, store.get_study_id_from_name("tiny"))
    assert epochs[epochs.trial_number == resumed.number].epoch.tolist() == list(range(1, 31))
