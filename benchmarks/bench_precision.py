"""Benchmark: the same trial in float32 and under Keras' mixed precision policies.

One point of the seed notebooks' first CIFAR-10 model (conv 32-64-64, dense 64; Adam 1e-3,
batch 32) trained by sweep's own ``build_model`` and ``train`` with the same seed and data,
once per ``training.precision``; it prints seconds per epoch (the first epoch, which traces
the step, apart), the test accuracy after the last epoch, and the speed ratio to float32.
Mixed precision pays where the hardware computes in 16 bits (AMX / AVX-512 BF16 CPUs, GPUs
with tensor cores) and costs elsewhere.

``make bench-precision`` (``python benchmarks/bench_precision.py [--epochs E] [--data PATH]``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sweep.defaults import set_framework_env  # noqa: E402

set_framework_env()  # as a `sweep` process, before Keras loads

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10-sample"
MODEL = {"filters": [32, 64, 64], "kernel": 3, "pooling": "max", "pool_last": False,
         "pool_after": None, "transition": None, "padding": "valid", "dropout": 0.0,
         "batch_norm": False, "head": "flatten", "dense": [64], "block": "conv"}
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_precision.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", help=f"an image folder (default: {SAMPLE} if present, "
                                       "else digits)")
    parser.add_argument("--policy", action="append", choices=POLICIES,
                        help="repeatable (default: every policy)")
    args = parser.parse_args(argv)
    import keras

    from sweep.data import load_dataset
    from sweep.models import build_model
    from sweep.study import TrainingConfig
    from sweep.training import train
    from sweep.training.device import device_description

    folder = Path(args.data) if args.data else SAMPLE
    cfg = ({"name": "folder", "path": str(folder)} if folder.is_dir() else {"name": "digits"})
    data = load_dataset(cfg | {"validation_split": 0.1, "max_train": None, "label_mode": "fine"},
                        0)
    print(f"bench_precision: {cfg['name']} train {data.x_train.shape}, {args.epochs} epochs, "
          f"device {device_description()}, keras {keras.__version__} "
          f"({keras.backend.backend()})")
    rows = {}
    for policy in args.policy or POLICIES:
        keras.utils.set_random_seed(0)
        model = build_model(MODEL, data.input_shape, data.num_classes, precision=policy)
        result = train(
            model,
            data,
            TrainingConfig(
                optimizer="adam", learning_rate=1e-3, batch_size=32, epochs=args.epochs
            ),
        )
        seconds = [r["seconds"] for r in result.epochs]
        rows[policy] = (seconds[0], statistics.mean(seconds[1:] or seconds),
                        result.snapshots[args.epochs]["test_accuracy"])
    base = rows.get("float32", next(iter(rows.values())))[1]
    print(f"{'precision':<16} {'epoch 1 s':>9} {'epoch s':>8} {'speed':>6} {'test acc':>8}")
    for policy, (first, per_epoch, accuracy) in rows.items():
        print(f"{policy:<16} {first:9.2f} {per_epoch:8.2f} {base / per_epoch:5.2f}x "
              f"{accuracy:8.4f}")
    print("speed: float32's seconds per epoch / this policy's (epochs 2 and on)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
