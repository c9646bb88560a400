"""Training through a function that stands in for ``model.fit``: a KerasTuner hypermodel's own
``fit(hp, model, x, y, **kwargs)``, its ``hp`` bound (``sweep.models.hyperfit.trial_fit``).

Knows Keras only: the function is a plain callable ``fit(model, x, y, **kwargs)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
    import numpy as np


def fit_through(fit: Callable, model: keras.Model, x: np.ndarray, y: np.ndarray,
                defaults: dict, **kwargs: object) -> None:
    """Call ``fit(model, x, y, **kwargs)``; while it runs, the ``model.fit`` it calls fills in
    ``defaults`` (sweep's batch size, validation batch size, shuffling) for the keywords the
    function does not set itself (Keras ignores them for a ``tf.data`` dataset, which
    batches itself)."""
    plain = model.fit

    def with_defaults(*args: object, **given: object) -> keras.callbacks.History:
        return plain(*args, **(defaults | given))

    model.fit = with_defaults  # shadows Model.fit on this instance only, while fit runs
    try:
        fit(model, x, y, **kwargs)
    finally:
        del model.fit
