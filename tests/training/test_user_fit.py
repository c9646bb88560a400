"""Training through a function in place of ``model.fit`` (a hypermodel's own fit): sweep's
batch size where the function sets none, the function's own where it does, a dataset that
batches itself, and a function that trains nothing."""

from __future__ import annotations

import math

import keras
import pytest

from sweep.errors import ConfigError
from sweep.study import TrainingConfig
from sweep.training import train

from test_diagnostics import _tiny_dataset


def _steps(fit, epochs=2) -> tuple[int, list]:
    data = _tiny_dataset()  # 64 training images
    model = keras.Sequential([keras.Input(data.input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(data.num_classes)])
    result = train(
        model,
        data,
        TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=epochs),
        fit=fit,
    )
    assert "fit" not in vars(model)  # Model.fit is the class's again
    return int(model.optimizer.iterations.numpy()), [r["epoch"] for r in result.epochs]


def test_the_function_trains_with_sweeps_batch_size_unless_it_sets_its_own():
    assert _steps(lambda model, x, y, **kw: model.fit(x, y, **kw)) == (2 * 64 // 16, [1, 2])
    assert _steps(lambda model, x, y, **kw: model.fit(x, y, batch_size=8, **kw)) == (
        2 * 64 // 8, [1, 2])


def test_a_dataset_that_batches_itself_trains_in_its_own_batches():
    import tensorflow as tf

    def fit(model, x, y, **kwargs):
        batches = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=0).batch(5)
        return model.fit(batches, **kwargs)

    assert _steps(fit, epochs=1) == (math.ceil(64 / 5), [1])


def test_a_function_that_trains_no_epoch_fails_the_trial():
    with pytest.raises(ConfigError, match="the hypermodel's fit trained no epoch"):
        _steps(lambda model, x, y, **kw: None)
