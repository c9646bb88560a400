"""Models: parameter counts the seeds printed, and configurations that cannot be built."""

from __future__ import annotations

import pytest

from sweep.errors import ConfigError
from sweep.models import build_model, feature_maps

FIRST_CIFAR10 = {"filters": [32, 64, 64], "kernel": 3, "pooling": "max", "padding": "valid",
                 "dropout": 0.0, "batch_norm": False, "dense": [64]}


def test_first_cifar10_model_has_the_seeds_parameter_count():
    # The CIFAR-10 notebook's first model: 122,570 parameters.
    model = build_model(FIRST_CIFAR10, (32, 32, 3), 10)
    assert model.count_params() == 122_570
    assert feature_maps(FIRST_CIFAR10, (32, 32, 3)) == [(15, 15, 32), (6, 6, 64), (4, 4, 64)]


@pytest.mark.parametrize("filters,params", [(16, 55_098), (64, 243_786)])
def test_fashion_mnist_filter_exercise_counts(filters, params):
    # The Fashion-MNIST course notes print these totals for 16 and 64 filters.
    cfg = {**FIRST_CIFAR10, "filters": [filters, filters], "dense": [128], "pool_last": True}
    assert build_model(cfg, (28, 28, 1), 10).count_params() == params


def test_batch_norm_and_dropout_layers_are_added():
    cfg = {**FIRST_CIFAR10, "batch_norm": True, "dropout": 0.25}
    names = [type(layer).__name__ for layer in build_model(cfg, (32, 32, 3), 10).layers]
    assert names.count("BatchNormalization") == 3
    assert names.count("Dropout") == 4  # after each conv block and the dense layer


def test_same_padding_keeps_maps_and_no_pooling_keeps_size():
    cfg = {**FIRST_CIFAR10, "padding": "same", "pooling": "none"}
    assert feature_maps(cfg, (32, 32, 3))[-1] == (32, 32, 64)


def test_kernel_wider_than_feature_map_is_rejected_with_reason():
    with pytest.raises(ConfigError, match="conv layer 3 has a 7x7 kernel but meets a 3x3"):
        feature_maps({**FIRST_CIFAR10, "kernel": 7}, (32, 32, 3))


def test_pooling_a_one_pixel_map_is_rejected():
    cfg = {**FIRST_CIFAR10, "filters": [8, 8, 8, 8], "padding": "same"}
    with pytest.raises(ConfigError, match="pooling after conv layer 3 meets a 1x1 feature map"):
        feature_maps(cfg, (4, 4, 1))
