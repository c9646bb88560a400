"""Fused training against the same models one by one, and against the default path.

K copies of the seeds' CIFAR-10 model (122,570 parameters, batch 32; seeds and learning rates
differ) train on CIFAR-10-shaped random images (the timing does not depend on the pixels):

- fused: one ``FusedGroup`` of K (``sweep/training/fused.py``), one program;
- one by one: K groups of 1, the same JAX step, one after the other;
- default: one model through ``sweep.training.fit.train`` (Keras' ``fit``) under TensorFlow
  in a child process, times K (skipped where TensorFlow is missing, as on the GPU machines).

Each figure is the median of the timed epochs, after one untimed epoch (compilation). It prints
seconds per epoch of all K models and model-epochs per hour, side by side.
``make bench-fused`` runs it on this machine; ``benchmarks/gpu_check.py`` runs it on a GPU
with K up to 64.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SEED_MODEL = {"filters": [32, 64, 64], "kernel": 3, "pooling": "max", "padding": "valid",
              "dropout": 0.0, "batch_norm": False, "dense": [64]}


def dataset(n_train: int, n_val: int):
    from sweep.data import Dataset

    rng = np.random.default_rng(0)
    x = rng.random((n_train + n_val, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, n_train + n_val).astype(np.int32)
    return Dataset("random", x[:n_train], y[:n_train], x[n_train:], y[n_train:], x[n_train:],
                   y[n_train:], 10)  # the test images (a snapshot's) are the validation's


def _config(rate: float, epochs: int):
    from sweep.study import TrainingConfig

    return TrainingConfig(optimizer="adam", learning_rate=rate, batch_size=32, epochs=epochs)


def members(k: int, data, epochs: int) -> list:
    import keras

    from sweep.models import build_model
    from sweep.training.fused import Member

    out = []
    for seed in range(k):
        keras.utils.set_random_seed(seed)
        model = build_model(SEED_MODEL, data.input_shape, data.num_classes, seed=seed)
        out.append(Member(model, _config(0.001 * (1 + seed % 4), epochs), seed, data))
    return out


def fused_epoch_s(k: int, data, epochs: int) -> float:
    """Median seconds of a fused epoch of ``k`` members, after one untimed epoch."""
    from sweep.training.fused import FusedGroup

    group = FusedGroup(members(k, data, epochs + 1))
    group.train_epoch()
    return statistics.median(group.train_epoch()[0]["seconds"] for _ in range(epochs))


def default_epoch_s(n_train: int, n_val: int, epochs: int) -> float | None:
    """Median seconds of an epoch of one model through ``train`` under TensorFlow, in a
    child process (a process has one Keras backend); None without TensorFlow."""
    code = (f"import sys; sys.argv = ['x']; import benchmarks.bench_fused as b; "
            f"print(b.fit_epoch_s({n_train}, {n_val}, {epochs}))")
    env = os.environ | {"KERAS_BACKEND": "tensorflow"}
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, cwd=Path(__file__).resolve().parents[1])
    if child.returncode != 0:
        return None
    return float(child.stdout.strip().splitlines()[-1])


def fit_epoch_s(n_train: int, n_val: int, epochs: int) -> float:
    """Median seconds of an epoch of one model through ``train`` (Keras' fit: a trial's
    path) under this process's backend, after one untimed epoch."""
    from sweep.models import build_model
    from sweep.training import train

    data = dataset(n_train, n_val)
    model = build_model(SEED_MODEL, data.input_shape, data.num_classes, seed=0)
    result = train(model, data, _config(0.001, epochs + 1))
    return statistics.median(r["seconds"] for r in result.epochs[1:])


def measure(ks: list[int], n_train: int, n_val: int, epochs: int,
            one_by_one: bool = True, default: bool = True) -> list[dict]:
    """One row per K: seconds per epoch of all K models fused, one by one, and by default."""
    data = dataset(n_train, n_val)
    single = fused_epoch_s(1, data, epochs)
    reference = default_epoch_s(n_train, n_val, epochs) if default else None
    rows = []
    for k in ks:
        started = time.perf_counter()
        fused = single if k == 1 else fused_epoch_s(k, data, epochs)
        rows.append({"k": k, "fused_s": fused, "one_by_one_s": single * k if one_by_one else None,
                     "default_s": reference * k if reference is not None else None,
                     "model_epochs_per_h": k * 3600 / fused,
                     "speedup": single * k / fused,
                     "measured_in_s": time.perf_counter() - started})
    return rows


def table(rows: list[dict], n_train: int, device: str) -> str:
    lines = [f"K copies of the seeds' CIFAR-10 model (122,570 params), batch 32, {n_train:,} "
             f"images of 32x32x3 per epoch, on {device}",
             f"{'K':>3}  {'fused s/epoch':>13}  {'one by one':>10}  {'default (TF)':>12}  "
             f"{'model-epochs/h':>14}  {'fused vs one by one':>19}"]
    for r in rows:
        one = f"{r['one_by_one_s']:.2f}" if r["one_by_one_s"] is not None else "-"
        tf = f"{r['default_s']:.2f}" if r["default_s"] is not None else "-"
        lines.append(f"{r['k']:>3}  {r['fused_s']:13.2f}  {one:>10}  {tf:>12}  "
                     f"{r['model_epochs_per_h']:14.0f}  {r['speedup']:18.2f}x")
    lines.append("one by one: K groups of 1 (the same JAX step), K x its epoch; default: one "
                 "model through Keras' fit under TensorFlow, x K")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_fused.py", description=__doc__)
    parser.add_argument("--ks", default="1,2,4,8", help="group sizes (default 1,2,4,8)")
    parser.add_argument("--n-train", type=int, default=4096)
    parser.add_argument("--n-val", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (default 2)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    import jax

    rows = measure([int(k) for k in args.ks.split(",")], args.n_train, args.n_val, args.epochs)
    print(table(rows, args.n_train, str(jax.devices()[0])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
