"""Local worker processes: start N ``sweep worker`` children, pin them, watch them.

Each child gets its device through its own environment (``env=``; this process's environment
is never changed; ``devices``): one GPU per child via ``CUDA_VISIBLE_DEVICES`` plus the
frameworks' memory settings so K children share a card, or an equal share of the CPU cores.
A child that dies (SIGKILL, OOM killer) has its claims given back and its trial marked failed
at once, and a new child takes its place; the point resumes from its checkpoint; unless its
deaths say the next child would die alike (``sweep.run.deaths``): then the run stops with
the last one's error line. Ctrl-C stops the children, which mark their trials interrupted;
whatever a stopped child still holds (it was stopped before it could say so) is given back
here.

The parent owns the console: each child sends its events (``progress``) as JSON lines on its
stdout and its own lines (warnings, errors) on its stderr, both read here by one thread per
pipe and shown on the one ``SweepConsole``, a line that several workers write alike once.

The storage URL reaches the children in their environment (``SWEEP_STORAGE``), never on
their command line, where ``ps`` would show its password to every user of the machine.
Nothing here imports Keras: the parent only prepares the study and watches.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sweep.defaults import STORAGE_ENV
from sweep.errors import StorageError
from sweep.models import complete_spec
from sweep.run.console import SweepConsole
from sweep.run.deaths import Deaths
from sweep.run.devices import cpu_cores, worker_env
from sweep.run.prepared import PreparedRun, prepare
from sweep.run.progress import SweepResult
from sweep.run.startup import StartupWatch
from sweep.store import claims, mark_dead, open_study, reconnect, storage_label
from sweep.study import StudySpec
from sweep.training.backend import keras_backend

if TYPE_CHECKING:
    import optuna

WATCH_S = 0.5  # seconds between looks at the children
STOP_GRACE_S = 60.0  # seconds children get to record an interruption before being killed
# Where this process imported sweep from (see ``_import_env``).
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def run_workers(
    spec: StudySpec,
    worker_args: list[str],
    storage_url: str,
    *,
    workers: int,
    gpus: list[str],
    per_gpu: int,
    data_dir: str | None = None,
    console: SweepConsole,
    prepared: PreparedRun | None = None,
) -> int:
    """Run ``workers`` children of ``sweep worker <worker_args>`` (the study file and the
    options, not ``--storage``) on ``storage_url`` until the study is done, showing what
    they do on ``console``.

    Returns:
        0 when every point is done, 130 after Ctrl-C, 1 when the children's deaths stop the
        run (``sweep.run.deaths``), else the exit code of a child that failed with a user
        error (it is not restarted: its siblings would fail the same way).
    ``prepared``: the study as ``prepare`` made it already (else it is prepared here: the parent
    creates or grows the study once, before any child starts).
    """
    prepared = prepared or prepare(complete_spec(spec), storage_url, data_dir)
    spec, store, study_id = prepared.spec, prepared.store, prepared.study_id
    keys, cores, imports = list(prepared.points), cpu_cores(), _import_env()
    shown = _Shown(console, store, spec)
    shown.best.update_best(store, shown.study)  # fresher than what any one worker saw
    console.event({"event": "begin", "total": len(keys), "best": shown.best.best(),
                   "rejected": list(prepared.rejected),
                   **claims.tally(store.engine, study_id, keys, prepared.ladder),
                   "storage": storage_label(storage_url),
                   "where": f"{workers} workers on "
                            f"{'GPUs ' + ','.join(gpus) if gpus else f'{cores} CPU cores'}; "
                            f"Keras on {keras_backend()}"})
    children = _Children(
        [sys.executable, "-m", "sweep.cli", "worker", *worker_args, "--progress", "jsonl"],
        lambda i: os.environ | worker_env(i, workers, gpus, per_gpu, cores) | {
            STORAGE_ENV: storage_url} | imports,
        shown, prepared, console)
    try:
        for i in range(workers):
            children.start(i)
        return children.watch()
    except BaseException as stopped:  # Ctrl-C, or the storage lost (one line, by the CLI)
        _stop(children.running.values())
        if isinstance(stopped, KeyboardInterrupt):
            children.give_back(children.running.values())
            return 130
        raise


class _Children:
    """The run's worker processes (``running``, by index): started with ``command`` in the
    environment ``env_of(index)``, each pipe read by a thread into one inbox, and watched:
    replaced when one dies, unless the deaths stop the run (``sweep.run.deaths``)."""

    def __init__(self, command: list[str], env_of: Callable[[int], dict], shown: _Shown,
                 prepared: PreparedRun, console: SweepConsole):
        self.command, self.env_of, self.shown, self.console = command, env_of, shown, console
        self.store, self.study_id = prepared.store, prepared.study_id
        self.keys, self.host = list(prepared.points), socket.gethostname()
        self.ladder = prepared.ladder  # successive halving, or None
        self.inbox: queue.Queue = queue.Queue()
        self.pipes: dict[int, list[threading.Thread]] = {}
        self.running: dict[int, subprocess.Popen] = {}
        self.deaths = Deaths()

    def start(self, i: int) -> None:
        child = subprocess.Popen(self.command, env=self.env_of(i), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, bufsize=1)
        self.shown.started(i, child.pid)
        self.pipes[i] = [threading.Thread(target=_read_lines, args=(i, pipe, self.inbox),
                                          daemon=True) for pipe in (child.stdout, child.stderr)]
        for reader in self.pipes[i]:
            reader.start()
        self.running[i] = child

    def watch(self) -> int:
        """Show what the children say and replace the ones that die, until none runs;
        returns ``run_workers``' exit code."""
        while self.running:
            self.shown.drain(self.inbox, timeout=WATCH_S)
            for i, line in self.shown.starting.overdue():
                self.console.note(line, worker=i)
            for i, child in list(self.running.items()):
                code = child.poll()
                if code is not None and (stop := self._exited(i, child, code)) is not None:
                    return stop
        return 0

    def _exited(self, i: int, child: subprocess.Popen, code: int) -> int | None:
        """Child ``i`` exited with ``code``: the run's exit code when that stops it, else
        None (replaced where points are left)."""
        del self.running[i]
        self.shown.starting.done(i)
        for reader in self.pipes.pop(i):  # what it wrote before it exited, first
            reader.join(timeout=5)
        self.shown.drain(self.inbox)
        if code == 2:  # a user error: the others stop by themselves or fail alike
            self.stop()
            return code
        if code == 0 and not claims.pending(self.store.engine, self.study_id, self.keys,
                                            self.ladder):
            return None  # it found nothing left to train
        self.give_back([child], f"worker process exited with {code}")
        why = self.deaths.died(i in self.shown.progressed, self.shown.held(i))
        if why is not None:
            self.stop()
            last = self.shown.last_line.get(i) or f"(nothing; exit code {code})"
            self.console.note(f"stopping: {why}; the last said: {last}")
            return 1
        self.console.note(f"(pid {child.pid}) exited with {code}"
                          f"{' with points left to train' if code == 0 else ''}; its point "
                          "runs again from its checkpoint", worker=i)
        if claims.pending(self.store.engine, self.study_id, self.keys, self.ladder):
            self.start(i)
        return None

    def stop(self) -> None:
        """Stop the children still running and give back what they hold, without waiting
        for a storage that may be why the run stops."""
        _stop(self.running.values())
        with contextlib.suppress(StorageError), reconnect.patience(0):
            self.give_back(self.running.values())

    def give_back(self, children: Iterable[subprocess.Popen],
                  why: str = "its worker was stopped") -> None:
        """Give back the claims that exited ``children`` still hold and mark their trials
        failed for ``why``: a child stopped before it could (killed, or stopped as it began
        a trial)."""
        for child in children:
            for number in claims.release_worker(self.store.engine, self.study_id,
                                                f"{self.host}:{child.pid}"):
                mark_dead(self.store, self.study_id, number, why)


