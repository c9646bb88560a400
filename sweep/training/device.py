"""The accelerator a trial trains on, and how its failures read."""

from __future__ import annotations

import keras

# Training steps per call into the compiled function on an accelerator: fewer Python round
# trips per epoch keep a GPU busy with a small model at batch 32. On a CPU the step itself
# dominates and the longer trace of the multi-step loop (about a second) is not repaid.
ACCELERATOR_STEPS_PER_EXECUTION = 16


def _jax_compilable() -> tuple[type, ...]:
    """Keras' image-augmentation layers that say they cannot be XLA-compiled. That is true of
    TensorFlow (its ImageProjectiveTransform op has no XLA kernel) but not of JAX, where they
    are jax.numpy code; yet one of them turns the whole train step eager under JAX (on this
    CPU, 2 epochs of a tiny CNN behind every ``training.augment`` layer took 14.4 s eager
    against 4.3 s compiled)."""
    from keras import layers

    return (layers.RandomTranslation, layers.RandomRotation, layers.RandomZoom,
            layers.RandomCrop, layers.RandomShear, layers.RandomPerspective)


def mark_jax_compilable(model: keras.Model) -> None:
    """Under the JAX backend, let XLA compile ``model``'s steps although it has augmentation
    layers (``_jax_compilable``); a model compiled already (a checkpoint, a hypermodel's own
    compile) is switched to compiled steps. Under other backends: nothing."""
    if keras.backend.backend() != "jax":
        return
    marked = False
    for layer in _all_layers(model):
        if isinstance(layer, _jax_compilable()) and not layer.supports_jit:
            layer.supports_jit = marked = True
    if marked and getattr(model, "compiled", False):
        model.jit_compile = True


def _all_layers(layer):
    for inner in getattr(layer, "layers", ()):
        yield inner
        yield from _all_layers(inner)


def device_description() -> str:
    """The accelerator Keras trains on, in words ("cpu" when there is none)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return ", ".join(g.name for g in gpus) or "cpu"
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return backend


def out_of_memory(err: Exception) -> bool:
    """Whether a backend's exception means the accelerator ran out of memory (TensorFlow's
    ResourceExhaustedError, JAX's RESOURCE_EXHAUSTED, PyTorch's OutOfMemoryError)."""
    text = f"{type(err).__name__} {err}"
    return any(s in text for s in ("ResourceExhausted", "RESOURCE_EXHAUSTED", "OutOfMemory",
                                   "out of memory"))
