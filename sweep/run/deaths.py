"""When a dead worker is replaced, and when the run stops instead (``sweep.run.local``).

A worker process that dies (SIGKILL, the OOM killer, a crash in native code) is replaced and
the points it held resume from their checkpoints. Two patterns say the next worker would die
the same way, and stop the run with the last one's error line:

- ``EARLY_DEATHS`` workers in a row that die before finishing an epoch (a broken install, a
  model that crashes as it is built);
- ``POINT_DEATHS`` deaths of one point in the run, with progress or not: a point that crashes
  its worker at some epoch, or one that dies every few epochs and saves a checkpoint each
  time, would cost a new worker's start-up for each epoch it gains (Ray Tune's
  ``max_failures`` is the same budget, per trial). The same command goes on from its
  checkpoint, with a budget anew.

A worker that exits 0 while points are still to train (the model's code called
``os._exit(0)``) died too: a worker returns 0 only when every point is done.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sweep.study import point_text

EARLY_DEATHS = 3  # workers in a row that die before finishing an epoch stop the run
POINT_DEATHS = 3  # deaths of one point in one run stop the run


@dataclass
class Deaths:
    """The deaths of one run's workers, counted against the two rules."""

    in_a_row: int = 0  # workers in a row that died before finishing an epoch
    of_point: Counter = field(default_factory=Counter)  # each point's deaths

    def died(self, progressed: bool, held: list[dict]) -> str | None:
        """Count one worker's death: ``progressed``, whether it finished an epoch since it
        started; ``held``, the start events of the trials it was training. Returns why the run
        must stop, or None (start another worker)."""
        self.in_a_row = 0 if progressed else self.in_a_row + 1
        self.of_point.update(start["point"] for start in held)
        # Early deaths first: three workers that trained nothing say more than that one
        # point (the one the replacements happened to claim) died three times.
        if self.in_a_row >= EARLY_DEATHS:
            return f"{self.in_a_row} workers in a row exited before finishing an epoch"
        for start in held:
            if self.of_point[start["point"]] >= POINT_DEATHS:
                point = point_text(start["values"]) or start["point"]
                return (f"the point {point} (trial {start['trial']}) died "
                        f"{self.of_point[start['point']]} times in this run, the last after "
                        f"resuming from epoch {start['resumed_from'] or 0}; the same command "
                        "goes on from its checkpoint")
        return None