def _import_env() -> dict:
    """A child imports the sweep this process runs, whatever its working folder holds (a
    clone named ``sweep``): PYTHONSAFEPATH, and a source tree's sweep first on PYTHONPATH."""
    import site

    installed = {os.path.realpath(p) for p in (*site.getsitepackages(), site.USER_SITE) if p}
    ours = [] if os.path.realpath(PACKAGE_ROOT) in installed else [PACKAGE_ROOT]
    path = [*ours, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONSAFEPATH": "1"} | ({"PYTHONPATH": os.pathsep.join(path)} if path else {})


def _read_lines(worker: int, pipe: IO[str], inbox: queue.Queue) -> None:
    """Put each line of a child's pipe in ``inbox``, with the child's index, until it ends."""
    for line in iter(pipe.readline, ""):
        inbox.put((worker, line.rstrip("\n")))


class _Shown:
    """Hands the children's lines to the console: events as events (the best so far read
    afresh at each trial's end), other lines as notes, each distinct text once."""

    def __init__(self, console: SweepConsole, store: optuna.storages.RDBStorage,
                 spec: StudySpec) -> None:
        self.console, self.store, self.spec = console, store, spec
        self.seen: set[str] = set()
        self.progressed: set[int] = set()  # children that finished an epoch since started
        self.last_line: dict[int, str] = {}  # each child's last line that is not an event
        self.training: dict[int, dict[int, dict]] = {}  # each child's trials: start events
        self.starting = StartupWatch()  # children starting, or starting their first trial
        # one study and tally for the run: Optuna reads only the trials changed since
        self.study, self.best = open_study(store, spec.name), SweepResult(total=0)

    def drain(self, inbox: queue.Queue, timeout: float = 0.0) -> None:
        """Show the lines waiting in ``inbox``, waiting up to ``timeout`` s for the first."""
        try:
            while True:
                worker, line = inbox.get(timeout=timeout)
                timeout = 0.0
                self.show(worker, line)
        except queue.Empty:
            pass

    def started(self, worker: int, pid: int) -> None:
        """Child ``worker`` started (again), as process ``pid``: it has said nothing yet."""
        self.starting.started(worker, pid)
        self.progressed.discard(worker)
        self.last_line.pop(worker, None)
        self.training[worker] = {}

    def held(self, worker: int) -> list[dict]:
        """The start events of the trials child ``worker`` began and did not end."""
        return list(self.training.get(worker, {}).values())

    def show(self, worker: int, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "event" not in event:
            if line.strip():
                self.last_line[worker] = line.strip()
                if line not in self.seen:
                    self.seen.add(line)
                    self.console.note(line, worker=worker)
            return
        if event["event"] == "begin":  # each child's view of the start: the parent gave it
            self.starting.done(worker)
            return
        if event["event"] == "start":
            self.training[worker][event["trial"]] = event
            if worker not in self.progressed:  # its first trial: Keras' import, the data
                self.starting.started(worker)
        if event["event"] in ("epoch", "end"):
            self.progressed.add(worker)
            self.starting.done(worker)
        if event["event"] == "end":
            self.training[worker].pop(event["trial"], None)
            self.best.update_best(self.store, self.study)
            event = {**event, "best": self.best.best()}
        self.console.event(event, worker=worker)


def _stop(children: Iterable[subprocess.Popen]) -> None:
    """SIGINT every child (a terminal's Ctrl-C reaches them already; a kill of the parent
    alone does not), then wait; kill what does not stop in time."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
