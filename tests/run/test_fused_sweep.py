"""Whole sweeps with ``--fuse`` under JAX: each fused member is a whole trial whose epochs do
not depend on its group, through a SIGKILL and resume, a member pruned, and growth.

Runs under ``make test-backends`` (KERAS_BACKEND=jax); skipped under other backends."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest

from sweep.cli import main
from sweep.store import epochs_frame, open_storage
from sweep.study import plugins

from conftest import tiny_study, write_study

pytestmark = [pytest.mark.backends, pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="fused training needs KERAS_BACKEND=jax")]

METRICS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate"]
TESTS = Path(__file__).resolve().parents[1]


def fused_study(epochs: int = 4, **changes) -> dict:
    """2 learning rates x 2 repeats (seeds 0, 1) of a model with dropout, batch normalisation
    and augmentation on scikit-learn's digits: ``--fuse 3`` makes a group of 3 and one of 1."""
    study = tiny_study(None, dataset={"name": "digits", "max_train": 300},
                       search={"sampler": "grid", "repeats": 2,
                               "params": {"training.learning_rate": [0.05, 0.02]}})
    study["model"] |= {"dropout": 0.25, "batch_norm": True}
    study["training"] = {"optimizer": "sgd", "momentum": 0.9, "batch_size": 32,
                         "epochs": epochs, "snapshots": [2], "augment": {"flip": "horizontal"}}
    return study | changes


def _sweep(tmp_path: Path, study: dict, *options: str, db: str = "sweeps.db") -> str:
    url = f"sqlite:///{tmp_path / db}"
    code = main(["run", str(write_study(tmp_path, study)), "--storage", url, "--workers", "1",
                 "--progress", "plain", "--checkpoint-dir", str(tmp_path / "checkpoints"),
                 "--artifact-dir", str(tmp_path / "artifacts"), *options])
    assert code == 0
    return url


def _rows(url: str, state=optuna.trial.TrialState.COMPLETE) -> dict:
    """``{(learning rate, seed): epoch rows}`` of the study's trials in ``state``."""
    store = open_storage(url)
    frame = epochs_frame(store, store.get_study_id_from_name("tiny"))
    out = {}
    for t in optuna.load_study(study_name="tiny", storage=url).get_trials(states=(state,)):
        mine = frame[frame.trial_number == t.number].sort_values("epoch")
        out[(t.params["training.learning_rate"], t.params["seed"])] = mine[METRICS].to_numpy()
    return out


def _same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=2e-4, atol=2e-5, err_msg=str(key))


@pytest.fixture(scope="module")
def fused(tmp_path_factory) -> str:
    """The study swept with ``--fuse 3``: the rows every other run is held to."""
    tmp = tmp_path_factory.mktemp("fused")
    os.chdir(tmp)
    return _sweep(tmp, fused_study(), "--fuse", "3")


