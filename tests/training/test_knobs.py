"""The knobs the seeds turned by hand, each checked by its effect: augmentation, weight decay
(L2 and AdamW's decoupled decay), label smoothing."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sweep.models import build_model
from sweep.study import TrainingConfig
from sweep.training import train

from test_diagnostics import _tiny_dataset

CFG = {"filters": [4], "kernel": 3, "pooling": "max", "padding": "valid", "dropout": 0.0,
       "batch_norm": False, "dense": [8]}


def _augmented(model, x, training):
    """The images as the first conv layer sees them: through the augmentation layers."""
    for layer in model.layers:
        if not layer.name.startswith(("crop", "flip", "translation", "rotation", "contrast")):
            break
        x = layer(x, training=training)
    return keras.ops.convert_to_numpy(x)


def test_flip_changes_training_batches_only_and_is_seeded():
    data = _tiny_dataset()
    batch = data.x_train[:16]
    model = build_model(CFG, data.input_shape, data.num_classes,
                        augment={"flip": "horizontal"}, seed=3)
    trained = _augmented(model, batch, training=True)
    assert not np.array_equal(trained, batch)
    # each image is itself or its mirror image, and some of each
    mirrored = [np.array_equal(t, b[:, ::-1]) for t, b in zip(trained, batch, strict=True)]
    assert all(m or np.array_equal(t, b) for m, t, b in zip(mirrored, trained, batch, strict=True))
    assert 0 < sum(mirrored) < len(batch)
    np.testing.assert_array_equal(_augmented(model, batch, training=False), batch)
    # evaluation (and so the snapshot diagnostics) sees the raw images
    plain = build_model(CFG, data.input_shape, data.num_classes)
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict_on_batch(batch), plain.predict_on_batch(batch),
                               rtol=1e-6)
    again = build_model(CFG, data.input_shape, data.num_classes,
                        augment={"flip": "horizontal"}, seed=3)
    np.testing.assert_array_equal(_augmented(again, batch, training=True), trained)


def test_crop_after_zero_padding_shifts_by_whole_pixels_with_zeros_coming_in():
    data = _tiny_dataset()
    batch = data.x_train[:16] + 0.5  # no zero pixels of its own
    model = build_model(CFG, data.input_shape, data.num_classes, augment={"crop_padding": 2},
                        seed=0)
    shifted = _augmented(model, batch, training=True)
    assert shifted.shape == batch.shape
    for image, original in zip(shifted, batch, strict=True):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.allclose(image, _shift(original, dy, dx))]
        assert found, "not a whole-pixel shift of at most 2 with zero fill"
    assert any(not np.array_equal(s, b) for s, b in zip(shifted, batch, strict=True))
    np.testing.assert_array_equal(_augmented(model, batch, training=False), batch)


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    padded = np.pad(image, ((2, 2), (2, 2), (0, 0)))
    h, w = image.shape[:2]
    return padded[2 - dy: 2 - dy + h, 2 - dx: 2 - dx + w]


def test_every_augmentation_leaves_evaluation_alone():
    data = _tiny_dataset()
    batch = data.x_train[:8]
    augment = {"flip": "horizontal_and_vertical", "translate": 0.1, "crop_padding": 1,
               "rotation": 0.05, "contrast": 0.2}
    model = build_model(CFG, data.input_shape, data.num_classes, augment=augment, seed=1)
    assert [layer.name for layer in model.layers[:5]] == [
        "crop", "flip", "translation", "rotation", "contrast"]
    assert not np.allclose(_augmented(model, batch, training=True), batch)
    np.testing.assert_allclose(_augmented(model, batch, training=False), batch, atol=1e-6)
    result = train(
        model, data, TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=1)
    )
    assert np.isfinite(result.epochs[0]["train_loss"])


def _loss(model, data) -> float:
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return float(model.evaluate(data.x_train, data.y_train, batch_size=len(data.x_train),
                                verbose=0))


def test_weight_decay_adds_the_l2_term_to_the_same_models_loss():
    data = _tiny_dataset()
    keras.utils.set_random_seed(0)
    plain = build_model(CFG, data.input_shape, data.num_classes)
    decayed = build_model(CFG, data.input_shape, data.num_classes, l2=0.01)
    decayed.set_weights(plain.get_weights())
    kernels = sum(float(np.sum(np.square(layer.kernel.numpy())))
                  for layer in decayed.layers if hasattr(layer, "kernel"))
    assert len(decayed.losses) == 3  # conv1, dense1, logits
    assert _loss(decayed, data) - _loss(plain, data) == pytest.approx(0.01 * kernels, rel=1e-4)


def test_adamw_decays_the_weights_without_a_loss_term():
    data = _tiny_dataset()
    norms = {}
    for weight_decay in (0.0, 0.5):
        keras.utils.set_random_seed(0)
        model = build_model(CFG, data.input_shape, data.num_classes)  # l2 0: AdamW decays
        train(
            model,
            data,
            TrainingConfig(
                optimizer="adamw",
                learning_rate=0.01,
                weight_decay=weight_decay,
                batch_size=16,
                epochs=2,
            ),
        )
        assert float(model.optimizer.weight_decay) == weight_decay and not model.losses
        norms[weight_decay] = sum(float(np.sum(np.square(w))) for w in model.get_weights())
    # 8 steps of w -= 0.01 * 0.5 * w on top of Adam's own: about 4% smaller, not 0%
    assert norms[0.5] < 0.99 * norms[0.0]


def test_label_smoothing_loss_is_cross_entropy_against_smoothed_targets():
    data = _tiny_dataset()
    keras.utils.set_random_seed(0)
    model = build_model(CFG, data.input_shape, data.num_classes)
    result = train(
        model,
        data,
        TrainingConfig(
            optimizer="adam", learning_rate=0.001, label_smoothing=0.2, batch_size=16, epochs=1
        ),
    )
    logits = model.predict_on_batch(data.x_val)
    log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    k = data.num_classes
    targets = np.full((len(data.y_val), k), 0.2 / k)
    targets[np.arange(len(data.y_val)), data.y_val] += 0.8
    expected = float(np.mean(-np.sum(targets * log_p, axis=1)))
    assert result.epochs[0]["val_loss"] == pytest.approx(expected, rel=1e-4)
    plain = float(np.mean(-log_p[np.arange(len(data.y_val)), data.y_val]))
    assert abs(expected - plain) > 1e-3  # the smoothing changed the number


def test_a_checkpoint_keeps_the_smoothed_loss_and_the_augmentation(tmp_path):
    from sweep.training.checkpoints import load_checkpoint, save_checkpoint
    from sweep.training.fit import SmoothedCrossentropy

    data = _tiny_dataset()
    model = build_model(CFG, data.input_shape, data.num_classes, augment={"flip": "vertical"},
                        seed=0)
    result = train(
        model,
        data,
        TrainingConfig(
            optimizer="adamw",
            learning_rate=0.01,
            weight_decay=0.1,
            label_smoothing=0.1,
            batch_size=16,
            epochs=1,
        ),
    )
    save_checkpoint(tmp_path / "point.keras", model, result.epochs)
    resumed, done = load_checkpoint(tmp_path / "point.keras")
    assert isinstance(resumed.loss, SmoothedCrossentropy) and resumed.loss.smoothing == 0.1
    assert float(resumed.optimizer.weight_decay) == pytest.approx(0.1)
    assert resumed.layers[0].name == "flip"
    more = train(
        resumed,
        data,
        TrainingConfig(optimizer="adamw", learning_rate=0.01, batch_size=16, epochs=2),
        done=done,
    )
    assert [r["epoch"] for r in more.epochs] == [1, 2]


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_computes_in_16_bits_and_keeps_float32_logits_and_metrics(precision):
    data = _tiny_dataset()
    model = build_model(CFG, data.input_shape, data.num_classes, precision=precision)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    conv = model.get_layer("conv1")
    assert (
        conv.compute_dtype == precision.removeprefix("mixed_") and conv.kernel.dtype == "float32"
    )
    assert model.layers[-1].compute_dtype == "float32"
    result = train(
        model, data, TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=2)
    )
    assert str(model.predict_on_batch(data.x_val).dtype) == "float32"
    if precision == "mixed_float16":  # Keras scales the loss so float16 gradients keep digits
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(np.isfinite(r["train_loss"]) for r in result.epochs)
    assert result.epochs[-1]["train_loss"] < result.epochs[0]["train_loss"]


def test_a_checkpoint_keeps_the_dropout_and_augmentation_draws_where_they_were(tmp_path):
    """Keras' archive rebuilds each random-number state from the seed: a resumed point would
    draw its first epoch's dropout masks and flips again."""
    from sweep.training.checkpoints import load_checkpoint, save_checkpoint

    data = _tiny_dataset()
    model = build_model(CFG | {"dropout": 0.25}, data.input_shape, data.num_classes,
                        augment={"flip": "horizontal"}, seed=0)
    result = train(model, data, TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1))
    states = [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]
    assert len(states) >= 2 and all(np.asarray(v.value)[1] > 0 for v in states)  # drawn
    save_checkpoint(tmp_path / "point.keras", model, result.epochs)
    resumed, _ = load_checkpoint(tmp_path / "point.keras")
    again = [v for v in resumed.non_trainable_variables
             if v.path.endswith("seed_generator_state")]
    for saved, loaded in zip(states, again, strict=True):
        np.testing.assert_array_equal(np.asarray(loaded.value), np.asarray(saved.value))
