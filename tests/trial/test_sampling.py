"""Asking Optuna for a point's values: list values, mixed-type axes, ranges, samplers."""

from __future__ import annotations

import optuna
import pytest

from sweep.study import ChoiceParam, RangeParam
from sweep.study.space import encode, grid_points
from sweep.trial.sampling import GridPointSampler, suggest


def test_list_values_round_trip_through_optuna():
    param = ChoiceParam("model.filters", ([16, 16], [32, 32]))
    trial = optuna.trial.FixedTrial({"model.filters": "[32, 32]"})
    assert suggest(trial, (param,)) == {"model.filters": [32, 32]}


@pytest.mark.parametrize("values", [(None, [1, 2]), ([1, 2], None), (None, [1, 2], [2]),
                                    (True, 1), ("max", ["max"])])
def test_an_axis_mixing_types_round_trips_every_value_exactly(values):
    # before: decoded by the first value's type: [null, [1, 2]] gave the string "[1, 2]",
    # and [[1, 2], null] called json.loads(None)
    param = ChoiceParam("model.pool_after", values)
    for point in grid_points((param,)):
        trial = optuna.create_study(sampler=GridPointSampler(encode((param,), point))).ask()
        got = suggest(trial, (param,))["model.pool_after"]
        assert got == point["model.pool_after"]
        assert type(got) is type(point["model.pool_after"])
        assert suggest(optuna.trial.FixedTrial(trial.params), (param,)) == point


def test_ranges_suggest_within_bounds():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    lr = RangeParam("training.learning_rate", 1e-4, 1e-2, log=True)
    batch = RangeParam("training.batch_size", 8, 64, step=8, integer=True)
    for _ in range(20):
        values = suggest(study.ask(), (lr, batch))
        assert 1e-4 <= values["training.learning_rate"] <= 1e-2
        assert values["training.batch_size"] % 8 == 0 and 8 <= values["training.batch_size"] <= 64
