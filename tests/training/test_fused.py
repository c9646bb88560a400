"""Fused training under JAX: a member's epochs do not depend on the group it trains in.

Runs under ``make test-backends`` (KERAS_BACKEND=jax); skipped under other backends."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sweep.models import build_model
from sweep.study import TrainingConfig

from test_diagnostics import _tiny_dataset

pytestmark = [pytest.mark.backends, pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="fused training needs KERAS_BACKEND=jax")]

# Dropout, batch normalisation and augmentation: every per-member random and running state.
CFG = {"filters": [4, 8], "kernel": 3, "pooling": "max", "padding": "same", "dropout": 0.25,
       "batch_norm": True, "dense": [8]}
AUGMENT = {"flip": "horizontal", "translate": 0.1}
POINTS = [(0, 0.05), (1, 0.02), (2, 0.1)]  # (seed, learning rate): what members differ in
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate")


def _members(points, epochs=3):
    from sweep.training.fused import Member

    data = _tiny_dataset()
    members = []
    for seed, rate in points:
        keras.utils.set_random_seed(seed)
        model = build_model(CFG, data.input_shape, data.num_classes, augment=AUGMENT,
                            seed=seed)
        config = TrainingConfig(optimizer="sgd", momentum=0.9, learning_rate=rate, batch_size=12,
                                epochs=epochs, schedule="inverse_time", decay=0.5)
        members.append(Member(model, config, seed, data))
    return members, data


def _rows(members) -> list[list[tuple]]:
    return [[tuple(r[k] for k in METRICS) for r in m.rows] for m in members]


def test_three_points_fused_train_as_they_do_one_by_one():
    from sweep.training.fused import FusedGroup

    fused, data = _members(POINTS)
    group = FusedGroup(fused)
    for _ in range(3):
        group.train_epoch()
    alone = []
    for point in POINTS:
        [member], data = _members([point])
        single = FusedGroup([member])
        for _ in range(3):
            single.train_epoch()
        alone.append((member, single.member_model(member)))
    np.testing.assert_allclose(_rows(fused), _rows([m for m, _ in alone]), rtol=2e-4,
                               atol=2e-5)
    assert len({r[-1][0] for r in _rows(fused)}) == 3  # the members did differ
    for f, (_, model) in zip(fused, alone, strict=True):  # the weights written back agree too
        for wf, wa in zip(group.member_model(f).get_weights(), model.get_weights(), strict=True):
            np.testing.assert_allclose(wf, wa, rtol=1e-3, atol=1e-5)


def test_a_member_that_leaves_after_epoch_2_leaves_the_others_unchanged():
    from sweep.training.fused import FusedGroup

    whole, data = _members(POINTS)
    group = FusedGroup(whole)
    for _ in range(3):
        group.train_epoch()
    pruned, data = _members(POINTS)
    group = FusedGroup(pruned)
    group.train_epoch()
    group.train_epoch()
    group.leave(pruned[1])
    group.train_epoch()
    assert [len(m.rows) for m in pruned] == [3, 2, 3]
    np.testing.assert_allclose(_rows([pruned[0], pruned[2]]), _rows([whole[0], whole[2]]),
                               rtol=2e-4, atol=2e-5)


def test_a_later_group_of_the_same_step_key_runs_the_programs_already_compiled():
    from sweep.training import fused_step
    from sweep.training.fused import FusedGroup

    first, _ = _members(POINTS[:2], epochs=1)
    group = FusedGroup(first, key="same step")
    group.train_epoch()
    again, _ = _members(POINTS[1:], epochs=1)
    later = FusedGroup(again, key="same step")
    later.train_epoch()
    assert later._compiled[0] is group._compiled[0]  # one jitted step, not compiled again
    np.testing.assert_allclose(_rows(again[:1]), _rows(first[1:]), rtol=2e-4, atol=2e-5)
    assert len([kind for kind in fused_step._kept if kind[0] == "same step"]) == 1
