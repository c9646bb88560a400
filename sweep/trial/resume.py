"""Resuming a point from its checkpoint, one rule for a trial trained alone and a fused
group's members: the checkpoint's model and epoch rows, each row reported again onto the new
trial; a checkpoint that does not load whole is set aside in one line and the point trains
from its first epoch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from sweep.records import TrialKey
from sweep.training.checkpoints import load_checkpoint, set_aside

if TYPE_CHECKING:
    from sweep.trial.objective import Point


def resume_point(attrs: dict, point: Point, checkpoint: Path | None,
                 report: Callable[[dict], None]) -> tuple[keras.Model, list[dict]] | None:
    """Seed the point's draws; ``(model, rows)`` of its checkpoint, each row reported again
    onto this trial, or None when there is none (a new model is built next)."""
    keras.utils.set_random_seed(point.seed)
    if checkpoint is None:
        return None
    try:
        resumed = load_checkpoint(checkpoint)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as err:  # whole as a file, but Keras cannot build a model of it
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        print(f"sweep: {set_aside(checkpoint, reason)}", file=sys.stderr)
        resumed = None
    if resumed is None:
        return None
    model, done = resumed
    attrs[TrialKey.RESUMED_FROM_EPOCH] = done[-1]["epoch"]
    for row in done:
        report(row)
    return model, done
