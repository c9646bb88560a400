"""The search space: grid enumeration, stored forms of values, resolving a trial's config."""

from __future__ import annotations

from sweep.study import ChoiceParam, space


def test_grid_points_cover_the_product_in_order():
    params = (ChoiceParam("model.pooling", ("max", "avg")), ChoiceParam("model.kernel", (3, 5, 7)))
    points = space.grid_points(params)
    assert len(points) == 6
    assert points[0] == {"model.pooling": "max", "model.kernel": 3}
    assert points[-1] == {"model.pooling": "avg", "model.kernel": 7}
    assert len({space.point_key(p) for p in points}) == 6


def test_no_params_is_one_point():
    assert space.grid_points(()) == [{}]


def test_list_values_are_stored_as_json_text():
    param = ChoiceParam("model.filters", ([16, 16], [32, 32]))
    assert space.encode((param,), {"model.filters": [16, 16]}) == {"model.filters": "[16, 16]"}
    assert param.decode("[32, 32]") == [32, 32]


def test_resolve_sets_dotted_values_without_touching_the_study():
    config = {"model": {"kernel": 3, "pooling": "max"}, "training": {"epochs": 2}}
    resolved = space.resolve(config, {"model.kernel": 5, "seed": 7})
    assert resolved == {"model": {"kernel": 5, "pooling": "max"}, "training": {"epochs": 2},
                        "seed": 7}
    assert config["model"]["kernel"] == 3


def test_point_fields_are_the_identity_fields_of_the_resolved_config():
    import copy

    config = {"model": {"kernel": 3, "pooling": "max", "filters": [16, 32], "dropout": 0.0},
              "training": {"epochs": 5, "learning_rate": 0.001, "augment": None,
                           "snapshots": [5]}}
    before = copy.deepcopy(config)
    cases = [
        {"model.kernel": 5, "model.pooling": "avg"},
        {"model.kernel": 3},  # at the study's own value
        {"model.dropout": 0.0, "training.learning_rate": 0.01},  # dropout at its default
        {"model.filters": [8, 8], "seed": 4},  # a list value, a searched seed
        {"training.augment.flip": "horizontal"},  # into a mapping left null: the long way
        {"training.augment": {"flip": "vertical"}},  # a mapping as the value: the long way
        {"training.epochs": 9},  # a run field that is an axis
        {"model.kernel": True},  # not 1: a different point
    ]
    for values in cases:
        axes = frozenset(values) | {"model.kernel"}
        points = space.PointFields(config, 0, axes)
        expected = space.identity_fields(*space.trial_config(config, values, 0), axes)
        assert points.of(values) == expected, values
        assert space.identity_of(points.of(values)) == space.identity(
            *space.trial_config(config, values, 0), axes)
    assert config == before  # read, never changed
    kernel = space.PointFields(config, 0, {"model.kernel"})
    assert space.identity_of(kernel.of({"model.kernel": True})) != space.identity_of(
        kernel.of({"model.kernel": 1}))
