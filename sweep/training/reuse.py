"""Compiled training steps kept across the trials of one process.

Keras traces a model's train, test and predict functions on its first ``fit``: for the
seeds' small CNNs on a CPU, a large share of a short trial (docs/benchmark.md). Points that
differ only in what the traced step reads from variables (learning rate, seed, and so the
initial weights and the dropout and augmentation draws) can train the same compiled model:
``reuse`` hands back the one compiled for an earlier trial of the same ``key``, with the new
trial's fresh weights, its layers' random-number states, and a zeroed optimizer (its step
count and moments) at the new learning rate. Everything that is a constant of the traced
step (architecture, augmentation strengths, L2 factor, optimizer kind and its constants,
loss, batch size, precision) belongs in the key: ``step_key`` puts every training field in
it but those of ``MAY_DIFFER``, so a field added later keeps its points apart until someone
lists it there. A test trains the same point both ways and compares every epoch's metrics.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import fields

import keras

from sweep.data import Dataset
from sweep.study.training import TrainingConfig

KEPT = 2  # compiled models kept per process (each holds its traced functions and weights)

# The training fields a kept step may change between trials (an allow-list: a wrong hit is a
# wrong result, a miss only costs a trace). ``reuse`` sets the learning rate into the
# optimizer's variable; the schedule and its decay set it there too, from a callback; the
# others are read by Python around the step (how many epochs, when to evaluate or stop, logs).
MAY_DIFFER = frozenset({"learning_rate", "schedule", "decay", "epochs", "snapshots",
                        "stop_at_loss", "tensorboard"})

_compiled: OrderedDict[str, keras.Model] = OrderedDict()


def step_key(model_cfg: dict, training: TrainingConfig, data: Dataset) -> str | None:
    """What a compiled training step is made of: the model, the dataset's shapes and every
    training field but those of ``MAY_DIFFER`` (the seed is not part of it either: it only
    sets initial values). None where no step is kept: float16 loss scaling keeps a state of
    its own."""
    if training.precision == "mixed_float16":
        return None
    return json.dumps([model_cfg, step_constants(training), data.name, data.input_shape,
                       data.num_classes], sort_keys=True, default=str)


def step_constants(training: TrainingConfig) -> dict:
    """The training fields a compiled step is made of: all but those of ``MAY_DIFFER``
    (the key of a kept step here, and of a fused group, ``sweep.trial.fused_trials``)."""
    return {f.name: getattr(training, f.name) for f in fields(training)
            if f.name not in MAY_DIFFER}


def reuse(key: str, fresh: keras.Model, learning_rate: float) -> keras.Model:
    """The model to train: ``fresh`` itself the first time ``key`` is seen, else the compiled
    model of ``key`` set to ``fresh``'s initial state. It leaves the cache until
    ``remember`` puts it back after a training that ended well."""
    model = _compiled.pop(key, None)
    if model is None:
        return fresh
    for mine, theirs in zip(model.layers, fresh.layers, strict=True):
        # weights and the layer's random-number states (dropout, augmentation)
        for variable, initial in zip(mine.variables, theirs.variables, strict=True):
            variable.assign(initial)
    for variable in model.optimizer.variables:
        # from the shape and dtype: JAX's zeros_like cannot read a Keras variable's dtype
        variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
    model.optimizer.learning_rate.assign(learning_rate)
    model.stop_training = False
    return model


def remember(key: str, model: keras.Model) -> None:
    """Keep ``model``, trained and compiled, for the next trial of ``key``."""
    _compiled[key] = model
    _compiled.move_to_end(key)
    while len(_compiled) > KEPT:
        _compiled.popitem(last=False)
