"""Study files: defaults, overrides, and one clear line for every kind of bad input."""

from __future__ import annotations

import re

import pytest

from sweep.cli import main
from sweep.defaults import STUDIES_DIR
from sweep.errors import SpecError
from sweep.models import complete_spec
from sweep.study import ChoiceParam, RangeParam, file_name, load_study, validate

from conftest import tiny_study, write_study

SHIPPED = sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_studies_validate(name):
    spec = complete_spec(load_study(name))  # a hypermodel's hp.* params come from build(hp)
    assert spec.name == name
    assert spec.description
    assert spec.search.params, "every shipped study sweeps something"


def test_a_swept_hypermodel_reference_is_a_study_error(tmp_path, tiny_npz):
    # before: `A | B - {"model.hypermodel"}` left it searchable (`-` binds first), and the
    # objective crashed with KeyError on every run
    raw = tiny_study(tiny_npz, search={"params": {"model.hypermodel": ["a.py:f", "b.py:g"]}})
    path = write_study(tmp_path, raw)
    with pytest.raises(SpecError, match=r"search.params.model.hypermodel: does not point at a "
                                        r"searchable field"):
        load_study(str(path))


def test_validating_a_study_imports_neither_keras_nor_optuna(tmp_path, tiny_npz):
    import subprocess
    import sys

    path = write_study(tmp_path, tiny_study(tiny_npz))
    code = ("import sys; from sweep.study import load_study; load_study(sys.argv[1]); "
            "print(sorted(m for m in ('keras', 'tensorflow', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_shipped_studies_include_the_issue_list():
    assert {"quickstart", "conv_width", "pooling", "filters", "dropout", "learning_rate",
            "epochs"} <= set(SHIPPED)


def test_defaults_and_direction(tmp_path, tiny_npz):
    raw = tiny_study(tiny_npz, objective={"metric": "test_loss"})
    del raw["model"]
    spec = load_study(str(write_study(tmp_path, raw)))
    assert spec.config["model"]["filters"] == [32, 64, 64]
    assert spec.config["model"]["pooling"] == "max"
    assert spec.directions == ("minimize",)
    assert spec.search.params == (ChoiceParam("model.pooling", ("max", "avg")),)


def test_overrides_are_applied_and_validated(tmp_path, tiny_npz):
    path = write_study(tmp_path, tiny_study(tiny_npz))
    spec = load_study(str(path), ["training.epochs=3", "search.params.model.kernel=[3, 5]"])
    assert spec.config["training"]["epochs"] == 3
    assert ChoiceParam("model.kernel", (3, 5)) in spec.search.params
    with pytest.raises(SpecError,
                       match=r"training\.epochs: expected an integer in \[1, 100000\], got 0"):
        load_study(str(path), ["training.epochs=0"])


def test_ranges_for_random_sampler(tmp_path, tiny_npz):
    raw = tiny_study(tiny_npz, search={
        "sampler": "random", "n_trials": 3,
        "params": {"training.learning_rate": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
                   "training.batch_size": {"low": 8, "high": 32, "step": 8}},
    })
    spec = load_study(str(write_study(tmp_path, raw)))
    lr, batch = spec.search.params
    assert lr == RangeParam("training.learning_rate", 1e-4, 1e-2, log=True)
    assert batch.integer and batch.step == 8


NOTATIONS = ["1e-3", "5E-4", "1.0e-3", ".001", "1.5e3", "2E+2"]


@pytest.mark.parametrize("text", NOTATIONS)
def test_numbers_in_every_usual_notation_are_numbers(tmp_path, text):
    # before: YAML 1.1 read 1e-3 as a string, refused as "expected a number ..., got '1e-3'"
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: notation\ndataset: {name: digits}\n"
        f"training: {{learning_rate: {text}, schedule: inverse_time, decay: {text}}}\n"
        "search: {sampler: random, n_trials: 2, params: "
        f"{{training.learning_rate: {{low: 1e-9, high: {text}, log: true}}}}}}\n")
    spec = load_study(str(path))
    assert spec.config["training"]["learning_rate"] == float(text)
    assert spec.config["training"]["decay"] == float(text)
    assert (spec.search.params[0].low, spec.search.params[0].high) == (1e-9, float(text))
    override = load_study(str(path), [f"training.decay={text}", "seed=1"])
    assert override.config["training"]["decay"] == float(text)
    with pytest.raises(SpecError, match=rf"training\.decay: expected a number in \[0, inf\], "
                                        rf"got {-float(text)!r}"):
        load_study(str(path), [f"training.decay=-{text}"])


