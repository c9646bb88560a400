"""Architecture analysis and Keras models: the seeds' printed parameter counts, receptive fields
checked by hand, and configurations that cannot be built."""

from __future__ import annotations

import pytest

from sweep.errors import ConfigError
from sweep.models import build_model, plan

FIRST_CIFAR10 = {"filters": [32, 64, 64], "kernel": 3, "pooling": "max", "padding": "valid",
                 "dropout": 0.0, "batch_norm": False, "dense": [64]}
# The CIFAR-100 coarse notebook: conv 8-16-32, pooling after the 2nd and 3rd, dense 500.
COARSE_CIFAR100 = {**FIRST_CIFAR10, "filters": [8, 16, 32], "pool_after": [2, 3],
                   "dense": [500], "dropout": 0.2}
# The CIFAR-10 depthwise-separable exercise (35,387 parameters; its "Model 2").
SEPARABLE = {**FIRST_CIFAR10, "block": "separable", "filters": [32, 64, 128, 32, 64, 128, 32],
             "pool_after": [3, 6], "transition": 32, "batch_norm": True, "dropout": 0.1,
             "head": "gap", "dense": [], "padding": "same"}
DENSE_BASELINE = {**FIRST_CIFAR10, "filters": [], "dense": [128]}

SEED_MODELS = [
    # config, input, classes, parameters printed in the seed
    (FIRST_CIFAR10, (32, 32, 3), 10, 122_570),
    (COARSE_CIFAR100, (32, 32, 3), 20, 592_552),
    (SEPARABLE, (32, 32, 3), 10, 35_387),
    ({**FIRST_CIFAR10, "filters": [16, 16], "dense": [128], "pool_last": True}, (28, 28, 1), 10,
     55_098),
    ({**FIRST_CIFAR10, "filters": [64, 64], "dense": [128], "pool_last": True}, (28, 28, 1), 10,
     243_786),
    (DENSE_BASELINE, (32, 32, 3), 100, 3072 * 128 + 128 + 128 * 100 + 100),
]


@pytest.mark.parametrize("cfg,shape,classes,params", SEED_MODELS)
def test_analysis_and_keras_agree_with_the_seeds_parameter_counts(cfg, shape, classes, params):
    assert plan(cfg, shape, classes).params == params
    assert build_model(cfg, shape, classes).count_params() == params


def test_first_cifar10_model_layer_table():
    rows = plan(FIRST_CIFAR10, (32, 32, 3), 10).rows()
    assert [(r["layer"], r["output"], r["receptive_field"], r["params"]) for r in rows] == [
        # receptive field by hand: r += (k - 1) * jump; pooling doubles the jump
        ("conv1", "30x30x32", 3, 896),
        ("pool1", "15x15x32", 4, 0),
        ("conv2", "13x13x64", 8, 18_496),
        ("pool2", "6x6x64", 10, 0),
        ("conv3", "4x4x64", 18, 36_928),
        ("flatten", "1024", 30, 0),  # the whole 4x4 map at jump 4: 18 + 3 * 4
        ("dense1", "64", 30, 65_600),
        ("logits", "10", 30, 650),
    ]


def test_receptive_field_of_the_separable_stack():
    layers = {layer.name: layer for layer in plan(SEPARABLE, (32, 32, 3), 10).layers}
    # three 3x3 depthwise layers at jump 1: 3, 5, 7; pooling: 8 (jump 2); 1x1 transition: 8;
    # three more 3x3 at jump 2: 12, 16, 20; pooling: 22 (jump 4); one more 3x3: 30
    expected = {"depthwise1": 3, "depthwise3": 7, "pool3": 8, "transition3": 8,
                "depthwise6": 20, "pool6": 22, "depthwise7": 30}
    assert {name: layers[name].receptive_field for name in expected} == expected
    assert layers["pool6"].shape == (8, 8, 128)  # same padding keeps 32 -> 16 -> 8
    assert layers["logits"].shape == (10,)
    # batch norm's moving mean and variance are parameters Keras counts, but not trainable
    assert plan(SEPARABLE, (32, 32, 3), 10).trainable_params == 35_387 - 2 * (
        32 + 64 + 128 + 32 + 64 + 128 + 32)


def _block(kernel_out, filters, rate):
    """One of seed 004's blocks: depthwise, pointwise, ReLU, batch norm, dropout."""
    side = kernel_out
    return [("DepthwiseConv2D", (side, side)), ("Conv2D", (side, side, filters)),
            ("ReLU", (side, side, filters)), ("BatchNormalization", (side, side, filters)),
            ("Dropout", (side, side, filters), rate)]


