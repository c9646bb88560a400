"""KerasTuner hypermodels that tune training in their own ``fit(hp, model, ...)``: its hps become
axes beside build's, a trial trains through it (its batch size and shuffling reach Keras), and
sweep's per-epoch rows, kept models and resumed checkpoints still work through it."""

from __future__ import annotations

import itertools
import math

import optuna
import pytest

from sweep.cli import main
from sweep.data import load_dataset
from sweep.errors import SpecError
from sweep.models import complete_spec
from sweep.models.hypermodel import collect
from sweep.store import epochs_frame, open_storage
from sweep.study import load_study, space
from sweep.training.checkpoints import kept_model_file, load_checkpoint

from conftest import write_study
from test_hypermodel import hyper_study, write_hypermodel

# KerasTuner's "Tune model training" guide, on digits (32x32x1, 10 classes): build tunes the
# filters, fit the batch size and whether to shuffle.
FIT_HYPERMODEL = '''
import keras
import keras_tuner
from keras import layers


class DigitsHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        return keras.Sequential([
            keras.Input((32, 32, 1)),
            layers.Conv2D(hp.Choice("filters", [4, 8]), 3, strides=4, activation="relu"),
            layers.Flatten(),
            layers.Dense(10),
        ])

    def fit(self, hp, model, x, y, **kwargs):
        return model.fit(x, y, batch_size=hp.Choice("batch_size", [16, 64]),
                         shuffle=hp.Boolean("shuffle"), **kwargs)
'''
REF = "hypermodel.py:DigitsHyperModel"


def digits_study(tmp_path, **training) -> dict:
    raw = hyper_study(tmp_path, None, REF)
    raw["dataset"] = {"name": "digits", "max_train": 256, "validation_split": 0.25}
    raw["training"] = {"learning_rate": 0.01, "epochs": 2} | training  # no batch_size: fit's
    return raw


def test_the_hps_of_fit_become_axes_beside_builds(tmp_path):
    write_hypermodel(tmp_path, FIT_HYPERMODEL.replace(
        "        return model.fit(", '''        if hp.Boolean("normalize"):
            with hp.conditional_scope("normalize", [True]):
                x = x / hp.Choice("scale", [1.0, 2.0])  # preprocessing inside fit
        return model.fit('''))
    found = collect(REF, str(tmp_path / "study.yaml"), "grid")
    assert found.params == (
        space.ChoiceParam("hp.filters", (4, 8)),
        space.ChoiceParam("hp.normalize", (False, True)),
        space.ChoiceParam("hp.batch_size", (16, 64)),
        space.ChoiceParam("hp.shuffle", (False, True)),
        # registered only when normalize is True: found by trying fit at that value too
        space.ChoiceParam("hp.scale", (1.0, 2.0), (("hp.normalize", (True,)),)),
    )
    assert found.fit_sets == {"batch_size", "shuffle"}
    assert len(space.grid_points(found.params)) == 2 * (1 + 2) * 2 * 2


def test_a_hypermodel_without_its_own_fit_adds_no_fit_axes(tmp_path):
    write_hypermodel(tmp_path, FIT_HYPERMODEL.split("    def fit")[0])
    found = collect(REF, str(tmp_path / "study.yaml"), "grid")
    assert [p.name for p in found.params] == ["hp.filters"] and found.fit_sets == frozenset()