BAD = [
    # (what to change in the tiny study, expected message fragment)
    ({"model": {"dropout": 1.5}}, r"model\.dropout: expected a number in \[0, 1\), or a list "
                                  r"of them \(one per conv block\), got 1\.5"),
    ({"model": {"padding": ["same", "full"]}},
     r"model\.padding: expected one of valid, same, or a list of them \(one per conv block\), "
     r"got \['same', 'full'\]"),
    ({"training": {"epochs": 0}},
     r"training\.epochs: expected an integer in \[1, 100000\], got 0"),
    (
        {"training": {"epochs": 5, "snapshots": [2, 9]}},
        r"training\.snapshots: snapshot at epoch 9 is past the last epoch \(5\)",
    ),
    ({"training": {"epochs": "ten"}},
     r"training\.epochs: expected an integer in \[1, 100000\], got 'ten'"),
    ({"model": {"kernal": 3}}, r"model\.kernal: unknown key; did you mean 'kernel'\?"),
    ({"trainig": {}}, r"trainig: unknown key; did you mean 'training'\?"),
    ({"search": {"params": {"model.kernel": []}}}, r"search\.params\.model\.kernel: empty list"),
    (
        {"search": {"params": {"model.kernal": [3]}}},
        r"search\.params\.model\.kernal: does not point at a searchable field.*'model\.kernel'",
    ),
    (
        {"search": {"params": {"model.dropout": [0.1, 1.5]}}},
        r"search\.params\.model\.dropout: every value must be a number in \[0, 1\)",
    ),
    ({"search": {"sampler": "bayes"}}, r"search\.sampler: expected one of grid, random, tpe"),
    (
        {"search": {"sampler": "random", "params": {"model.kernel": [3]}}},
        r"search\.n_trials: expected an integer >= 1 for the random sampler",
    ),
    (
        {"search": {"params": {"training.learning_rate": {"low": 0.1, "high": 1}}}},
        r"a range needs the random or tpe sampler",
    ),
    ({"dataset": {"name": "imagenet"}}, r"dataset\.name: expected one of digits, cifar10"),
    ({"objective": {"metric": "f1"}}, r"objective\.metric: expected one of val_accuracy"),
    ({"model": {"filters": [32, 0]}}, r"model\.filters: expected a list of integers >= 1"),
    (
        {"training": {"momentum": 0.9}},
        r"training\.momentum: applies to the sgd and rmsprop optimizers, not adam",
    ),
    ({"training": {"decay": 0.3}}, r"training\.decay: applies to schedule: inverse_time only"),
    (
        {"training": {"schedule": "step"}},
        r"training\.schedule: expected one of constant, inverse_time, cosine",
    ),
    (
        {"constraints": {"max_params": "100k"}},
        r"constraints\.max_params: expected an integer >= 1, got '100k'",
    ),
    ({"model": {"block": "inception"}}, r"model\.block: expected one of conv, separable"),
    ({"name": "has spaces"}, r"name: expected a name of at most 100 letters"),
    (
        {"training": {"augment": {"flip": "sideways"}}},
        r"training\.augment\.flip: expected one of none, horizontal, vertical, "
        r"horizontal_and_vertical, got 'sideways'",
    ),
    (
        {"training": {"augment": {"zoom": 0.1}}},
        r"training\.augment\.zoom: expected one of the keys flip, translate, crop_padding",
    ),
    ({"training": {"augment": "flip"}}, r"training\.augment: expected a mapping with keys flip"),
    (
        {"training": {"augment": {"translate": 1.5}}},
        r"training\.augment\.translate: expected a number in \[0, 1\), got 1\.5",
    ),
    (
        {"search": {"params": {"training.augment.flip": ["none", "upside"]}}},
        r"search\.params\.training\.augment\.flip: every value must be one of none",
    ),
    (
        {
            "search": {
                "params": {
                    "training.augment": [None, {"flip": "horizontal"}],
                    "training.augment.translate": [0.0, 0.1],
                }
            }
        },
        r"search\.params\.training\.augment\.translate: training\.augment is searched too",
    ),
    (
        {"training": {"label_smoothing": 1.0}},
        r"training\.label_smoothing: expected a number in \[0, 1\), got 1\.0",
    ),
    (
        {"training": {"weight_decay": -0.1}},
        r"training\.weight_decay: expected a number in \[0, inf\]",
    ),
    (
        {"training": {"optimizer": "adamw", "momentum": 0.9}},
        r"training\.momentum: applies to the sgd and rmsprop optimizers, not adamw",
    ),
    (
        {"objective": {"metric": ["val_accuracy", "param_count"], "at": "best"}},
        r"objective\.at: best needs one metric",
    ),
    (
        {"objective": {"metric": "val_accuracy", "at": "first"}},
        r"objective\.at: expected one of last, best",
    ),
    ({"name": ".."},
     r"name: expected a name of at most 100 letters, digits, '_', '-', '\.' \(not first\)"),
    ({"name": "."}, r"name: expected a name of at most 100 letters"),
    ({"name": "../x"}, r"name: expected a name of at most 100 letters"),
    ({"name": ".hidden"}, r"name: expected a name of at most 100 letters"),
    # issue 33: trained, then a 70-line "File name too long"; 10^20 epochs trained epoch 394
    ({"name": "n" * 300}, r"name: expected a name of at most 100 letters"),
    ({"training": {"epochs": 10**20}}, r"training\.epochs: expected an integer in \[1, 100000\]"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m.split(":")[0][:40] for _, m in BAD])
