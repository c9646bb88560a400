"""How often the answer says a knob "matters" (issue 35): on pure noise (it must be at most
5 %, 6.5 % with sampling slack) and with a real effect of 3 noise standard deviations (the
knob's last value above the rest), beside the rule used before: the best value against the
worst by a 95 % t-interval of their paired differences (paired over the other axes and the
seeds), both picked after looking.

Run ``make bench-verdicts`` (``python benchmarks/bench_verdicts.py [--studies N]``). The
designs are the issue's table (a knob of k values, another axis, one run per point or three
seeds), then those of the suite's simulation (tests/report/test_verdicts.py). The noise is
normal; the other axis has an effect of its own (0.5 SD per value).
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
import pandas as pd
from scipy.stats import t as student

from sweep.report.effects import MATTERS, Design, axis_codes, fit_knob

ISSUE = [(2, (3,), 1), (3, (2,), 1), (4, (3,), 1), (4, (3,), 3), (5, (2,), 3)]
SUITE = [(k, o, r) for k in range(2, 7) for o in [(3,), (3, 2)] for r in (1, 3)]


def grid(k: int, others: tuple[int, ...], repeats: int) -> tuple[pd.DataFrame, tuple]:
    names = ["knob", *[f"other{i}" for i in range(len(others))], "seed"]
    frame = pd.DataFrame(itertools.product(range(k), *map(range, others), range(repeats)),
                         columns=names)
    return frame, tuple(names if repeats > 1 else names[:-1])


def before(frame: pd.DataFrame, y: np.ndarray) -> bool:
    """The old rule: the best value's mean against the worst's, a 95 % t-interval over their
    differences paired on every other axis (and seed); "matters" when it excludes 0."""
    cells = frame.assign(y=y).pivot_table(index=[c for c in frame if c != "knob"],
                                          columns="knob", values="y")
    means = cells.mean()
    diffs = cells[means.idxmax()] - cells[means.idxmin()]
    if len(diffs) < 2:
        return False
    half = student.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs))
    return abs(diffs.mean()) > half


def shares(k: int, others: tuple[int, ...], repeats: int, effect: float, studies: int,
           seed: int) -> tuple[float, float]:
    """The share said to matter by the old rule and by the answer's F-test."""
    frame, axes = grid(k, others, repeats)
    codes = axis_codes(frame, axes)
    truth = 0.5 * frame.get("other0", 0) + effect * (frame["knob"] == k - 1)
    noise = np.random.default_rng(seed).normal(size=(studies, len(frame)))
    old = new = 0
    for e in noise:
        y = truth.to_numpy(dtype=float) + e
        old += before(frame, y)
        new += fit_knob(y, codes, "knob", axes, Design()).test()[0] == MATTERS
    return old / studies, new / studies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000, help="simulated per design")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"bench-verdicts: {args.studies} simulated studies per design and effect; share of "
          "studies in which the knob is said to matter")
    print(f"  {'knob values':>11} {'other axes':>10} {'runs':>4} | {'noise: before':>13} "
          f"{'after':>6} | {'3 SD: before':>12} {'after':>6}")
    for i, (k, others, repeats) in enumerate(dict.fromkeys(ISSUE + SUITE)):
        null = shares(k, others, repeats, 0.0, args.studies, seed=2 * i)
        real = shares(k, others, repeats, 3.0, args.studies, seed=2 * i + 1)
        shape = " x ".join(map(str, others))
        print(f"  {k:>11} {shape:>10} {repeats:>4} | {null[0]:>13.1%} {null[1]:>6.1%} | "
              f"{real[0]:>12.1%} {real[1]:>6.1%}")
        if i == len(ISSUE) - 1:
            print("  " + "-" * 70 + " (above: the issue's table; below: the suite's designs)")
    print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
