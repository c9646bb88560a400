"""One suite over every entry of every plug-in registry (sweep.study.plugins), as Optuna runs
one sampler suite over all its samplers: the words a study file may use are exactly the
registries' keys, and each entry's implementation exists and does what its entry says."""

from __future__ import annotations

import inspect

import optuna
import pytest

from sweep._lazy import resolve
from sweep.study import SCHEMA
from sweep.study.fields import REQUIRED, Bad
from sweep.study.plugins import DATASETS, OPTIMIZERS, PRUNERS, SAMPLERS
from sweep.trial.sampling import make_pruner, make_sampler

FIELDS = {("search", "sampler"): SAMPLERS, ("search", "pruner"): PRUNERS,
          ("training", "optimizer"): OPTIMIZERS, ("dataset", "name"): DATASETS}


@pytest.mark.parametrize("section, key", FIELDS, ids=lambda v: str(v))
def test_the_schema_accepts_exactly_the_registry_words(section, key):
    check, default = SCHEMA[section][key]
    registry = FIELDS[section, key]
    for word in registry:
        assert check(word) == word
    with pytest.raises(Bad, match="one of " + ", ".join(registry)):
        check("no-such-" + key)
    assert default in registry or default is REQUIRED


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_makes_an_optuna_sampler_that_runs_a_study(name):
    sampler = make_sampler(name, seed=3)
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    study = optuna.create_study(sampler=sampler)
    if SAMPLERS[name].enumerates:  # its trials come holding their point
        study.enqueue_trial({"x": 0.5})
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert 0 <= study.best_value <= 1


@pytest.mark.parametrize("name", [n for n, entry in SAMPLERS.items() if not entry.enumerates])
def test_a_drawing_sampler_repeats_its_draws_for_one_seed(name):
    draws = [optuna.create_study(sampler=make_sampler(name, seed=7)).ask().suggest_float(
        "x", 0, 1) for _ in range(2)]
    assert draws[0] == draws[1]


@pytest.mark.parametrize("name", PRUNERS)
def test_every_pruner_is_an_optuna_pruner_with_its_budget(name):
    pruner = make_pruner(name, max_epochs=9)
    assert isinstance(pruner, optuna.pruners.BasePruner)
    if PRUNERS[name].budget:
        assert pruner._max_resource == 9
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    trial.report(0.5, step=1)
    assert trial.should_prune() in (True, False)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_takes_what_its_entry_says(name):
    from sweep.study import TrainingConfig
    from sweep.training.fit import make_optimizer

    entry = OPTIMIZERS[name]
    config = TrainingConfig(optimizer=name, learning_rate=0.02, momentum=0.5, weight_decay=0.1)
    optimizer = make_optimizer(config)
    assert float(optimizer.learning_rate) == pytest.approx(0.02)
    if entry.momentum:
        assert float(optimizer.momentum) == pytest.approx(0.5)
    # decoupled decay is the optimizer's; otherwise it is an L2 term on the layers
    assert (optimizer.weight_decay is not None) is entry.decoupled_decay
    assert config.kernel_l2 == (0.0 if entry.decoupled_decay else 0.1)


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_loader_exists_and_its_source_decides_the_path(name, tmp_path):
    from sweep.errors import SpecError
    from sweep.study import validate

    loader = resolve(DATASETS[name].target)
    assert list(inspect.signature(loader).parameters) == ["cfg", "data_dir"]
    assert DATASETS[name].source in ("package", "keras", "path")
    raw = {"name": "p", "dataset": {"name": name}}
    if DATASETS[name].source == "path":
        with pytest.raises(SpecError, match="dataset.path: required"):
            validate(raw, "s.yaml")
    else:
        validate(raw, "s.yaml")
        with pytest.raises(SpecError, match="dataset.path: only"):
            validate(raw | {"dataset": {"name": name, "path": str(tmp_path)}}, "s.yaml")
