"""KerasTuner hypermodels: the space collected from build(hp), conditional hps, the errors a
study file gets, and a real sweep over a hypermodel through the CLI."""

from __future__ import annotations

import textwrap

import optuna
import pytest

from sweep.cli import main
from sweep.errors import SpecError
from sweep.models import complete_spec
from sweep.models.hypermodel import collect
from sweep.report import load_study_result
from sweep.study import load_study, space
from sweep.trial.sampling import suggest

from conftest import tiny_study, write_study

# A CNN for the tiny 12x12x1, 3-class images; "units" exists only for the dense head.
HYPERMODEL = '''
import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential([keras.Input((12, 12, 1))])
    model.add(layers.Conv2D(hp.Choice("filters", [4]), 3, activation="relu"))
    model.add(layers.Flatten())
    head = hp.Choice("head", ["linear", "dense"])
    units = hp.Int("units", 4, 8, step=4, parent_name="head", parent_values=["dense"])
    if head == "dense":
        model.add(layers.Dense(units, activation="relu"))
    model.add(layers.Dense(3))
    return model
'''


def write_hypermodel(tmp_path, source=HYPERMODEL, name="hypermodel.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def hyper_study(tmp_path, npz, ref="hypermodel.py:build_model", **search):
    raw = tiny_study(npz, model={"hypermodel": ref},
                     search=search or {"sampler": "grid", "params": {}})
    raw["training"] = {**raw["training"], "epochs": 2, "snapshots": [2]}
    return raw


def test_collects_params_and_conditions(tmp_path):
    write_hypermodel(tmp_path)
    found = collect("hypermodel.py:build_model", str(tmp_path / "study.yaml"), "grid")
    assert not found.compiled
    assert found.params == (
        space.ChoiceParam("hp.filters", (4,)),
        space.ChoiceParam("hp.head", ("linear", "dense")),
        space.ChoiceParam("hp.units", (4, 8), (("hp.head", ("dense",)),)),
    )
    assert space.grid_points(found.params) == [
        {"hp.filters": 4, "hp.head": "linear"},
        {"hp.filters": 4, "hp.head": "dense", "hp.units": 4},
        {"hp.filters": 4, "hp.head": "dense", "hp.units": 8},
    ]


def test_finds_hps_registered_only_under_another_parent_value(tmp_path):
    # KerasTuner's documented style: the child is registered only inside the ``if``.
    write_hypermodel(tmp_path, '''
        import keras

        def build(hp):
            kind = hp.Choice("kind", ["small", "big"])
            with hp.conditional_scope("kind", ["big"]):
                if kind == "big":
                    hp.Choice("width", [16, 32])
                    with hp.conditional_scope("width", [32]):
                        if hp.get("width") == 32:
                            hp.Boolean("extra")
            hp.Float("lr", 1e-4, 1e-2, sampling="log")
            return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    ''')
    found = collect("hypermodel.py:build", str(tmp_path / "s.yaml"), "tpe")
    by_name = {p.name: p for p in found.params}
    assert list(by_name) == ["hp.kind", "hp.lr", "hp.width", "hp.extra"]
    assert by_name["hp.width"].conditions == (("hp.kind", ("big",)),)
    assert by_name["hp.extra"].conditions == (("hp.kind", ("big",)), ("hp.width", (32,)))
    assert by_name["hp.lr"] == space.RangeParam("hp.lr", 1e-4, 1e-2, log=True)
    # Define-by-run: a child is asked for only when its parents allow it.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = [suggest(study.ask(), found.params) for _ in range(30)]
    for values in seen:
        assert ("hp.width" in values) == (values["hp.kind"] == "big")
        assert ("hp.extra" in values) == (values.get("hp.width") == 32)
    assert any("hp.extra" in v for v in seen) and any("hp.width" not in v for v in seen)


@pytest.mark.parametrize("ref,source,message", [
    ("nope.py:build_model", HYPERMODEL, "nope.py does not exist"),
    ("hypermodel.py:build", HYPERMODEL, "has no 'build'; defined there: build_model"),
    ("hypermodel.py:build_model", "def build_model(hp):\n    raise ValueError('bad width')\n",
     "build(hp) raised ValueError: bad width"),
    ("hypermodel.py:build_model", "def build_model(hp):\n    return hp.Int('n', 1, 3)\n",
     "returned int, expected a Keras model"),
    ("hypermodel.py:build_model",
     "import keras\ndef build_model(hp):\n    hp.Float('dropout', 0.0, 0.5)\n"
     "    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])\n",
     "hp.Float('dropout') has no step and the grid sampler needs a finite list"),
])
def test_bad_hypermodel_is_one_line_naming_the_field(tmp_path, tiny_npz, db_url, capsys,
                                                     ref, source, message):
    write_hypermodel(tmp_path, source)
    path = write_study(tmp_path, hyper_study(tmp_path, tiny_npz, ref))
    assert main(["run", str(path), "--storage", db_url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"sweep: error: {path}: model.hypermodel: ") and message in err[0]
    assert not (tmp_path / "sweeps.db").exists()


def test_other_model_fields_and_compiled_optimizer_are_refused(tmp_path, tiny_npz):
    write_hypermodel(tmp_path)
    raw = hyper_study(tmp_path, tiny_npz)
    raw["model"]["kernel"] = 3
    with pytest.raises(SpecError, match=r"model.kernel: not used with model.hypermodel"):
        load_study(str(write_study(tmp_path, raw)))
    write_hypermodel(tmp_path, HYPERMODEL.replace(
        "    return model", "    model.compile(optimizer='adam', loss='mse')\n    return model"))
    raw = hyper_study(tmp_path, tiny_npz)  # tiny_study sets training.learning_rate
    with pytest.raises(SpecError, match=r"training.learning_rate: not used, model.hypermodel "
                                        r"compiles its model"):
        complete_spec(load_study(str(write_study(tmp_path, raw))))


@pytest.mark.parametrize("training", [{"schedule": "cosine"}, {"optimizer": "sgd"},
                                      {"schedule": "inverse_time", "decay": 0.1}])
def test_a_compiled_hypermodel_refuses_the_training_fields_of_sweeps_optimizer(
        tmp_path, tiny_npz, training):
    # before: training.schedule was accepted and overwrote the model's own learning rate
    write_hypermodel(tmp_path, HYPERMODEL.replace(
        "    return model", "    model.compile(optimizer='adam', loss='mse')\n    return model"))
    raw = hyper_study(tmp_path, tiny_npz)
    raw["training"] = {k: v for k, v in raw["training"].items() if k != "learning_rate"}
    raw["training"] |= training
    field = next(iter(training))
    with pytest.raises(SpecError, match=rf"training.{field}: not used, model.hypermodel "
                                        r"compiles its model"):
        complete_spec(load_study(str(write_study(tmp_path, raw))))


@pytest.mark.slow
def test_grid_sweep_over_a_hypermodel(tmp_path, tiny_npz, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_hypermodel(tmp_path)
    path = write_study(tmp_path, hyper_study(tmp_path, tiny_npz))
    assert main(["run", str(path), "--storage", db_url]) == 0
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert [t.params for t in trials] == [
        {"hp.filters": 4, "hp.head": "linear"},
        {"hp.filters": 4, "hp.head": "dense", "hp.units": 4},
        {"hp.filters": 4, "hp.head": "dense", "hp.units": 8},
    ]
    # The model each trial trained is the one its hps describe: 4 filters of 3x3 (40
    # weights), then a 10x10x4 map into the head.
    counts = [t.user_attrs["param_count"] for t in trials]
    assert counts == [40 + 400 * 3 + 3, 40 + 400 * 4 + 4 + 4 * 3 + 3,
                      40 + 400 * 8 + 8 + 8 * 3 + 3]
    assert trials[1].user_attrs["config"]["hp"] == {"filters": 4, "head": "dense", "units": 4}
    result = load_study_result("tiny", db_url)
    assert result.params == ("hp.filters", "hp.head", "hp.units")
    assert sorted(result.snapshots["hp.head"]) == ["dense", "dense", "linear"]
    page = (tmp_path / "reports" / "tiny.html").read_text()
    assert "Grouped by hp.head" in page and "Grouped by hp.units" in page
    assert main(["run", str(path), "--storage", db_url]) == 0  # resumes: nothing to do
    assert len(optuna.load_study(study_name="tiny", storage=db_url).trials) == 3


@pytest.mark.slow
def test_tpe_sweep_suggests_conditional_hps_define_by_run(tmp_path, tiny_npz, db_url,
                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_hypermodel(tmp_path, HYPERMODEL.replace(
        'hp.Choice("filters", [4])', 'hp.Int("filters", 2, 6)'))
    raw = hyper_study(tmp_path, tiny_npz, sampler="tpe", n_trials=4, params={
        "training.learning_rate": {"low": 1.0e-3, "high": 1.0e-1, "log": True}})
    raw["training"]["epochs"] = 1
    raw["training"]["snapshots"] = [1]
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:
        assert 2 <= t.params["hp.filters"] <= 6 and "training.learning_rate" in t.params
        assert ("hp.units" in t.params) == (t.params["hp.head"] == "dense")


def test_status_counts_the_conditional_grid(tmp_path, tiny_npz, db_url):
    from sweep.models import complete_spec
    from sweep.report import study_status
    from sweep.store import create_study, open_storage

    write_hypermodel(tmp_path)
    spec = complete_spec(load_study(str(write_study(tmp_path, hyper_study(tmp_path, tiny_npz)))))
    create_study(open_storage(db_url), spec)
    assert study_status("tiny", db_url).startswith(f"study tiny in {db_url}: 3 planned")
