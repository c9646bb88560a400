"""GPU benchmark: a conv_width-style grid on one GPU with K = 1, 2, 4, 8 trials per GPU.

For each K, ``sweep run --gpus 0 --trials-per-gpu K`` trains the same 8-point grid (pooling x
kernel x dropout on the conv_width base model, batch 32) on CIFAR-10-sized data (50,000 train
and 10,000 test random 32x32x3 images: GPU machines here have no network, and the timing does
not depend on the pixels). It prints trials per hour and the mean GPU utilisation sampled by
``nvidia-smi`` every half second, and, for K = 1, the median seconds per epoch (after the
first, which includes compilation). Run with a backend the machine has:
``KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/bench_gpu.py`` (``make bench-gpu``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

GRID = {"model.pooling": ["max", "avg"], "model.kernel": [3, 5], "model.dropout": [0.0, 0.25]}


def make_data(path: Path, n_train: int, n_test: int) -> None:
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (n_train, 32, 32, 3), np.uint8),
             y_train=rng.integers(0, 10, n_train), x_test=rng.integers(0, 256, (n_test, 32, 32, 3),
                                                                          np.uint8),
             y_test=rng.integers(0, 10, n_test))


def study_file(folder: Path, data: Path, epochs: int) -> Path:
    study = {
        "name": "bench_gpu",
        "dataset": {"name": "npz", "path": str(data), "validation_split": 0.1},
        "model": {"filters": [32, 64, 64], "kernel": 3, "pooling": "max", "dense": [64]},
        "training": {"batch_size": 32, "epochs": epochs},
        "search": {"sampler": "grid", "params": GRID},
    }
    path = folder / "bench_gpu.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def sample_utilisation(stop: threading.Event, samples: list[float]) -> None:
    """GPU 0's utilisation in percent, every half second, until ``stop`` is set."""
    while not stop.wait(0.5):
        out = subprocess.run(["nvidia-smi", "-i", "0", "--query-gpu=utilization.gpu",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            samples.append(float(out.stdout.strip()))


def run_k(study: Path, folder: Path, k: int) -> tuple[float, float, Path]:
    """Seconds for the whole grid at K trials per GPU, mean utilisation, and the database."""
    db = folder / f"k{k}.db"
    stop, samples = threading.Event(), []
    sampler = threading.Thread(target=sample_utilisation, args=(stop, samples))
    sampler.start()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sweep.cli", "run", str(study), "--storage",
                    f"sqlite:///{db}", "--gpus", "0", "--trials-per-gpu", str(k),
                    "--checkpoint-dir", str(folder / f"ck{k}")], check=True, cwd=folder)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    return seconds, statistics.fmean(samples) if samples else float("nan"), db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_gpu.py", description=__doc__)
    parser.add_argument("--ks", default="1,2,4,8", help="trials per GPU to try (default 1,2,4,8)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    args = parser.parse_args(argv)
    from sweep.store import epochs_frame, open_storage

    trials = int(np.prod([len(v) for v in GRID.values()]))
    rows = []
    with tempfile.TemporaryDirectory(prefix="sweep-bench-gpu-") as tmp:
        folder = Path(tmp)
        make_data(folder / "cifar_sized.npz", 50_000, 10_000)
        study = study_file(folder, folder / "cifar_sized.npz", args.epochs)
        for k in (int(x) for x in args.ks.split(",")):
            seconds, utilisation, db = run_k(study, folder, k)
            rows.append((k, seconds, trials / seconds * 3600, utilisation))
            if k == 1:
                store = open_storage(f"sqlite:///{db}")
                epochs = epochs_frame(store, store.get_study_id_from_name("bench_gpu"))
                per_epoch = epochs[epochs.epoch > 1].seconds.median()
    base = rows[0][2]
    print(f"bench-gpu: {trials} trials x {args.epochs} epochs, conv_width base model, batch 32,"
          " 45,000 train / 5,000 val / 10,000 test images of 32x32x3")
    print(f"{'K':>3}  {'seconds':>8}  {'trials/h':>9}  {'vs K=1':>7}  {'GPU util %':>10}")
    for k, seconds, per_hour, utilisation in rows:
        print(f"{k:>3}  {seconds:8.1f}  {per_hour:9.1f}  {per_hour / base:7.2f}  "
              f"{utilisation:10.1f}")
    if rows[0][0] == 1:
        print(f"seconds per epoch at K=1 (median after the first): {per_epoch:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