def test_bad_study_is_one_line_naming_file_and_field(tmp_path, tiny_npz, change, message):
    raw = tiny_study(tiny_npz)
    for key, value in change.items():
        raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) else value
    path = write_study(tmp_path, raw)
    with pytest.raises(SpecError, match=message) as info:
        load_study(str(path))
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nmodel: {filters: [32, 64\n")
    with pytest.raises(SpecError, match=r"broken\.yaml: line \d+, column \d+: invalid YAML"):
        load_study(str(path))


def test_python_object_tags_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match=r"evil\.yaml: line 1: YAML tag not allowed"):
        load_study(str(path))


def test_missing_study_lists_known_ones():
    with pytest.raises(SpecError, match=r"no_such_study: no such study file.*quickstart"):
        load_study("no_such_study")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", "no_such_study"], "no such study file"),
        (["run", "quickstart", "--set", "model.dropout=1.5"], "model.dropout: expected"),
        (["run", "quickstart", "--set", "oops"], "--set oops: expected dotted.path=value"),
        (["run", "quickstart", "--workers", "0"], "--workers and --trials-per-gpu must be at"),
        (["run", "quickstart", "--storage", "sqlite:////no/such/dir/x.db"], "cannot open"),
        (["run", "quickstart", "--storage", "nonsense://"], "cannot open"),
        # before: "must hold train/ and test/ ..." without the study file
        (["run", "quickstart", "--set", "dataset.name=folder", "--set", "dataset.path=/no/dir"],
         "studies/quickstart.yaml: dataset.path: /no/dir does not exist"),
        (["run", "quickstart", "--storage", "postgresql+psycopg://u:s3cret@127.0.0.1:1/db"],
         "cannot open"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path, monkeypatch, capsys, args, fragment
):
    monkeypatch.chdir(tmp_path)
    if "--storage" not in args:
        args = [*args, "--storage", f"sqlite:///{tmp_path / 'x.db'}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sweep: error: ") and fragment in err[0]
    assert "s3cret" not in err[0]
    assert not (tmp_path / "x.db").exists()
    assert not (tmp_path / "reports").exists()


def test_describe_names_the_study_file_of_a_missing_dataset(capsys):
    args = ["describe", "quickstart", "--set", "dataset.name=npz", "--set", "dataset.path=x.npz"]
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("sweep: error: ") and line.endswith(
        "studies/quickstart.yaml: dataset.path: x.npz does not exist (expected an .npz file)")


def test_an_augment_field_axis_fills_the_other_fields_with_their_defaults(tmp_path, tiny_npz):
    from sweep.study import resolve
    from sweep.study.space import identity

    raw = tiny_study(tiny_npz, search={"params": {"training.augment.flip": ["none", "vertical"]}})
    spec = load_study(str(write_study(tmp_path, raw)))
    assert spec.config["training"]["augment"] is None  # the default: no augmentation
    flipped = resolve(spec.config, {"training.augment.flip": "vertical"})["training"]["augment"]
    assert flipped == {"flip": "vertical", "translate": 0.0, "crop_padding": 0, "rotation": 0.0,
                       "contrast": 0.0}
    # "flip: none" trains what no augmentation trains: the same point, the same identity
    plain = resolve(spec.config, {"training.augment.flip": "none"})
    assert identity(plain, 0) == identity(spec.config, 0)
    assert identity(resolve(spec.config, {"training.augment.flip": "vertical"}), 0) != \
        identity(spec.config, 0)
    # a mapping whose every field is at its default is no augmentation
    none = tiny_study(tiny_npz, training={"epochs": 2, "augment": {"flip": "none"}})
    assert load_study(str(write_study(tmp_path, none, "none.yaml"))).config["training"][
        "augment"] is None


def test_a_hypermodel_study_refuses_augment_and_l2_weight_decay(tmp_path, tiny_npz):
    (tmp_path / "hm.py").write_text("def build(hp):\n    pass\n")
    for training, field in (({"augment": {"flip": "horizontal"}}, "training.augment"),
                            ({"weight_decay": 1e-4}, "training.weight_decay")):
        raw = tiny_study(tiny_npz, model={"hypermodel": "hm.py:build"}, training=training,
                         search={"params": {}})
        with pytest.raises(SpecError, match=rf"{field}: "):
            load_study(str(write_study(tmp_path, raw)))
    adamw = tiny_study(tiny_npz, model={"hypermodel": "hm.py:build"}, search={"params": {}},
                       training={"optimizer": "adamw", "weight_decay": 1e-4})
    assert load_study(str(write_study(tmp_path, adamw))).config["training"]["weight_decay"] \
        == 1e-4


@pytest.mark.parametrize("stored", ["../../x", "..", ".", "/tmp/abs", "my study", "a/b", ""])
def test_a_stored_name_becomes_one_safe_file_name(stored):
    # a study made with stock Optuna may be named anything; paths are built from file_name
    from sweep.study.schema import NAME

    safe = file_name(stored)
    assert re.fullmatch(NAME, safe) and "/" not in safe and safe not in (".", "..")
    assert file_name(safe) == safe
    assert file_name("conv_width-2.v1") == "conv_width-2.v1"  # a study file's name: as it is


def test_values_of_a_field_searched_fixed_or_ranged(tiny_npz):
    raw = tiny_study(tiny_npz, search={"sampler": "random", "n_trials": 2, "params": {
        "training.precision": ["float32", "mixed_bfloat16"],
        "training.learning_rate": {"low": 0.001, "high": 0.1, "log": True}}})
    spec = validate(raw, "s.yaml")
    assert spec.values_of("training.precision") == ("float32", "mixed_bfloat16")
    assert spec.values_of("training.learning_rate") == (0.001, 0.1)
    assert spec.values_of("training.batch_size") == (16,)
    assert spec.values_of("seed") == (0,)


@pytest.mark.parametrize("item, field", [
    ("training.epoch=3", "training.epoch: unknown key; did you mean 'epochs'?"),
    ("trainin.epochs=3", "trainin: unknown key; did you mean 'training'?"),
    ("training.epochs=abc", "training.epochs: expected an integer in [1, 100000], got 'abc'"),
])
def test_a_set_typo_is_blamed_on_the_set_not_the_file(tmp_path, tiny_npz, item, field):
    # before: "study.yaml: training.epoch: unknown key", as if the file had the typo
    path = write_study(tmp_path, tiny_study(tiny_npz))
    with pytest.raises(SpecError) as err:
        load_study(str(path), [item])
    assert str(err.value) == f"--set {item} (on {path}): {field}"


def test_a_files_own_mistake_is_still_the_files_beside_a_set(tmp_path, tiny_npz):
    raw = tiny_study(tiny_npz)
    raw["training"]["epoch"] = 3
    path = write_study(tmp_path, raw)
    with pytest.raises(SpecError, match=f"^{re.escape(str(path))}: training.epoch: unknown"):
        load_study(str(path), ["training.batch_size=8"])


def test_repeats_are_a_seed_axis_of_the_grid_and_refused_where_they_cannot_be(tmp_path,
                                                                            tiny_npz):
    raw = tiny_study(tiny_npz)
    raw["seed"] = 5
    raw["search"]["repeats"] = 3
    spec = validate(raw, "s.yaml")
    assert [(p.name, p.values) for p in spec.search.params][-1] == ("seed", (5, 6, 7))
    raw["search"]["params"]["seed"] = [1, 2]
    with pytest.raises(SpecError, match="search.repeats: seed is searched already"):
        validate(raw, "s.yaml")
    raw["search"] = {"sampler": "random", "n_trials": 4, "repeats": 2,
                     "params": {"model.pooling": ["max", "avg"]}}
    with pytest.raises(SpecError, match="search.repeats: needs the grid sampler"):
        validate(raw, "s.yaml")
