"""Framework start-up banners, kept off the user's screen.

TensorFlow's C++ code writes its start-up notes (oneDNN, CUDA probing, CPU instructions, on a
GPU each device it creates) straight to file descriptor 2, before its logging is set up, so
``TF_CPP_MIN_LOG_LEVEL`` does not reach them; every worker process would print them. While a
worker trains, ``native_banners_filtered`` points descriptor 2 at a pipe whose reader drops
those notes (native info and warning lines) and passes everything else on, native errors
included; Python's own ``sys.stderr`` keeps writing to the terminal directly, so the live
view is not delayed.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

# Native log lines of level I(nfo) or W(arning), absl's "I0000 00:00:1796161037.45 25427
# port.cc:153] ..." and older TensorFlow's "2024-05-01 12:00:00.123: I tensorflow/... ] ...".
BANNER = re.compile(
    r"[IW]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] .*"
    r"|\d{4}-\d\d-\d\d [\d:.]+: [IW] \S+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* with the appropriate compiler flags\.")


def is_banner(line: str) -> bool:
    """Whether a line of native stderr is a framework's start-up note, not news."""
    return BANNER.fullmatch(line.rstrip("\n")) is not None


@contextmanager
def native_banners_filtered() -> Iterator[None]:
    """Filter descriptor 2 for the duration (see the module docstring). A no-op where
    ``sys.stderr`` is not descriptor 2 (a test's capture, a notebook)."""
    try:
        if sys.stderr.fileno() != 2:
            raise io.UnsupportedOperation
    except (AttributeError, ValueError, io.UnsupportedOperation):
        yield
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    python_stderr = sys.stderr
    sys.stderr = open(terminal, "w", buffering=1, closefd=False, errors="backslashreplace")
    reader = threading.Thread(target=_pass_on, args=(read_end, os.dup(terminal)), daemon=True)
    reader.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(terminal, 2)  # closes the pipe's last write end: the reader sees its end
        reader.join(timeout=5)
        os.close(terminal)


def _pass_on(read_end: int, terminal: int) -> None:
    """Copy the pipe's lines to the terminal but the banners, until the pipe ends."""
    with open(read_end, "rb") as lines, open(terminal, "wb", buffering=0) as out:
        for line in lines:
            if not is_banner(line.decode(errors="replace")):
                out.write(line)
