"""A KerasTuner ``HyperModel``'s own ``fit(self, hp, model, *args, **kwargs)``: the training hps
it declares (KerasTuner's "Tune model training": ``batch_size=hp.Choice(...)``,
``shuffle=hp.Boolean(...)``, preprocessing) become search params beside ``build``'s, and a
trial trains through it.

KerasTuner's contract: its tuner calls ``hypermodel.fit(hp, model, *args, **kwargs)`` with
what ``search`` was given, ``callbacks`` always among the keywords; the default ``fit`` is
``model.fit(*args, **kwargs)``. sweep calls it as ``fit(hp, model, x_train, y_train,
**SWEEP_PASSES)`` with its own callbacks, which record each epoch, save checkpoints and prune;
so the fit must hand its keywords on to one ``model.fit`` call, as KerasTuner's examples do.

Knows KerasTuner and Keras; never Optuna.
"""

from __future__ import annotations

import collections
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import keras_tuner

# The keywords sweep gives the hypermodel's fit (sweep.training.fit sets their values); the
# fit may set any other keyword of model.fit itself.
SWEEP_PASSES = ("epochs", "initial_epoch", "validation_data", "callbacks", "verbose")
PROBE_IMAGES = 8  # zero images the fit gets while its hps are collected


class FitProbeError(Exception):
    """The hypermodel's fit does not train through one ``model.fit`` with sweep's callbacks."""


def own_fit(target: object) -> Callable | None:
    """``target``'s ``fit(hp, model, ...)``, or None where it keeps KerasTuner's default
    (``model.fit``) or is a plain ``build(hp)`` function."""
    import keras_tuner

    fit = getattr(target, "fit", None)
    if inspect.isroutine(target) or not callable(fit):
        return None
    return None if getattr(type(target), "fit", None) is keras_tuner.HyperModel.fit else fit


def probe_fit(fit: Callable, hp: keras_tuner.HyperParameters, model: keras.Model
              ) -> frozenset[str]:
    """Run ``fit(hp, model, ...)`` with ``model.fit`` standing in, so that ``hp`` records the
    hps the fit declares (under the values ``hp`` holds) without training anything.

    The fit gets ``PROBE_IMAGES`` zero images shaped like the model's input; the stand-in's
    ``History`` answers 0.0 for any metric a fit may read from it.

    Returns:
        The keywords the fit sets on ``model.fit`` itself (``batch_size``, ``shuffle``, ...).

    Raises:
        FitProbeError: the fit calls ``model.fit`` other than once, or without sweep's
            callbacks. Whatever the fit itself raises goes up as it is.
    """
    import keras
    import numpy as np

    calls: list[dict[str, Any]] = []
    ours = keras.callbacks.Callback()

    def stand_in(*args: Any, **kwargs: Any) -> keras.callbacks.History:
        calls.append(kwargs)
        history = keras.callbacks.History()
        history.history = collections.defaultdict(lambda: [0.0])
        return history

    x = np.zeros((PROBE_IMAGES, *_input_shape(model)), "float32")
    y = np.zeros(PROBE_IMAGES, "int64")
    model.fit = stand_in  # shadows Model.fit on this instance only
    try:
        fit(hp, model, x, y, epochs=1, initial_epoch=0, validation_data=(x, y),
            callbacks=[ours], verbose=0)
    finally:
        del model.fit
    if len(calls) != 1:
        raise FitProbeError(f"it calls model.fit {len(calls)} times; sweep trains one model.fit "
                            "call (its callbacks record the epochs)")
    if ours not in list(calls[0].get("callbacks") or []):
        raise FitProbeError("it does not pass sweep's callbacks on to model.fit (hand "
                            "**kwargs on): they record each epoch, save checkpoints and prune")
    return frozenset(calls[0]) - set(SWEEP_PASSES)


def trial_fit(fit: Callable | None, values: dict) -> Callable | None:
    """The trial's training function for ``sweep.training.fit.train``: ``fit(hp, model, ...)``
    with ``values`` (``{name: value}``, without the ``hp.`` prefix) set on KerasTuner's
    HyperParameters; None for a hypermodel without its own fit."""
    if fit is None:
        return None
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.values = dict(values)
    return lambda model, *args, **kwargs: fit(hp, model, *args, **kwargs)


def _input_shape(model: keras.Model) -> tuple[int, ...]:
    """The model's input shape without the batch axis (unknown sizes as 1); ``(1,)`` for a
    model not built yet, whose input shape is known only from the data."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return (1,)
    return tuple(1 if n is None else n for n in shape[1:])
