"""Growing a study against training it again: the quickstart study (6 points on digits) is
trained for 10 epochs, then grown to 20 (its trials continue from their kept models), and,
in the same run, the 20-epoch study is trained from scratch into another database.

Run ``make bench-grow`` (``python benchmarks/bench_grow.py``); it prints both times, their
ratio, the epochs each trained, and the disk the kept models take.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path


def run(spec, url: str, folder: Path) -> tuple[float, int]:
    """Seconds of one ``run_sweep`` call, and how many trials it ran."""
    from sweep.run import run_sweep

    started = time.perf_counter()
    result = run_sweep(spec, url, artifact_dir=None, checkpoint_dir=folder / "checkpoints",
                       on_event=lambda event: None)  # no progress lines
    return time.perf_counter() - started, result.ran


def with_epochs(spec, epochs: int):
    training = spec.config["training"] | {"epochs": epochs, "snapshots": [epochs]}
    return dataclasses.replace(spec, config=spec.config | {"training": training})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_grow.py", description=__doc__)
    parser.add_argument("--study", default="quickstart", help="a study name or file")
    parser.add_argument("--epochs", default="10,20", help="first and grown epochs (10,20)")
    args = parser.parse_args(argv)
    first, grown = (int(x) for x in args.epochs.split(","))
    from sweep.study import load_study

    spec = load_study(args.study)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-grow-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'grown.db'}"
        t_first, n = run(with_epochs(spec, first), url, folder)
        t_grow, n_grown = run(with_epochs(spec, grown), url, folder)
        scratch = folder / "scratch"
        t_scratch, _ = run(with_epochs(spec, grown), f"sqlite:///{folder / 'scratch.db'}",
                           scratch)
        kept = list((folder / "checkpoints" / spec.name / "trials").glob("*.keras"))
        size = sum(f.stat().st_size for f in kept) / len(kept)
    print(f"bench-grow: {spec.name}, {n} trials, {first} -> {grown} epochs, {os.cpu_count()} "
          "CPU cores")
    print(f"  first run, {first} epochs:          {t_first:7.1f} s")
    print(f"  grown to {grown} (+{grown - first} epochs each): {t_grow:7.1f} s "
          f"({n_grown} trials continued)")
    print(f"  from scratch, {grown} epochs:       {t_scratch:7.1f} s")
    print(f"  growing / from scratch:          {t_grow / t_scratch:7.2f}")
    print(f"  kept model per trial:            {size / 1024:7.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
