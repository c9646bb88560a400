"""The accelerator a trial trains on, and how its failures read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras loads when asked (describe's precision warnings need none)
    import keras

# Training steps per call into the compiled function on an accelerator: fewer Python round
# trips per epoch keep a GPU busy with a small model at batch 32. On a CPU the step itself
# dominates and the longer trace of the multi-step loop (about a second) is not repaid.
ACCELERATOR_STEPS_PER_EXECUTION = 16
MAX_AUTO = 64  # the most members ``--fuse auto`` puts in one program
MEMORY_SHARE = 0.5  # of the accelerator's free memory that auto sizes a group to
# The CPU flags (/proc/cpuinfo: x86 AVX-512 and AMX, Arm) of units doing a 16-bit policy's
# arithmetic. Without any, the CPU emulates it and the policy is several times slower than
# float32 (make bench-precision).
NATIVE_16BIT = {"mixed_bfloat16": frozenset({"avx512_bf16", "amx_bf16", "bf16"}),
                "mixed_float16": frozenset({"avx512_fp16", "amx_fp16", "fphp"})}


def _jax_compilable() -> tuple[type[keras.layers.Layer], ...]:
    """Keras' image-augmentation layers that say they cannot be XLA-compiled. That is true of
    TensorFlow (its ImageProjectiveTransform op has no XLA kernel) but not of JAX, where they
    are jax.numpy code; yet one of them turns the whole train step eager under JAX, several
    times slower than compiled."""
    from keras import layers

    return (layers.RandomTranslation, layers.RandomRotation, layers.RandomZoom,
            layers.RandomCrop, layers.RandomShear, layers.RandomPerspective)


def mark_jax_compilable(model: keras.Model) -> None:
    """Under the JAX backend, let XLA compile ``model``'s steps although it has augmentation
    layers (``_jax_compilable``); a model compiled already (a checkpoint, a hypermodel's own
    compile) is switched to compiled steps. Under other backends: nothing."""
    import keras

    if keras.backend.backend() != "jax":
        return
    marked = False
    for layer in _all_layers(model):
        if isinstance(layer, _jax_compilable()) and not layer.supports_jit:
            layer.supports_jit = marked = True
    if marked and getattr(model, "compiled", False):
        model.jit_compile = True


def _all_layers(layer: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    for inner in getattr(layer, "layers", ()):
        yield inner
        yield from _all_layers(inner)


def device_description() -> str:
    """The accelerator Keras trains on, in words ("cpu" when there is none)."""
    import keras

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


def precision_warning(precision: str) -> str | None:
    """Why training at ``precision`` will be slow here, or None: float32, an accelerator, a
    CPU with units for it, or a CPU whose flags cannot be read."""
    if precision not in NATIVE_16BIT:
        return None
    flags = cpu_flags()
    if flags is None or flags & NATIVE_16BIT[precision] or device_description() != "cpu":
        return None
    return (f"training.precision {precision} on a CPU without 16-bit units (none of "
            f"{', '.join(sorted(NATIVE_16BIT[precision]))} in /proc/cpuinfo): it is emulated, "
            "several times slower than float32 (make bench-precision)")


def precision_warnings(precisions: Iterable[str]) -> list[str]:
    """A WARNING line for each 16-bit ``training.precision`` of ``precisions`` (a study's)
    that this machine would emulate (``precision_warning``)."""
    return [f"WARNING: {line}" for line in map(precision_warning, precisions) if line]


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str] | None:
    """This CPU's feature flags, or None where /proc/cpuinfo does not list them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, Arm
            return frozenset(value.split())
    return None


def fused_group_size(params: int, activations: int, batch: int,
                     data_bytes: int) -> tuple[int, str] | None:
    """How many members of one model a fused group holds on the JAX accelerator, and that in
    words; None on a CPU. A member takes its weights, gradients and two optimizer moments
    (``params`` each) and a training batch's activations three times over, an evaluation
    batch's once (``activations`` per image, float32); the group fills ``MEMORY_SHARE`` of
    the free memory less the pooled data (``data_bytes``), with at most ``MAX_AUTO``."""
    import jax

    from sweep.training.probe import EVAL_BATCH_SIZE

    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    stats = device.memory_stats() or {}
    free = stats.get("bytes_limit", 0) - stats.get("bytes_in_use", 0)
    member = 4 * (4 * params + (3 * batch + EVAL_BATCH_SIZE) * activations)
    size = int(max(1, min(MAX_AUTO, (MEMORY_SHARE * free - data_bytes) // member)))
    return size, (f"up to {size} points per program on {device.device_kind} ({free / 2**30:.1f} "
                  f"GiB free, about {member / 2**20:.0f} MiB a member)")
