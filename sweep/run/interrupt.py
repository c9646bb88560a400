"""Ctrl-C during training, delivered between training steps; SIGTERM (``kill``, Slurm's
preemption and time limit) and SIGHUP (a closed terminal) stop a run the same way.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives;
inside TensorFlow's Python layers that can land in code that prints the exception and goes
on. While a trial trains, ``DeferredInterrupt`` only records the request, and training asks
``requested`` after each batch and stops there (train.py); outside training, and on a second
Ctrl-C, it interrupts at once as usual.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType


# The signals that stop a run as Ctrl-C does (SIGHUP: where the system has it)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


@contextmanager
def stop_signals(handler: Callable = signal.default_int_handler) -> Iterator[None]:
    """Handle every one of ``STOP_SIGNALS`` with ``handler`` for the duration (by default:
    KeyboardInterrupt, as Ctrl-C); main thread only, elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class DeferredInterrupt:
    def __init__(self) -> None:
        self.requested = False
        self._training = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._training and not self.requested:
            self.requested = True  # training raises KeyboardInterrupt after this batch
            return
        self.requested = True
        raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[DeferredInterrupt]:
        """Handle the ``STOP_SIGNALS`` this way for the duration (main thread only)."""
        with stop_signals(self._handler):
            yield self

    @contextmanager
    def training(self) -> Iterator[None]:
        """The section in which a first Ctrl-C waits for the end of the current batch."""
        self._training = True
        try:
            yield
        finally:
            self._training = False
