"""Training settings: learning-rate schedules, momentum, stopping at a loss threshold."""

from __future__ import annotations

import math

import pytest

from sweep.models import build_model
from sweep.study import TrainingConfig
from sweep.training import learning_rate_at, train

from test_diagnostics import _tiny_dataset

CFG = {"filters": [4], "kernel": 3, "pooling": "max", "padding": "valid", "dropout": 0.0,
       "batch_norm": False, "dense": [8]}


def test_inverse_time_schedule_gives_the_seeds_printed_rates():
    # The CIFAR-10 separable notebook's LearningRateScheduler: 0.01, 0.0075815011, 0.0061050061
    rates = [learning_rate_at("inverse_time", 0.01, 0.319, e, 50) for e in range(3)]
    assert rates == pytest.approx([0.01, 0.0075815011, 0.0061050061], rel=1e-6)
    assert learning_rate_at("cosine", 0.1, 0.0, 0, 4) == 0.1
    assert learning_rate_at("cosine", 0.1, 0.0, 2, 4) == pytest.approx(0.05)
    assert learning_rate_at("constant", 0.1, 0.5, 7, 10) == 0.1


def test_schedule_sets_each_epochs_rate_and_sgd_takes_momentum():
    data = _tiny_dataset()
    model = build_model(CFG, data.input_shape, data.num_classes)
    result = train(
        model,
        data,
        TrainingConfig(
            optimizer="sgd",
            learning_rate=0.1,
            momentum=0.9,
            schedule="inverse_time",
            decay=1.0,
            batch_size=16,
            epochs=3,
        ),
    )
    assert [r["learning_rate"] for r in result.epochs] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert float(model.optimizer.momentum) == pytest.approx(0.9)
    assert all(math.isfinite(r["train_loss"]) for r in result.epochs)


def test_stop_at_loss_ends_training_and_snapshots_that_epoch():
    data = _tiny_dataset()
    model = build_model(CFG, data.input_shape, data.num_classes)
    result = train(
        model,
        data,
        TrainingConfig(
            optimizer="adam", learning_rate=0.01, batch_size=16, epochs=30, stop_at_loss=10.0
        ),
    )  # any first epoch is below this
    assert result.stopped_epoch == 1 and len(result.epochs) == 1
    assert list(result.snapshots) == [1] and "test_accuracy" in result.epochs[0]
    assert "confusion" in result.details[1]


def test_a_stop_request_ends_training_between_batches():
    data = _tiny_dataset()
    model = build_model(CFG, data.input_shape, data.num_classes)
    asked = []

    def stop_requested():
        asked.append(1)
        return len(asked) >= 2  # Ctrl-C arrives during the second batch

    with pytest.raises(KeyboardInterrupt):
        train(
            model,
            data,
            TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=5),
            stop_requested=stop_requested,
        )
    assert len(asked) == 2  # stopped after the second of the 4 batches of the first epoch


def test_a_long_epoch_is_checkpointed_at_its_end_and_a_short_one_on_the_clock(tmp_path,
                                                                             monkeypatch):
    # issue 34: epochs of ~8 s under the 15 s checkpoint interval left nothing on disk when
    # Ctrl-C came in the second epoch; now an epoch of at least EPOCH_SHARE times a write is
    # saved at its end (a stop loses at most that epoch), a shorter one every interval
    import time

    from sweep.training.checkpoints import EPOCH_SHARE, CheckpointClock, saved_epochs

    data = _tiny_dataset()
    model = build_model(CFG, data.input_shape, data.num_classes)
    clock = CheckpointClock(every_s=1000.0)
    write = clock.write_s  # not estimated before the first epoch asks
    assert write is None
    assert clock.due(10.0, model)  # 10 s against a model of a few kB: saved every epoch
    assert 0.01 <= clock.write_s < 0.02
    assert not clock.due(EPOCH_SHARE * clock.write_s * 0.9, model)
    with clock.saving():
        time.sleep(0.05)  # a slow disk: the measured write is what counts now
    assert not clock.due(0.9, model) and clock.due(EPOCH_SHARE * 0.06, model)
    assert CheckpointClock(every_s=0.0).due(0.0, model)  # the interval alone
    # through training, each epoch's length against its write decides (first epochs include
    # tracing, so the share is set here for the test): short epochs stay on the clock ...
    import sweep.training.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "EPOCH_SHARE", 10**9)
    short, every = tmp_path / "short.keras", tmp_path / "every.keras"
    config = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=2)
    train(model, data, config, checkpoint=short, checkpoint_every_s=1000.0)
    assert saved_epochs(short) == 0
    # ... and epochs long against their write are each saved at their end
    monkeypatch.setattr(checkpoints, "EPOCH_SHARE", 0)
    rows = []
    train(build_model(CFG, data.input_shape, data.num_classes), data, config, checkpoint=every,
          checkpoint_every_s=1000.0, on_epoch=lambda row: rows.append(saved_epochs(every)))
    assert rows == [1, 2]  # on disk at each epoch's end, before the console hears of it
