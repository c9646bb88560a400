"""The accelerator a trial trains on, and how its failures read."""

from __future__ import annotations

import keras

# Training steps per call into the compiled function on an accelerator: fewer Python round
# trips per epoch keep a GPU busy with a small model at batch 32. On a CPU the step itself
# dominates and the longer trace of the multi-step loop (about a second) is not repaid.
ACCELERATOR_STEPS_PER_EXECUTION = 16


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
