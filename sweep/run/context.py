"""What one worker's points share (``sweep.run.worker.run_sweep`` makes it): the study and its
storage, the worker's name in the claims, its folders, how it loads data, where its events
go. ``attempt`` (one claimed point's trial) and ``fused_worker`` (a group of them) take it
from here, so that neither imports the worker loop that imports them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from sweep.data import Dataset
from sweep.run.behind import Behind
from sweep.run.interrupt import DeferredInterrupt
from sweep.run.progress import Overhead, SweepResult
from sweep.store.halving import Ladder
from sweep.study import StudySpec


@dataclass
class WorkerContext:
    """What every point of one ``run_sweep`` call shares."""

    spec: StudySpec
    store: optuna.storages.RDBStorage
    study_id: int
    name: str  # "host:pid", in the claims
    dataset_for: Callable[[dict, int], Dataset]
    folder: Path  # the study's own folder of --checkpoint-dir (sweep.store.study_folder)
    checkpoint_every_s: float
    artifacts: object  # an Optuna artifact store, or None
    interrupt: DeferredInterrupt
    result: SweepResult
    on_event: Callable[[dict], None]
    points: dict[str, dict | None]  # PreparedRun.points
    stopped: frozenset[str]  # PreparedRun.stopped
    ladder: Ladder | None  # PreparedRun.ladder: successive halving, or None
    track_best: bool = True
    warned: set[str] = field(default_factory=set)  # warnings printed (once a process each)
    behind: Behind = field(default_factory=Behind)  # the writes training does not wait for
    _events: threading.Lock = field(default_factory=threading.Lock)  # ends come from behind

    def emit(self, event: dict) -> None:
        """Count an event into this worker's result and hand it to the console."""
        with self._events:
            self.result.apply(event)
            self.on_event(event)

    def end(self, trial_number: int, state: str, note: str | None = None, *, at: float,
            record: Overhead | None = None, behind: Overhead | None = None) -> None:
        """The ``end`` event of a trial whose training ended ``at`` (Unix seconds); said once
        it is stored. ``record``: the time the worker waited to store it, ``behind``: the
        time its writes took behind the worker."""
        self.emit({"event": "end", "trial": trial_number, "state": state, "note": note,
                   "best": self.result.best(), "at": at,
                   "record_s": record and record.wall, "record_cpu_s": record and record.cpu,
                   "behind_s": behind and behind.wall, "behind_cpu_s": behind and behind.cpu})
