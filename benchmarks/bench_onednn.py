"""Benchmark: the same trial with TensorFlow's oneDNN kernels off and on, one thread and all.

``sweep`` turns TensorFlow's oneDNN kernels on for its processes on x86-64
(``sweep.defaults.set_framework_env``): TensorFlow turns them on by itself only on CPUs with
AVX-512 VNNI, bf16 or AMX. This runs ``bench_precision.py``'s float32 trial (the seed
notebooks' first CIFAR-10 model through sweep's ``build_model`` and ``train``) in a fresh
process per setting, since TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` when it loads, with the
threads of one trial at a time (all cores) and of an auto worker (one), and prints seconds per
epoch, the test accuracy and the speed against TensorFlow's own default.

``make bench-onednn`` (``python benchmarks/bench_onednn.py [--epochs E] [--repeat R]``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sweep.defaults import ONEDNN_ENV  # noqa: E402

PRECISION = Path(__file__).resolve().parent / "bench_precision.py"
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "OMP_NUM_THREADS": "1"}


def trial(onednn: str, threads: dict, epochs: int) -> tuple[float, float, float]:
    """(first epoch s, later epochs' mean s, test accuracy) of one fresh process."""
    env = os.environ | threads | {ONEDNN_ENV: onednn}  # the rest: set_framework_env's
    done = subprocess.run([sys.executable, str(PRECISION), "--policy", "float32",
                           "--epochs", str(epochs)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_onednn: the trial failed:\n{done.stderr[-3000:]}")
    row = next(line for line in done.stdout.splitlines() if line.startswith("float32 "))
    first, per_epoch, _speed, accuracy = row.split()[1:]
    return float(first), float(per_epoch), float(accuracy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_onednn.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="processes per setting")
    args = parser.parse_args(argv)
    print(f"bench_onednn: {os.cpu_count()} cores, {args.epochs} epochs, "
          f"{args.repeat} process(es) per setting, medians")
    print(f"{'threads':<8} {'oneDNN':<7} {'epoch 1 s':>9} {'epoch s':>8} {'speed':>6} "
          f"{'test acc':>8}")
    for name, threads in (("all", {}), ("one", ONE_THREAD)):
        runs = {"0": [], "1": []}
        for _ in range(args.repeat):  # alternated, so a slow spell of the host hits both
            for onednn, done in runs.items():
                done.append(trial(onednn, threads, args.epochs))
        rows = {k: [statistics.median(column) for column in zip(*done, strict=True)]
                for k, done in runs.items()}
        for onednn, (first, per_epoch, accuracy) in rows.items():
            print(f"{name:<8} {'on' if onednn == '1' else 'off':<7} {first:9.2f} "
                  f"{per_epoch:8.2f} {rows['0'][1] / per_epoch:5.2f}x {accuracy:8.4f}")
    print("speed: seconds per epoch (epochs 2 and on) with oneDNN off / with this setting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
