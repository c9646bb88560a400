"""Stage 7, running: workers claim points (``sweep.store.claims``) of a prepared study
(``prepared``), train them one at a time (``worker``), tell what they do as events
(``progress``) that one console shows, live on a terminal (``console``), stop between
batches on Ctrl-C (``interrupt``), keep framework start-up banners off the screen
(``quiet``), and run as local processes pinned to GPUs or cores (``local``); ``session``
runs a whole study, here or on local workers, to its summary.

Nothing here imports Keras at import time; a worker loads it with its first trial.
"""

from sweep.run.console import SweepConsole, sweep_console
from sweep.run.local import run_workers
from sweep.run.prepared import PreparedRun, prepare
from sweep.run.progress import SweepResult
from sweep.run.worker import run_sweep

__all__ = ["PreparedRun", "SweepConsole", "SweepResult", "prepare", "run_sweep", "run_workers",
           "sweep_console"]
