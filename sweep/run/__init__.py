"""Stage 7, running: workers claim points (``claims``, with a heartbeat), train them one at a
time (``worker``), print progress (``progress``), stop between batches on Ctrl-C
(``interrupt``), and run as local processes pinned to GPUs or cores (``local``).

Nothing here imports Keras at import time; a worker loads it with its first trial.
"""

from sweep.run.local import run_workers
from sweep.run.progress import SweepResult
from sweep.run.worker import prepare, run_sweep

__all__ = ["SweepResult", "prepare", "run_sweep", "run_workers"]
