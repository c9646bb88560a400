"""A worker's training behind its own bookkeeping in the CPU's queue.

Workers that share a machine's cores (``sweep run --workers N``, a job's trials per GPU)
each train in the backend's native threads (TensorFlow's ``tf_Compute`` pool, torch's and
XLA's) while their Python thread claims points and records results. With more workers than
cores a worker's bookkeeping waits for a core behind the others' training: on 2 cores, 8
workers took ~5x their CPU time in wall time for it, and the next trial started that much
later. With ``SWEEP_TRAINING_NICE=N`` in its environment (the parent of more local workers
than cores sets 10) a worker runs its native threads at nice N: its Python threads keep the
process's own priority and get a core at once; training, every worker's at the same nice,
shares the cores as before. Linux only (a thread's nice is its own there); elsewhere nothing
changes.
"""

from __future__ import annotations

import os
import sys
import threading

from sweep.defaults import TRAINING_NICE_ENV


def lower_native_threads() -> int:
    """Set every thread of this process that Python did not start to the nice of
    ``SWEEP_TRAINING_NICE`` (where it is lower); returns how many changed. Asked again as
    training starts and after each epoch: the backend starts threads as it needs them."""
    nice = int(os.environ.get(TRAINING_NICE_ENV) or 0)
    if nice <= 0 or not sys.platform.startswith("linux"):
        return 0
    python = {thread.native_id for thread in threading.enumerate()}
    changed = 0
    for entry in os.scandir("/proc/self/task"):
        tid = int(entry.name)
        if tid in python:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                changed += 1
        except OSError:  # the thread ended meanwhile
            continue
    return changed