@pytest.mark.parametrize("fit,message", [
    ("return model.fit(x, y, batch_size=hp.Choice('batch_size', [16]))",
     "it does not pass sweep's callbacks on to model.fit"),
    ("model.fit(x, y, **kwargs)\n        return model.fit(x, y, **kwargs)",
     "it calls model.fit 2 times"),
    ("return None", "it calls model.fit 0 times"),
    ("return model.fit(x, y, epochs=hp.Int('epochs', 1, 3), **kwargs)",
     "got multiple values for keyword argument 'epochs' (sweep calls it as fit(hp, model, x, "
     "y, epochs=..., initial_epoch=..."),
    ("raise ValueError('no ' + str(hp.Choice('batch_size', [16, 64])))",
     "fit(hp, model, ...) raised ValueError: no 16"),
])
def test_a_fit_sweep_cannot_train_through_is_one_line_naming_the_field(
        tmp_path, db_url, capsys, fit, message):
    write_hypermodel(tmp_path, FIT_HYPERMODEL.split("        return model.fit(")[0]
                     + f"        {fit}\n")
    path = write_study(tmp_path, digits_study(tmp_path))
    assert main(["run", str(path), "--storage", db_url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"sweep: error: {path}: model.hypermodel: ") and message in err[0]
    assert not (tmp_path / "sweeps.db").exists()


@pytest.mark.parametrize("search", [{}, {"training.batch_size": [32, 128]}])
def test_a_batch_size_set_by_fit_refuses_training_batch_size(tmp_path, search):
    # it would be ignored: the fit's own batch size wins
    write_hypermodel(tmp_path, FIT_HYPERMODEL)
    raw = digits_study(tmp_path, **({} if search else {"batch_size": 128}))
    raw["search"]["params"] = search
    with pytest.raises(SpecError, match=r"training.batch_size: not used, the fit of "
                                            r"model.hypermodel sets batch_size itself"):
        complete_spec(load_study(str(write_study(tmp_path, raw))))
    raw["training"].pop("batch_size", None)
    raw["search"]["params"] = {}
    assert len(complete_spec(load_study(str(write_study(tmp_path, raw)))).search.params) == 3


def _steps(tmp_path, trial) -> int:
    """The optimizer steps of a trial's kept model: how many batches it trained on."""
    model, _ = load_checkpoint(kept_model_file(tmp_path / "checkpoints" / "tiny", trial.number))
    return int(model.optimizer.iterations.numpy())


@pytest.mark.slow
def test_a_grid_trains_every_point_of_build_and_fit_through_the_hypermodels_fit(
        tmp_path, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_hypermodel(tmp_path, FIT_HYPERMODEL)
    raw = digits_study(tmp_path)
    path = write_study(tmp_path, raw)
    assert main(["run", str(path), "--storage", db_url]) == 0
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 8  # before: 2, build's points
    point = {t.number: (t.params["hp.filters"], t.params["hp.batch_size"],
                        t.params["hp.shuffle"]) for t in trials}
    assert sorted(point.values()) == list(itertools.product([4, 8], [16, 64], [False, True]))
    config = trials[0].user_attrs["config"]
    images = len(load_dataset(config["dataset"], trials[0].user_attrs["seed"]).x_train)
    for t in trials:  # fit's batch size reached Keras: 2 epochs of ceil(images / batch) steps
        assert _steps(tmp_path, t) == 2 * math.ceil(images / t.params["hp.batch_size"]), t.params
        assert sorted(t.intermediate_values) == [1, 2]  # reported each epoch (pruning's input)
    store = open_storage(db_url)
    epochs = epochs_frame(store, store.get_study_id_from_name("tiny"))
    assert epochs.groupby("trial_number").epoch.apply(list).tolist() == [[1, 2]] * 8
    # fit's shuffle reached Keras: the same model, seed and batch size, in another order
    loss = {point[t.number]: epochs[epochs.trial_number == t.number].train_loss.iloc[0]
            for t in trials}
    for filters, batch in itertools.product([4, 8], [16, 64]):
        assert loss[filters, batch, False] != pytest.approx(loss[filters, batch, True])

    # Growing the epochs resumes each point from its kept model's checkpoint, through fit.
    assert main(["run", str(path), "--storage", db_url, "--set", "training.epochs=4"]) == 0
    grown = optuna.load_study(study_name="tiny", storage=db_url).trials[8:]
    assert len(grown) == 8 and all(t.state.name == "COMPLETE" for t in grown)
    epochs = epochs_frame(store, store.get_study_id_from_name("tiny"))
    for t in grown:
        assert t.user_attrs["resumed_from_epoch"] == 2
        assert epochs[epochs.trial_number == t.number].epoch.tolist() == [1, 2, 3, 4]
        assert _steps(tmp_path, t) == 4 * math.ceil(images / t.params["hp.batch_size"])
