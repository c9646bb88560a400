"""What the user of a sweep sees while it runs, drawn from the workers' events (``progress``).

One console per sweep, however many workers: ``sweep run --workers N`` feeds it the events
of all its workers, so trials are placed "k of N" across workers, the best so far is the
sweep's, and the summary is printed once. On a terminal it is a live view in the manner of
tqdm and rich (points done of total with the time left, each running trial with its epoch,
the best so far) with one line above it as each trial ends; elsewhere (a log, a pipe, a
Slurm output file) plain lines, one per epoch. Lines are prefixed by their worker only where
the trial does not say it already: what a worker writes on its own.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from sweep.run.progress import SweepResult, epoch_text, header, rejection, resumption, trial_label
from sweep.study import StudySpec


class SweepConsole:
    """Renders a sweep's events as plain lines, or as a live view (``live``)."""

    def __init__(self, spec: StudySpec, *, live: bool = False, stream: TextIO | None = None):
        self.spec = spec
        self.result = SweepResult(total=0)
        # looked up per console: a default bound at import goes stale
        stream = stream or sys.stderr
        self._view = _LiveView(spec, stream) if live else _PlainLines(spec, stream)
        self._running: dict[int, dict] = {}  # trial number -> its start event, last row
        self._positions: dict[str, int] = {}  # point -> its position: one per point

    def __enter__(self) -> SweepConsole:
        self._view.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._view.close()

    def event(self, event: dict, worker: int | None = None) -> None:
        """Show one event of a worker (``progress`` lists them)."""
        self.result.apply(event)
        kind = event["event"]
        if kind == "begin":
            self._view.begin(self.result, event.get("storage"), event.get("where"))
            for rejected in event.get("rejected", ()):
                self._view.note(rejection(self.spec, rejected))
            return
        if kind == "start":
            # A point started again (its worker died) keeps its place; positions counted by
            # the workers' claims may repeat where two workers claimed at once.
            # never past the total: a point taken over from a worker of an earlier run
            taken = set(self._positions.values())
            position = self._positions.get(event["point"]) or min(
                event["position"] if event["position"] not in taken else max(taken) + 1,
                max(self.result.total, 1))
            self._positions[event["point"]] = position
            self._running[event["trial"]] = {**event, "position": position, "row": None}
            self._view.start(self._running[event["trial"]], self.result)
            return
        trial = self._running.get(event["trial"])
        if trial is None:  # a trial this console did not see start: nothing to add to
            return
        if kind == "epoch":
            trial["row"] = event["row"]
            self._view.epoch(trial, self._running.values(), self.result)
        elif kind == "end":
            del self._running[event["trial"]]
            self._view.end(trial, event, self._running.values(), self.result)

    def note(self, text: str, worker: int | None = None) -> None:
        """A line that is not an event: a warning a worker wrote, a worker that exited."""
        who = f"worker {worker}: " if worker is not None else ""
        own = f"[{self.spec.name}] "  # a worker's line names the study already
        self._view.note(f"{own}{who}{text.removeprefix(own)}")


