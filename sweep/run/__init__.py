"""Stage 7, running: workers claim points (``claims``, with a heartbeat), train them one at a
time (``worker``) from a prepared ``plan``, print progress (``progress``), stop between batches on Ctrl-C
(``interrupt``), and run as local processes pinned to GPUs or cores (``local``).

Nothing here imports Keras at import time; a worker loads it with its first trial.
"""

from sweep.run.local import run_workers
from sweep.run.progress import SweepResult
from sweep.run.plan import Plan, prepare
from sweep.run.worker import run_sweep

__all__ = ["Plan", "SweepResult", "prepare", "run_sweep", "run_workers"]
