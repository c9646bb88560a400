"""Storage writes that training does not wait for: done in order on one background thread.

A grid point's trial (Optuna's trial with its params, its number on the claim, the ``start``
event), its epoch rows, its attributes and its ending (Optuna's ``tell``, the claim marked
done, the checkpoint removed, the ``end`` event) are written while the worker goes on: it
builds and trains the point's model, claims the next point. What is left on the worker's
path per trial is the claim itself. On an accelerator the host's bookkeeping then overlaps
the device's work instead of leaving it idle between trials.

What stays true: the writes of one worker happen in the order they were asked for (a trial's
attributes before its ``tell``, its ``tell`` before its claim is marked done); a worker waits
for them before it looks at what others still train, before it gives a trial back and before
it returns. A write that fails stops the ones after it; the worker sees the error at its next
write, after its current batch (``failed``), or when it waits, and stops as it would have
stopped had it made the write itself. A worker killed with writes not made leaves its trial
running and its claim held: the next worker takes the point over as a dead worker's, from its
checkpoint (which is removed only once the claim is done).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator

import optuna

from sweep.run.progress import Overhead

_STOP = object()  # closes the thread


class Behind:
    """One worker's writes, made in order on a background thread (``put``), the time each
    took counted into an ``Overhead`` of the trial it belongs to."""

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._open = threading.Event()  # cleared while paused: no write starts
        self._open.set()

    @property
    def failed(self) -> bool:
        """Whether a write failed (the writes after it are not made)."""
        return self._error is not None

    def put(self, job: Callable[[], None], timed: Overhead | None = None) -> None:
        """Make ``job`` after the writes asked for before it, its time added to ``timed``.

        Raises:
            The error of a write that failed before.
        """
        self.check()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sweep-behind", daemon=True)
            self._thread.start()
        self._jobs.put((job, timed))

    def check(self) -> None:
        """Raise the error of a write that failed, if one did."""
        if self._error is not None:
            raise self._error

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No write starts for the duration (the worker claims and starts a point, which it
        waits for: the writes would only take turns with it for the interpreter); ``flush``
        and ``wait`` must not be called inside."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def flush(self) -> None:
        """Wait until every write asked for is made; raise the error of one that failed."""
        self.wait()
        self.check()

    def wait(self) -> BaseException | None:
        """Wait until every write asked for is made (or left out after a failure); the
        error of the one that failed, or None."""
        self._jobs.join()
        return self._error

    def close(self) -> None:
        """Wait for the writes asked for and end the thread (``put`` starts a new one)."""
        if self._thread is not None:
            self._jobs.put((_STOP, None))
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            job, timed = self._jobs.get()
            try:
                if job is _STOP:
                    return
                if self._error is None:  # after a failure: left out
                    self._open.wait()
                    self._make(job, timed)
            finally:
                self._jobs.task_done()

    def _make(self, job: Callable[[], None], timed: Overhead | None) -> None:
        if timed is not None:
            timed.add()
        try:
            job()
        except BaseException as err:  # noqa: BLE001 -- handed to the worker's thread
            self._error = err
        finally:
            if timed is not None:
                timed.stop()


class TrialBehind(optuna.Trial):
    """A grid point's ``optuna.Trial`` that the writes behind the worker make (``Behind``),
    Optuna's own ``__init__`` run on it there: until then, reading
    any of the attributes that sets waits for it, so the worker builds and trains the
    point's model meanwhile and waits only where it needs the trial (the tensorboard folder
    named after its number, a pruner's report, the end of training), that wait timed into
    ``waited``. Its creation failing, the worker's next use raises that error."""

    _behind: Behind
    _made: threading.Event
    _waited: Overhead

    def __init__(self, behind: Behind, waited: Overhead) -> None:  # Optuna's: behind
        self.__dict__.update(_behind=behind, _made=threading.Event(), _waited=waited)

    def made(self) -> None:
        """Optuna's ``__init__`` has run on this object and its start is said (behind)."""
        self._made.set()

    def exists(self) -> bool:
        """Whether ``made`` was called: False after a failure behind that came first."""
        return self._made.is_set()

    def __getattr__(self, name: str) -> object:  # only for attributes not set yet
        if name.startswith("__"):
            raise AttributeError(name)
        if not self._made.is_set():
            self._waited.add()
            try:
                while not self._made.wait(0.05):
                    self._behind.check()  # the writes behind failed: the trial is not made
            finally:
                self._waited.stop()
        return object.__getattribute__(self, name)