def test_a_fused_sweep_gives_each_point_the_epochs_it_gets_alone(fused, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    alone = _sweep(tmp_path, fused_study(), "--fuse", "1")
    _same(_rows(fused), _rows(alone))
    trials = optuna.load_study(study_name="tiny", storage=fused).trials
    assert sorted(t.user_attrs["fused"] for t in trials) == [1, 3, 3, 3]
    assert all(len(t.user_attrs["snapshots"]) == 1 and "test_accuracy" in
               t.user_attrs["snapshots"][0] and t.user_attrs["diagnostics"]["2"]
               for t in trials)  # snapshot epoch 2 probed on the member's own model
    assert len({tuple(r[-1]) for r in _rows(fused).values()}) == 4  # the points did differ


class PruneOnePoint(optuna.pruners.BasePruner):
    """Prunes the point of learning rate 0.02, seed 0 at epoch 2 (it trains in the group of 3)."""

    def prune(self, study, trial) -> bool:
        return trial.last_step == 2 and trial.params == {"training.learning_rate": 0.02,
                                                         "seed": 0}


def test_a_member_pruned_at_epoch_2_leaves_the_others_as_they_were(fused, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the study file names a pruner it knows; what the name resolves to is this test's
    monkeypatch.setitem(plugins.PRUNERS, "median", plugins.PrunerEntry(
        f"{__name__}.PruneOnePoint"))
    url = _sweep(tmp_path, fused_study() | {"search": fused_study()["search"] | {
        "pruner": "median"}}, "--fuse", "3")
    pruned = _rows(url, optuna.trial.TrialState.PRUNED)
    assert list(pruned) == [(0.02, 0)] and len(pruned[(0.02, 0)]) == 2
    whole = _rows(fused)
    _same(_rows(url), {k: v for k, v in whole.items() if k != (0.02, 0)})
    np.testing.assert_allclose(pruned[(0.02, 0)], whole[(0.02, 0)][:2], rtol=2e-4, atol=2e-5)


def _stopped_mid_way(tmp_path: Path, sig: int) -> tuple[str, list[str], dict, int]:
    """A ``--fuse 3`` sweep of ``fused_study`` in its own process, sent ``sig`` once the
    group of 3 stored its rows of epoch 2: ``(url, command, env, exit code)``."""
    study, url = write_study(tmp_path, fused_study()), f"sqlite:///{tmp_path / 'k.db'}"
    command = [sys.executable, "-m", "sweep.cli", "run", str(study), "--storage", url,
               "--workers", "1", "--progress", "plain", "--checkpoint-every", "0"]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(
        [str(TESTS / "without_tensorflow"), str(TESTS.parent)])}
    child = subprocess.Popen([*command, "--fuse", "3"], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and child.poll() is None:
        if sum(e >= 2 for e in _stored_epochs(url).values()) >= 3:  # the group is past 2
            break
        time.sleep(0.05)
    assert child.poll() is None, "the sweep ended before it could be stopped"
    child.send_signal(sig)
    return url, command, env, child.wait(timeout=120)


def test_a_fused_worker_killed_mid_way_resumes_each_member_from_its_checkpoint(fused,
                                                                               tmp_path):
    url, command, env, _ = _stopped_mid_way(tmp_path, signal.SIGKILL)
    resumed = subprocess.run([*command, "--fuse", "2"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _same(_rows(url), _rows(fused))
    complete = optuna.load_study(study_name="tiny", storage=url).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    # killed once its rows of epoch 2 were stored, so after its checkpoints of epoch 1 at least
    assert sum(t.user_attrs.get("resumed_from_epoch", 0) >= 1 for t in complete) == 3


def test_ctrl_c_gives_every_member_back_and_the_next_run_goes_on_from_there(fused, tmp_path):
    url, command, env, code = _stopped_mid_way(tmp_path, signal.SIGINT)
    assert code == 130
    stopped = optuna.load_study(study_name="tiny", storage=url).trials
    assert len(stopped) == 3 and all(t.user_attrs.get("interrupted") for t in stopped)
    again = subprocess.run([*command, "--fuse", "3"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    _same(_rows(url), _rows(fused))


def _stored_epochs(url: str) -> dict[int, int]:
    """``{trial number: epochs stored}`` (empty before the study exists)."""
    try:
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return dict(db.execute("SELECT trial_number, max(epoch) FROM sweep_epochs "
                                   "GROUP BY trial_number").fetchall())
    except sqlite3.Error:  # not created yet, or busy
        return {}


def test_a_fused_study_grown_to_more_epochs_continues_fused(fused, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = _sweep(tmp_path, fused_study(epochs=2), "--fuse", "3")
    _sweep(tmp_path, fused_study(epochs=4), "--fuse", "3")
    _same(_rows(url), _rows(fused))
    complete = optuna.load_study(study_name="tiny", storage=url).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    continued = [t for t in complete if "continued_from_trial" in t.user_attrs]
    assert len(continued) == 4 and sorted(t.user_attrs["fused"] for t in continued) == [
        1, 3, 3, 3]
    out = tmp_path / "best.keras"
    assert main(["export", "tiny", "--storage", url, "--model", "best", "--checkpoint-dir",
                 str(tmp_path / "checkpoints"), "--out", str(out)]) == 0
    model = keras.models.load_model(out)  # a plain Keras model, its weights the member's
    assert model.predict(np.zeros((2, *model.input_shape[1:]), "float32"), verbose=0).shape \
        == (2, 10)


class _FakeGpu:
    """What ``--fuse auto`` reads of an accelerator (no GPU here: the one thing mocked)."""

    platform, device_kind = "gpu", "NVIDIA H200"

    def __init__(self, free_gib: float):
        self.free = free_gib * 2**30

    def memory_stats(self) -> dict:
        return {"bytes_limit": int(self.free) + 2**30, "bytes_in_use": 2**30}


@pytest.mark.parametrize("free_gib, size", [(100.0, 64), (0.05, 1)])
def test_fuse_auto_sizes_groups_from_the_accelerators_free_memory(free_gib, size, monkeypatch,
                                                                  capsys):
    from types import SimpleNamespace

    import jax

    from sweep.data import load_dataset
    from sweep.models import complete_spec
    from sweep.run.fused_worker import _auto_size
    from sweep.study import load_study

    monkeypatch.setattr(jax, "devices", lambda: [_FakeGpu(free_gib)])
    spec = complete_spec(load_study("quickstart"))  # digits: no download
    w = SimpleNamespace(spec=spec, dataset_for=lambda cfg, seed: load_dataset(cfg, seed))
    assert _auto_size(w, {}) == size
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith(f"[{spec.name}] --fuse auto: up to {size} "
                                                 "points per program on NVIDIA H200")


def test_a_halving_study_fuses_each_rungs_points_and_its_promotions(tmp_path, monkeypatch):
    # 3 learning rates x 2 seeds, rungs 1 and 3: the six first rungs train as two fused
    # groups of 3; the best point's two seeds (ranked on their mean) are promoted together,
    # as one fused group of 2 that continues both from epoch 1
    monkeypatch.chdir(tmp_path)
    study = fused_study(epochs=3)
    study["training"]["snapshots"] = None
    study["search"] = study["search"] | {
        "params": {"training.learning_rate": [0.05, 0.02, 0.01]},
        "schedule": {"kind": "halving", "min_epochs": 1, "factor": 3}}
    url = _sweep(tmp_path, study, "--fuse", "3")
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert sorted(t.user_attrs["fused"] for t in trials) == [2, 2, 3, 3, 3, 3, 3, 3]
    top = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(top) == 2 and len({t.params["training.learning_rate"] for t in top}) == 1
    for t in top:  # one curve from epoch 1, epochs 2 and 3 trained here, from epoch 1
        assert sorted(t.intermediate_values) == [1, 2, 3]
        assert t.user_attrs["resumed_from_epoch"] == 1 and t.user_attrs["fused"] == 2
        earlier = trials[t.user_attrs["continued_from_trial"]]
        assert earlier.intermediate_values[1] == t.intermediate_values[1]
    rested = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(rested) == 6 and all(t.user_attrs["rung"] == {"rung": 1, "of": 2, "epochs": 1}
                                    for t in rested)
