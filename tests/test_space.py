"""The search space: grid enumeration, list-valued choices, resolving a trial's config."""

from __future__ import annotations

import optuna

from sweep import space
from sweep.space import ChoiceParam, RangeParam


def test_grid_points_cover_the_product_in_order():
    params = (ChoiceParam("model.pooling", ("max", "avg")), ChoiceParam("model.kernel", (3, 5, 7)))
    points = space.grid_points(params)
    assert len(points) == 6
    assert points[0] == {"model.pooling": "max", "model.kernel": 3}
    assert points[-1] == {"model.pooling": "avg", "model.kernel": 7}
    assert len({space.point_key(p) for p in points}) == 6


def test_no_params_is_one_point():
    assert space.grid_points(()) == [{}]


def test_list_values_round_trip_through_optuna():
    param = ChoiceParam("model.filters", ([16, 16], [32, 32]))
    trial = optuna.trial.FixedTrial({"model.filters": "[32, 32]"})
    assert param.suggest(trial) == [32, 32]
    assert space.to_optuna((param,), {"model.filters": [16, 16]}) == {"model.filters": "[16, 16]"}


def test_ranges_suggest_within_bounds():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    lr = RangeParam("training.learning_rate", 1e-4, 1e-2, log=True)
    batch = RangeParam("training.batch_size", 8, 64, step=8, integer=True)
    for _ in range(20):
        values = space.suggest(study.ask(), (lr, batch))
        assert 1e-4 <= values["training.learning_rate"] <= 1e-2
        assert values["training.batch_size"] % 8 == 0 and 8 <= values["training.batch_size"] <= 64


def test_resolve_sets_dotted_values_without_touching_the_study():
    config = {"model": {"kernel": 3, "pooling": "max"}, "training": {"epochs": 2}}
    resolved = space.resolve(config, {"model.kernel": 5, "seed": 7})
    assert resolved == {"model": {"kernel": 5, "pooling": "max"}, "training": {"epochs": 2},
                        "seed": 7}
    assert config["model"]["kernel"] == 3
