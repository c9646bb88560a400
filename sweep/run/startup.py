"""A worker process that stays quiet as it starts: said, with what it is doing.

A worker imports sweep, opens the storage and prepares the study (its ``begin`` event); then,
for its first trial, imports Keras and its backend, loads the data, builds and compiles the
model and trains the first epoch. A worker stuck in either stretch (a GPU driver that hangs
on import, a lock on a cache folder, a network file system that does not answer) would leave
the run silent. So the parent watches each worker through those two stretches (not while it
waits for other workers' points, nor in later trials, whose epochs may be long): once a
stretch has lasted ``QUIET_S`` seconds while the worker used almost no CPU (it waits on
something), or ``BUSY_S`` in any case, one line says so, with its CPU time and, where the
system tells (Linux's ``/proc``), the kernel function it waits in; then again at twice the
time.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

QUIET_S = 30.0  # starting this long on almost no CPU is said
BUSY_S = 120.0  # starting this long is said, however busy
IDLE_SHARE = 0.1  # "almost no CPU": less than this share of one core since the last look


@dataclass
class _Starting:
    pid: int
    since: float  # time.monotonic() at its start
    due: float  # seconds of starting after which it is looked at next
    cpu_s: float = 0.0  # its CPU time at the last look
    looked: float = 0.0  # time.monotonic() at the last look (its start before the first)


class StartupWatch:
    """The workers in one of the two stretches of their start."""

    def __init__(self) -> None:
        self._starting: dict[int, _Starting] = {}
        self._pids: dict[int, int] = {}  # each worker's process

    def started(self, worker: int, pid: int | None = None) -> None:
        """Worker ``worker`` begins a stretch: as process ``pid`` (a new process), or its
        second stretch in the process it is (None)."""
        self._pids[worker] = pid = self._pids[worker] if pid is None else pid
        now = time.monotonic()
        self._starting[worker] = _Starting(pid, now, QUIET_S, looked=now)

    def done(self, worker: int) -> None:
        """Worker ``worker`` ended a stretch (its ``begin``, its first epoch) or exited."""
        self._starting.pop(worker, None)

    def overdue(self) -> list[tuple[int, str]]:
        """``(worker, line)`` for each worker to say as still starting now."""
        lines, now = [], time.monotonic()
        for worker, s in self._starting.items():
            starting = now - s.since
            if starting < s.due:
                continue
            cpu = cpu_seconds(s.pid)
            busy = cpu is not None and cpu - s.cpu_s >= IDLE_SHARE * (now - s.looked)
            s.cpu_s, s.looked = (cpu if cpu is not None else s.cpu_s), now
            if busy and starting < BUSY_S:
                s.due = starting + QUIET_S  # working: looked at again later
                continue
            s.due = 2 * starting
            lines.append((worker, f"(pid {s.pid}) still starting after {starting:.0f} s; "
                                  f"{_doing(s.pid, cpu, busy)}"))
        return lines


def cpu_seconds(pid: int) -> float | None:
    """The CPU time process ``pid`` has used, or None where the system does not say."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _doing(pid: int, cpu: float | None, busy: bool) -> str:
    """What a starting worker does, in words."""
    if cpu is None:
        return "it imports Keras, opens the storage, loads the data and builds its model"
    if busy:
        return (f"busy ({cpu:.0f} s of CPU: importing Keras, loading the data, building or "
                "training its first epoch)")
    try:
        with open(f"/proc/{pid}/wchan") as wchan:
            where = wchan.read().strip()
    except OSError:
        where = ""
    waits = f", waiting in the kernel's {where}" if where and where != "0" else ""
    return (f"using almost no CPU ({cpu:.1f} s in all{waits}): it waits on something (a lock, "
            f"a network connection or file system, a device); `py-spy dump --pid {pid}` "
            "shows where")
