"""The search space: grid enumeration, stored forms of values, resolving a trial's config."""

from __future__ import annotations

from sweep.study import space
from sweep.study import ChoiceParam, RangeParam


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
