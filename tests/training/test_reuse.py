"""A compiled training step kept for the next trial changes no result (sweep.training.reuse)."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from sweep.store import epochs_frame, open_storage

from conftest import tiny_study, write_study

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


def _key(training, model_cfg=None):
    import numpy as np

    from sweep.data import Dataset
    from sweep.training.reuse import step_key

    images, labels = np.zeros((2, 8, 8, 1), "float32"), np.zeros(2, "int32")
    data = Dataset("digits", images, labels, images, labels, images, labels, num_classes=10)
    return step_key(model_cfg or {"filters": [4]}, training, data)


# A value other than the default for every training field
OTHER = {"optimizer": "sgd", "learning_rate": 0.5, "momentum": 0.9, "schedule": "cosine",
         "decay": 0.1, "batch_size": 8, "epochs": 3, "stop_at_loss": 0.1, "snapshots": (1, 3),
         "tensorboard": True, "weight_decay": 0.01, "label_smoothing": 0.1,
         "augment": {"flip": "horizontal"}, "precision": "mixed_bfloat16"}


def test_every_training_field_but_the_allowed_ones_keeps_points_apart():
    from dataclasses import fields, replace

    from sweep.study import TrainingConfig
    from sweep.training.reuse import MAY_DIFFER

    base = TrainingConfig()
    assert set(OTHER) == {f.name for f in fields(TrainingConfig)}, "a field without a value"
    for name, value in OTHER.items():
        same = _key(replace(base, **{name: value})) == _key(base)
        assert same is (name in MAY_DIFFER), name
    assert _key(base, {"filters": [8]}) != _key(base)
    assert _key(replace(base, precision="mixed_float16")) is None  # loss scaling: never kept


def test_a_field_added_later_is_not_reusable_until_allowed():
    from dataclasses import field, make_dataclass

    from sweep.study import TrainingConfig

    grown = make_dataclass("Grown", [("new_knob", float, field(default=0.0))],
                           bases=(TrainingConfig,), frozen=True)
    assert _key(grown(new_knob=0.5)) != _key(grown(new_knob=0.0))
    assert _key(grown(learning_rate=0.5)) == _key(grown(learning_rate=0.1))
