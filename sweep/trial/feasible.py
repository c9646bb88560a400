"""Whether a point can be trained at all, known from its config and the data's shapes alone
(no Keras): sweep's own models are planned layer by layer (``sweep.models.plan``) and held
against the study's ``constraints.max_params``. The trial checks this before it builds; a run
checks its grid points with it before any worker starts (``sweep.run.prepared``).
"""

from __future__ import annotations

import os

from sweep.errors import ConfigError, TrialFailed
from sweep.models import Architecture, plan
from sweep.study import StudySpec
from sweep.study.training import TrainingConfig


def architecture_of(config: dict, input_shape: tuple[int, ...], num_classes: int
                    ) -> Architecture | None:
    """The planned model of a trial's ``config`` (None for a KerasTuner hypermodel, known only
    once built).

    Raises:
        ConfigError: the model cannot be built on such images; the message says why and what
            would keep it (``padding: same``).
    """
    if "hypermodel" in config["model"]:
        return None
    augment = TrainingConfig.from_section(config["training"]).augment
    return plan(config["model"], input_shape, num_classes, augment)


def check_size(spec: StudySpec, param_count: int) -> None:
    """Hold a model's parameter count against the study's ``constraints.max_params``.

    Raises:
        TrialFailed: the model is over the limit.
    """
    limit = spec.constraints.get("max_params")
    if limit is not None and param_count > limit:
        raise TrialFailed(f"{param_count:,} parameters, over the study's max_params {limit:,}")


STATE_BYTES_PER_PARAM = 16  # float32 weights, their gradients and two optimizer moments


def check_memory(param_count: int) -> None:
    """Refuse a model whose weights, gradients and optimizer state alone exceed this machine's
    memory (filters [100000, 100000] ended in a 52-line ResourceExhaustedError).

    Raises:
        TrialFailed: it cannot fit, with its parameter count and what it needs.
    """
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: nothing to hold it to
        return
    needed = param_count * STATE_BYTES_PER_PARAM
    if needed > memory:
        raise TrialFailed(f"{param_count:,} parameters need about {needed / 2**30:,.0f} GiB for "
                          "weights, gradients and optimizer state, more than this machine's "
                          f"{memory / 2**30:,.0f} GiB of memory")


def why_not_trainable(spec: StudySpec, config: dict, input_shape: tuple[int, ...],
                      num_classes: int) -> str | None:
    """Why the point of ``config`` cannot be trained on such data, or None when it can (or
    only building it would tell: a hypermodel)."""
    try:
        architecture = architecture_of(config, input_shape, num_classes)
        if architecture is not None:
            check_size(spec, architecture.params)
            check_memory(architecture.params)
    except (ConfigError, TrialFailed) as err:
        return str(err)
    return None
