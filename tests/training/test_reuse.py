"""A compiled training step kept for the next trial changes no result (sweep.training.reuse)."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from conftest import tiny_study, write_study
from sweep.store import epochs_frame, open_storage

COLUMNS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
           "test_accuracy"]
# `sweep run` in a fresh process, keeping this many compiled steps (0: every trial its own)
RUN = ("import sys; from sweep.training import reuse; reuse.KEPT = int(sys.argv[1]); "
       "from sweep.cli import main; sys.exit(main(sys.argv[2:]))")


def _sweep(tmp_path, tiny_npz, name: str, kept: int):
    raw = tiny_study(tiny_npz, name=name, search={"params": {
        "training.learning_rate": [0.01, 0.02], "seed": [0, 1]}})
    raw["model"] |= {"dropout": 0.2}
    raw["training"] |= {"epochs": 3, "snapshots": [2, 3], "augment": {"flip": "horizontal"}}
    url = f"sqlite:///{tmp_path / name}.db"
    done = subprocess.run([sys.executable, "-c", RUN, str(kept), "run",
                           str(write_study(tmp_path, raw, f"{name}.yaml")), "--storage", url],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    store = open_storage(url)
    epochs = epochs_frame(store, store.get_study_id_from_name(name))
    return epochs.sort_values(["trial_number", "epoch"]), optuna.load_study(
        study_name=name, storage=url).trials


def test_trials_through_a_kept_step_train_as_trials_with_their_own(tmp_path, tiny_npz):
    fast, fast_trials = _sweep(tmp_path, tiny_npz, "kept", kept=2)
    plain, plain_trials = _sweep(tmp_path, tiny_npz, "own", kept=0)
    # one compiled step trained the four points; without keeping, each trial traced its own
    assert [t.user_attrs.get("reused_step", False) for t in fast_trials] == [False] + [True] * 3
    assert not any("reused_step" in t.user_attrs for t in plain_trials)
    assert len(fast) == len(plain) == 12
    for column in COLUMNS:
        assert list(fast[column]) == pytest.approx(list(plain[column]), rel=1e-5, abs=1e-6,
                                                   nan_ok=True), column
    assert [t.value for t in fast_trials] == pytest.approx([t.value for t in plain_trials])
    # the points differ, so a step that kept an earlier trial's state would show
    assert len({round(v, 6) for v in fast["train_loss"]}) > 6