# Seed 004's Model 3 as its notebook adds the layers (softmax aside: sweep's loss takes logits)
SEED_004 = [
    *_block(32, 32, 0.1), *_block(30, 64, 0.1), *_block(28, 128, 0.1),
    ("MaxPooling2D", (14, 14, 128)), ("Conv2D", (14, 14, 32)),
    *_block(12, 32, 0.2), *_block(10, 64, 0.2), *_block(8, 128, 0.2),
    ("MaxPooling2D", (4, 4, 128)), ("Conv2D", (4, 4, 32)),
    *_block(2, 32, 0.25),
    ("Conv2D", (2, 2, 10)), ("GlobalAveragePooling2D", (10,)),
]


def test_the_shipped_separable_study_is_seed_004s_network_layer_for_layer():
    from sweep.study import load_study

    model_cfg = load_study("separable_under_100k").config["model"]
    model = build_model(model_cfg, (32, 32, 3), 10)
    built = []
    for layer, seed in zip(model.layers, SEED_004, strict=True):
        shape = tuple(layer.output.shape[1:])[:len(seed[1])]  # a depthwise output: side only
        built.append((type(layer).__name__, shape) + ((layer.rate,) if len(seed) > 2 else ()))
    assert built == SEED_004 and len(model.layers) == len(SEED_004)
    assert model.count_params() == 35_387
    rows = {r["layer"]: r for r in plan(model_cfg, (32, 32, 3), 10).rows()}
    # the seed's output sizes; receptive fields by r += (k - 1) x jump (the seed's comments
    # also grow it at 1x1 convolutions: 42, 50, 54 where these say 30, 30, 34)
    assert [rows[f"depthwise{i}"]["output"].split("x")[0] for i in range(1, 8)] == [
        "32", "30", "28", "12", "10", "8", "2"]
    assert [rows[f"depthwise{i}"]["receptive_field"] for i in range(1, 8)] == [
        3, 5, 7, 12, 16, 20, 30]
    assert rows["logits"]["receptive_field"] == 34


def test_a_per_block_list_must_name_every_block():
    with pytest.raises(ConfigError, match="padding lists 2 values but there are 3 conv blocks"):
        plan({**FIRST_CIFAR10, "padding": ["same", "valid"]}, (32, 32, 3), 10)


def test_keras_layers_match_the_plan_shapes():
    cfg = {**SEPARABLE, "padding": "valid"}
    model = build_model(cfg, (32, 32, 3), 10)
    for spec in plan(cfg, (32, 32, 3), 10).layers:
        assert tuple(model.get_layer(spec.name).output.shape[1:]) == spec.shape, spec.name


def test_batch_norm_and_dropout_layers_are_added():
    cfg = {**FIRST_CIFAR10, "batch_norm": True, "dropout": 0.25}
    names = [type(layer).__name__ for layer in build_model(cfg, (32, 32, 3), 10).layers]
    assert names.count("BatchNormalization") == 3
    assert names.count("Dropout") == 4  # after each conv block and the dense layer


def test_same_padding_keeps_maps_and_no_pooling_keeps_size():
    cfg = {**FIRST_CIFAR10, "padding": "same", "pooling": "none"}
    assert plan(cfg, (32, 32, 3), 10).layers[2].shape == (32, 32, 64)


def test_kernel_wider_than_feature_map_is_rejected_with_reason():
    with pytest.raises(ConfigError, match="conv layer 3 has a 7x7 kernel but meets a 3x3.*"
                                          "padding: same would keep it"):
        plan({**FIRST_CIFAR10, "kernel": 7}, (32, 32, 3), 10)
    # and it would: the same model with padding same plans
    plan({**FIRST_CIFAR10, "kernel": 7, "padding": "same"}, (32, 32, 3), 10)


def test_pooling_a_one_pixel_map_is_rejected():
    cfg = {**FIRST_CIFAR10, "filters": [8, 8, 8, 8], "padding": "same"}
    with pytest.raises(ConfigError, match="pooling after conv layer 3 meets a 1x1 feature map"):
        plan(cfg, (4, 4, 1), 10)


@pytest.mark.parametrize("cfg,message", [
    ({**FIRST_CIFAR10, "pool_after": [4]}, "pool_after names conv block 4 but there are 3"),
    ({**FIRST_CIFAR10, "head": "gap"}, "head gap has no dense layers"),
    ({**DENSE_BASELINE, "head": "gap", "dense": []}, "needs at least one conv block"),
])
def test_impossible_families_are_rejected(cfg, message):
    with pytest.raises(ConfigError, match=message):
        plan(cfg, (32, 32, 3), 10)
