"""Benchmark: how soon ``make sweep`` shows its first epoch (issue 37).

``sweep run quickstart`` (the default study, as ``make sweep`` runs it: default workers, a
fresh SQLite file) in a whole process; the seconds from its start to its first ``epoch 1/``
line, then the run and its workers are stopped. With ``--compare CHECKOUT`` (repeatable) the
same for other checkouts of sweep (their ``PYTHONPATH`` and their own study file), the sides
alternated; medians and each run are printed.

``python benchmarks/bench_first_epoch.py [--repeats 3] [--compare ../before]``
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def first_epoch(root: Path, folder: Path) -> float:
    """Seconds from starting ``sweep run quickstart`` of checkout ``root`` to its first epoch
    line; the process group is stopped then."""
    folder.mkdir(parents=True)
    started = time.perf_counter()
    run = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "run", str(root / "studies" / "quickstart.yaml"),
         "--storage", f"sqlite:///{folder / 'sweeps.db'}", "--checkpoint-dir",
         str(folder / "checkpoints"), "--artifact-dir", str(folder / "artifacts")],
        cwd=folder, env=dict(os.environ, PYTHONPATH=str(root)), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert run.stdout is not None
    try:
        for line in run.stdout:
            if "epoch 1/" in line:
                return time.perf_counter() - started
        raise SystemExit(f"bench_first_epoch: {root}'s run ended without an epoch line")
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the run and its workers
        run.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", type=Path, action="append", default=[],
                        metavar="CHECKOUT", help="another checkout of sweep (repeatable)")
    args = parser.parse_args()
    sides = {"this checkout": REPO} | {str(c): c.resolve() for c in args.compare}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for k, (name, root) in enumerate(sides.items()):
                seconds[name].append(first_epoch(root, Path(tmp) / f"run{i}-{k}"))
                print(f"run {i + 1} {name:24s} first epoch line at {seconds[name][-1]:6.2f} s",
                      flush=True)
    print("seconds to the first epoch line of `sweep run quickstart` (median, then each run)")
    for name, runs in seconds.items():
        print(f"  {name:24s} {statistics.median(runs):6.2f}   "
              f"[{' '.join(f'{s:.2f}' for s in runs)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