class EventLines:
    """Events as JSON lines: what a worker of ``sweep run --workers N`` sends its parent."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def __enter__(self) -> EventLines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def event(self, event: dict) -> None:
        self.stream.write(json.dumps(event, default=str) + "\n")
        self.stream.flush()


def _outcome(trial: dict, end: dict, metric: str) -> str:
    """How a trial ended, in words: its last numbers, or why it stopped."""
    if end["state"] == "lost":
        return f"given up: {end['note']}"
    if end["state"] != "complete":
        return end["note"] or end["state"]
    row = trial["row"] or {}
    shown = [f"{m} {row[m]:.4f}" for m in dict.fromkeys((metric, "val_accuracy",
                                                          "test_accuracy")) if m in row]
    return ", ".join(["complete", *shown])


class _PlainLines:
    """One line per epoch, and one per trial that fails, is pruned or is given up."""

    def __init__(self, spec: StudySpec, stream: TextIO):
        self.spec, self.stream = spec, stream

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def begin(self, result: SweepResult, storage: str | None, where: str | None) -> None:
        self._print(header(self.spec, result, storage, where))

    def start(self, trial: dict, result: SweepResult) -> None:
        how = resumption(trial)
        if how:
            self._print(f"[{self.spec.name}] {trial_label(trial, result.total)} {how}")

    def epoch(self, trial: dict, running: Iterable[dict], result: SweepResult) -> None:
        best = result.best_text(self.spec)
        self._print(
            f"[{self.spec.name}] {trial_label(trial, result.total)} "
            f"{epoch_text(trial['row'], trial['epochs'])}" + (f" | {best}" if best else "")
        )

    def end(self, trial: dict, end: dict, running: Iterable[dict],
            result: SweepResult) -> None:
        if end["state"] != "complete":
            self._print(f"[{self.spec.name}] {trial_label(trial, result.total)} "
                        f"{_outcome(trial, end, self.spec.metric)}")

    def note(self, text: str) -> None:
        self._print(text)


class _LiveView:
    """rich's live progress display: the sweep's bar with the time left, a bar per running
    trial; a line printed above it as each trial ends."""

    def __init__(self, spec: StudySpec, stream: TextIO):
        self.spec = spec
        self.console = Console(file=stream, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(bar_width=24),
            TextColumn("{task.fields[count]}", markup=False), _TimesColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            console=self.console, transient=True, speed_estimate_period=600)
        self.sweep: TaskID | None = None  # the sweep's task
        self.tasks: dict[int, TaskID] = {}  # trial number -> its task

    def open(self) -> None:
        self.progress.start()

    def close(self) -> None:
        self.progress.stop()

    def begin(self, result: SweepResult, storage: str | None, where: str | None) -> None:
        self.sweep = self.progress.add_task(self.spec.name, total=max(1, result.total),
                                            completed=result.skipped, count="", info="")
        self._update_sweep([], result)
        self.console.print(header(self.spec, result, storage, where), markup=False)

    def start(self, trial: dict, result: SweepResult) -> None:
        done = trial["resumed_from"] or 0
        self.tasks[trial["trial"]] = self.progress.add_task(
            f"  {trial_label(trial, result.total)}", total=trial["epochs"], completed=done,
            count=f"epoch {done}/{trial['epochs']}", info=resumption(trial))

    def epoch(self, trial: dict, running: Iterable[dict], result: SweepResult) -> None:
        row = trial["row"]
        self.progress.update(self.tasks[trial["trial"]], completed=row["epoch"],
                             count=f"epoch {row['epoch']}/{trial['epochs']}",
                             info=f"val_accuracy {row['val_accuracy']:.4f}")
        self._update_sweep(running, result)

    def end(self, trial: dict, end: dict, running: Iterable[dict],
            result: SweepResult) -> None:
        self.progress.remove_task(self.tasks.pop(trial["trial"]))
        self.console.print(f"[{self.spec.name}] {trial_label(trial, result.total)}: "
                           f"{_outcome(trial, end, self.spec.metric)}", markup=False)
        self._update_sweep(running, result)

    def note(self, text: str) -> None:
        self.console.print(text, markup=False)

    def _update_sweep(self, running: Iterable[dict], result: SweepResult) -> None:
        """Points done, plus the running trials' share of their epochs: the time left is
        estimated from that, so it moves with every epoch, not only with every trial."""
        share = sum((t["row"] or {}).get("epoch", 0) / t["epochs"] for t in running)
        best = result.best_text(self.spec) or ""
        assert self.sweep is not None  # the begin event came first
        self.progress.update(self.sweep, completed=result.finished + share, info=best,
                             count=f"{result.finished} of {result.total} trials done")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _TimesColumn(ProgressColumn):
    """``1:23 elapsed, 2:10 left`` (the time left at the speed of the last ten minutes)."""

    def render(self, task: Task) -> Text:
        left = None if task.finished else task.time_remaining
        return Text(f"{_clock(task.elapsed)} elapsed, {_clock(left)} left")


def sweep_console(spec: StudySpec, progress: str = "auto", stream: TextIO | None = None
                  ) -> SweepConsole | EventLines:
    """The console a command shows its sweep on, by its ``--progress`` word: ``live`` (a
    terminal's live view), ``plain`` lines, ``jsonl`` events (a worker's, for its parent), or
    ``auto``: live when both stdout and the console's stream (stderr) are terminals."""
    stream = stream or sys.stderr
    if progress == "jsonl":
        return EventLines(sys.stdout)
    if progress == "auto":
        progress = "live" if _is_terminal(stream) and _is_terminal(sys.stdout) else "plain"
    return SweepConsole(spec, live=progress == "live", stream=stream)


def _is_terminal(stream: TextIO) -> bool:
    return getattr(stream, "isatty", lambda: False)() and os.environ.get("TERM") != "dumb"
