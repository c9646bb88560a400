"""What a sweep tells its user, as events: plain dicts that a worker hands to a console (this
process's, or as JSON lines to the parent of ``sweep run --workers N``), and the tally of them.

Events, each a dict with ``"event"``:

- ``begin``: ``total`` points, ``done`` before this run, ``to_continue`` (done points given
  back to train more epochs: the study's epochs grew), ``rungs`` (halving: ``[[epochs,
  points], ...]``, the points that reached each rung), ``rejected`` (``{"trial", "values",
  "note"}`` of each grid point recorded as failed before training: its model cannot be
  built, ``sweep.trial.feasible``; counted in ``done``), ``storage`` (where the results go,
  password hidden), ``where`` (the workers, or None), ``best`` (see ``SweepResult.best``);
  once, before any trial.
- ``start``: ``trial`` (Optuna's number, the one the dashboard shows), ``point`` (its claim
  key), ``position`` (k of ``total``: the k-th point started), ``values``, ``epochs``,
  ``resumed_from`` (the checkpoint's last epoch, or 0), ``continues`` (the number of the
  complete trial it continues with more epochs, or None), ``at`` (when it was claimed, Unix
  seconds), ``claim_s`` (seconds from looking for a claim to the start of training: the
  claim, and for a point drawn by the sampler or continued the Optuna trial and its params,
  which a grid point's trial has made behind the worker: ``sweep.run.behind``),
  ``claim_cpu_s`` (the CPU seconds of those). Said once the trial exists.
- ``epoch``: ``trial``, ``row`` (the epoch's metrics, as stored); only the epochs trained
  now: those of the checkpoint a trial resumes from are stored again, not shown again.
- ``end``: ``trial``, ``state`` (``complete | failed | pruned | lost``), ``note`` (the reason
  of a failure, a pruning or a lost point), ``best``, ``at`` (when its training ended, Unix
  seconds; the event is said once the trial is stored, maybe after the next one started),
  ``record_s`` (seconds the worker waited to hand the trial's attributes, epoch rows and
  result to the writes behind it; None for a lost point), ``record_cpu_s``, ``behind_s``
  and ``behind_cpu_s`` (those writes, made while the worker went on: the trial's creation
  for a grid point, its attributes, the epochs' rows, the result, the claim marked done,
  the best so far read). ``claim_s + record_s`` is the trial's overhead, what a worker
  spends per trial on anything but training; the CPU seconds leave out waiting for the
  database or for a core other workers hold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import optuna

from sweep.store import LiveTrials, StoredStudy
from sweep.study import StudySpec, point_text

END_STATES = ("complete", "failed", "pruned", "rests", "lost")


@dataclass
class SweepResult:
    """What a run did: trials ``ran`` now (``failed``, ``pruned`` and ``continued`` with more
    epochs of them; ``lost``: given up because another worker took the point over; with
    ``search.schedule``, ``promoted`` to a higher rung, and ``rested`` at a lower one),
    ``skipped`` as already done, ``rejected`` before training (their model cannot be built),
    ``to_continue`` as done before but given back to train more epochs, out of ``total``
    (with ``search.schedule``, ``rungs``: how many points reached each rung, by its epochs);
    the best value and trial number among the study's complete
    trials so far, or (multi-objective) how many trials are on the Pareto front."""

    total: int
    ran: int = 0
    failed: int = 0
    pruned: int = 0
    lost: int = 0
    continued: int = 0
    promoted: int = 0
    rested: int = 0
    skipped: int = 0
    rejected: int = 0
    to_continue: int = 0
    rungs: dict[int, int] = field(default_factory=dict)  # halving: points that reached each
    best_value: float | None = None
    best_trial: int | None = None
    pareto: int | None = None
    # what update_best keeps between calls: the stored study, its trials, each finished
    # trial's point
    _stored: StoredStudy | None = field(default=None, repr=False, compare=False)
    _trials: LiveTrials | None = field(default=None, repr=False, compare=False)
    _points: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> int:
        """Points done now: those done before this run, and those this run finished or
        rejected (a point promoted is not, until its promotion ends)."""
        return self.skipped + self.rejected + self.ran - self.promoted

    def best(self) -> dict:
        """The best so far, as events carry it."""
        return {"value": self.best_value, "trial": self.best_trial, "pareto": self.pareto}

    def apply(self, event: dict) -> None:
        """Count what an event says: the points of ``begin``, the state of ``end``, and the
        best so far that both carry."""
        if event["event"] == "begin":
            self.rejected = len(event.get("rejected", ()))
            self.total, self.skipped = event["total"], event["done"] - self.rejected
            self.to_continue = event.get("to_continue", 0)
            self.rungs = {int(e): n for e, n in event.get("rungs", ())}
        elif event["event"] == "start":
            promoted = event.get("rung") is not None and event.get("continues") is not None
            self.promoted += promoted
            self.continued += not promoted and event.get("continues") is not None
            return
        elif event["event"] == "end":
            state = event["state"]
            self.ran += state != "lost"
            self.failed += state == "failed"
            self.pruned += state == "pruned"
            self.rested += state == "rests"
            self.lost += state == "lost"
        else:
            return
        best = event["best"]
        self.best_value, self.best_trial = best["value"], best["trial"]
        self.pareto = best["pareto"]

    def best_text(self, spec: StudySpec) -> str | None:
        """The best so far in words, or None before any trial completed."""
        if self.pareto:
            return f"{self.pareto} trial(s) on the Pareto front of {' vs '.join(spec.metrics)}"
        if self.best_value is not None:
            return f"best {spec.metric} {self.best_value:.4f} (trial {self.best_trial})"
        return None

    def summary(self, spec: StudySpec) -> str:
        """The line printed when the sweep is done: one for the whole sweep."""
        extra = "".join(f", {n} {what}" for n, what in ((self.pruned, "pruned"),
                                                        (self.lost, "lost")) if n)
        more = f"{self.continued} continued with more epochs, " * bool(self.continued) + (
            f"{self.promoted} promoted, {max(0, self.rested - self.promoted)} stopped at a "
            "lower rung, "
            * bool(self.promoted or self.rested))
        return (f"[{spec.name}] {self.total} points: {self.ran} run now ({more}{self.failed} "
                f"failed{extra}), {_rejected(self)}{self.skipped} already done; "
                f"{self.best_text(spec) or 'no completed trial'}")

    def update_best(self, storage: optuna.storages.RDBStorage, study: optuna.Study) -> None:
        """Read the best so far from the study: among the trials that are its results now
        (``StoredStudy.current``), complete ones only. The stored study is read once, the
        trials as they change (in bulk, ``LiveTrials``: ask again with the same ``study``)."""
        if self._stored is None or self._trials is None:
            self._stored = StoredStudy.read(storage, study)
            self._trials = LiveTrials(storage.engine, self._stored.study_id, ("config", "seed"))
        stored = self._stored
        current = stored.current(self._trials.read(), self._points)
        if len(study.directions) > 1:
            shown = {t.number for t in current if t.state.name == "COMPLETE"}
            self.pareto = len({t.number for t in study.best_trials} & shown)
            return
        best = stored.best(current)
        if best is not None:
            self.best_value, self.best_trial = best.value, best.number


def header(spec: StudySpec, result: SweepResult, storage: str | None, where: str | None
           ) -> str:
    """The run's first line: its points, where its results go (``storage``:
    ``sweep.store.storage_label``), what is left, and what trains it (``where``)."""
    place = f" in {storage}" if storage else ""
    more = f"{result.to_continue} to continue with more epochs, " * bool(result.to_continue)
    left = result.total - result.finished - result.to_continue
    line = (f"[{spec.name}] {result.total} points{place}: {result.skipped} already done, "
            f"{_rejected(result)}{more}{left} to train")
    halving = spec.search.schedule
    if halving is not None:  # how many points reached each rung
        rungs = halving.rungs(spec.training.epochs)
        line += (f"; rungs at {', '.join(map(str, rungs))} epochs reached by "
                 f"{', '.join(str(result.rungs.get(r, 0)) for r in rungs)} points")
    return line + (f"; {where}" if where else "")


def _rejected(result: SweepResult) -> str:
    return f"{result.rejected} rejected before training, " * bool(result.rejected)


def rejection(spec: StudySpec, rejected: dict) -> str:
    """A grid point recorded as failed before training, and why: ``[conv_width] trial 9
    pooling=max kernel=7 rejected before training: conv layer 3 has a 7x7 kernel ...``."""
    point = point_text(rejected["values"])
    return (f"[{spec.name}] trial {rejected['trial']}" + f" {point}" * bool(point)
            + f" rejected before training: {rejected['note']}")


def trial_label(start: dict, total: int) -> str:
    """A trial as every line names it: ``trial 3 (2 of 4) pooling=max kernel=3``."""
    point = point_text(start["values"])
    return f"trial {start['trial']} ({start['position']} of {total})" + (f" {point}" * bool(point))


def resumption(start: dict) -> str:
    """How a trial starts, where it does not start afresh: ``promoted to 9 epochs (rung 3 of
    3), continues from epoch 3`` (``search.schedule``), ``continues trial 3 from epoch 4``
    (the study's epochs grew), ``resumes after epoch 2 (from its checkpoint)`` (a run stopped
    or a worker died), ``starts over from epoch 1 (no checkpoint ...)`` (it stopped before
    one was written); else ``""``."""
    if start["continues"] is not None and start.get("rung"):
        k, n = start["rung"]
        return (f"promoted to {start['epochs']} epochs (rung {k} of {n}), continues from "
                f"epoch {start['resumed_from']}")
    if start["continues"] is not None:
        return f"continues trial {start['continues']} from epoch {start['resumed_from']}"
    if start["resumed_from"]:
        return f"resumes after epoch {start['resumed_from']} (from its checkpoint)"
    if start.get("again"):
        return "starts over from epoch 1 (no checkpoint was written before it stopped)"
    return ""


def epoch_text(row: dict, epochs: int) -> str:
    """An epoch's numbers: ``epoch 1/2 loss 2.1394 val_accuracy 0.3000 ... (4.5s)``."""
    test = f" test_accuracy {row['test_accuracy']:.4f}" if "test_accuracy" in row else ""
    return (f"epoch {row['epoch']}/{epochs} loss {row['train_loss']:.4f} "
            f"val_accuracy {row['val_accuracy']:.4f}{test} ({row['seconds']:.1f}s)")


class Overhead:
    """Seconds a worker spends on a trial besides training, on the wall clock and on its
    own thread's CPU (the difference: waiting for the database, or for a core that other
    workers' training holds); ``add`` times one more span."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.add()

    def add(self) -> None:
        self._since = time.perf_counter(), time.thread_time()

    def stop(self) -> Overhead:
        wall, cpu = self._since
        self.wall += time.perf_counter() - wall
        self.cpu += time.thread_time() - cpu
        return self
