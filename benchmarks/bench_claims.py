"""Benchmark: many workers, one database (issue 15, point 5).

A throwaway PostgreSQL server (``tests/pg_server.py``, as the tests start it) holds a grid of
200 one-epoch points on digits with a tiny conv net; 8 local workers (``sweep run --workers
8``'s own ``run_workers``: 8 ``sweep worker`` processes, one thread each) sweep it. The
password reaches them as ``PGPASSWORD`` in their environment, never on a command line.

Printed from that one run:

- every point exactly once: complete trials per point (by its values) must all be 1, none
  missing, no other trial (failed, duplicate);
- the claim overhead per trial, from the workers' own events (``sweep.run.progress``):
  ``claim_s`` (claim, Optuna trial, params) + ``record_s`` (the time the worker waits to
  hand its epoch rows, attributes and result to the writes behind it, ``sweep.run.behind``),
  i.e. what a worker spends per trial on anything but training; median and p95, target
  <= 50 ms; for the first and the last 25 trials too (a cost that grows with the study
  shows); and the CPU time of the worker's thread in it: 8 workers on 2 cores wait for a
  core most of that wall time, while the other workers train. Beside it, ``behind_s``:
  those writes (epoch rows, attributes, result, claim done, best so far), made while the
  worker trains on, and the CPU time of all of it per trial;
- idle workers: per worker, the gaps between a trial's end and its next claim, and how long
  before the last point was claimed it stopped training (> 0: idle while points were left).

Reference, same run: 1 worker on the same server and 1 worker on SQLite, a 24-point study each.

``make bench-claims`` (``python benchmarks/bench_claims.py [--points 200] [--workers 8]
[--reference 24]``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the throwaway server, shared with the tests
from sweep.models import complete_spec  # noqa: E402
from sweep.run import run_workers  # noqa: E402
from sweep.run.prepared import prepare  # noqa: E402
from sweep.store import open_study  # noqa: E402
from sweep.study import load_study as load_study_file  # noqa: E402

from pg_server import throwaway_postgres  # noqa: E402

PASSWORD = "bench-claims-pw"  # the throwaway server's


def study_file(folder: Path, name: str, points: int) -> Path:
    """A grid of ``points`` one-epoch points (learning rate x pooling) on digits, conv 4."""
    rates = [round(1e-3 * (1 + i / points), 7) for i in range(points // 2)]
    study = {
        "name": name, "description": "bench_claims: many workers, one database",
        "dataset": {"name": "digits", "validation_split": 0.1},
        "model": {"filters": [4], "kernel": 3, "pooling": "max", "dense": []},
        "training": {"learning_rate": 0.001, "batch_size": 128, "epochs": 1},
        "search": {"sampler": "grid", "params": {"training.learning_rate": rates,
                                                 "model.pooling": ["max", "avg"]}},
        "objective": {"metric": "val_accuracy"}, "seed": 0,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


class Recorder:
    """A console for ``run_workers`` that keeps every event with its worker; notes (a
    worker's warnings) go to stderr."""

    def __init__(self):
        self.events: list[tuple[int | None, dict]] = []

    def event(self, event: dict, worker: int | None = None) -> None:
        self.events.append((worker, event))

    def note(self, text: str, worker: int | None = None) -> None:
        print(f"  worker {worker}: {text}", file=sys.stderr)


def sweep_with(url: str, path: Path, workers: int, folder: Path) -> tuple[Recorder, float]:
    """Run ``workers`` local workers on the study file ``path``; the events and seconds."""
    spec = load_study_file(str(path))
    prepared = prepare(complete_spec(spec), url, None)
    recorder, began = Recorder(), time.perf_counter()
    code = run_workers(spec, [str(path), "--checkpoint-dir", str(folder / "ck"),
                              "--artifact-dir", str(folder / "art")], url,
                       workers=workers, gpus=[], per_gpu=1, console=recorder, prepared=prepared)
    if code != 0:
        sys.exit(f"bench_claims: the workers exited with {code}")
    return recorder, time.perf_counter() - began


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return (f"median {1000 * statistics.median(values):6.1f} ms, p95 {1000 * p95:6.1f} ms, "
            f"max {1000 * values[-1]:6.1f} ms")


def overheads(recorder: Recorder) -> list[tuple[float, float, float, float, float, float]]:
    """``(claimed at, claim_s, record_s, CPU seconds of both, behind_s, CPU seconds of all
    three)`` of each trial, in the order they were claimed."""
    starts = {e["trial"]: e for _, e in recorder.events if e["event"] == "start"}
    ends = {e["trial"]: e for _, e in recorder.events if e["event"] == "end"}
    rows = []
    for n, end in ends.items():
        start = starts[n]
        cpu = start["claim_cpu_s"] + (end["record_cpu_s"] or 0.0)
        rows.append((start["at"], start["claim_s"], end["record_s"] or 0.0, cpu,
                     end.get("behind_s") or 0.0, cpu + (end.get("behind_cpu_s") or 0.0)))
    return sorted(rows)


def report_overhead(label: str, recorder: Recorder, seconds: float) -> list[float]:
    """Print the overhead per trial; returns each trial's, in the order they were claimed."""
    rows = overheads(recorder)
    total = [row[1] + row[2] for row in rows]
    print(f"{label}: {len(rows)} trials in {seconds:.1f} s")
    print(f"  overhead per trial   {ms(total)}")
    print(f"    claim (claim_s)    {ms([row[1] for row in rows])}")
    print(f"    record (record_s)  {ms([row[2] for row in rows])}")
    print(f"    its CPU time       {ms([row[3] for row in rows])}")
    print(f"  writes behind it     {ms([row[4] for row in rows])} (while it trains on)")
    print(f"    all CPU per trial  {ms([row[5] for row in rows])} (the path's and behind)")
    return total


def check_once(url: str, name: str, points: int) -> bool:
    """Every point exactly once: one complete trial per grid point, no other trial."""
    from sweep.store import open_storage

    trials = open_study(open_storage(url), name).get_trials(deepcopy=False)
    per_point = Counter(json.dumps(t.params, sort_keys=True) for t in trials
                        if t.state.name == "COMPLETE")
    others = Counter(t.state.name for t in trials if t.state.name != "COMPLETE")
    once = len(per_point) == points and set(per_point.values()) == {1} and not others
    print(f"  every point exactly once: {'yes' if once else 'NO'} ({len(per_point)} of "
          f"{points} points complete, most trials of one point {max(per_point.values())}, "
          f"other trials {dict(others) or 0})")
    return once


def report_idle(recorder: Recorder) -> float:
    """Per worker: gaps between a trial's end and its next claim, and how long before the
    last claim it stopped training; returns the worst such wait, in seconds."""
    by_worker: dict[int, list[dict]] = {}
    for worker, e in recorder.events:
        if e["event"] in ("start", "end"):
            by_worker.setdefault(worker, []).append(e)
    for events in by_worker.values():  # an end is said once written, maybe after the next
        events.sort(key=lambda e: e["at"])  # start; its "at" is when its training ended
    last_claim = max(e["at"] for _, e in recorder.events if e["event"] == "start")
    first = min(e["at"] for _, e in recorder.events if e["event"] == "start")
    gaps, early = [], []
    for events in by_worker.values():
        gaps += [b["at"] - a["at"] for a, b in itertools.pairwise(events)
                 if a["event"] == "end" and b["event"] == "start"]
        early.append(last_claim - events[-1]["at"])
    starts = sorted(min(e["at"] for e in ev) - first for ev in by_worker.values())
    print(f"  workers: {len(by_worker)}; first claims {starts[0]:.1f} .. {starts[-1]:.1f} s "
          f"after the first (start-up: Python, TensorFlow, the data)")
    print(f"  gap between a trial's end and the worker's next claim: {ms(gaps)}")
    print(f"  a worker's last trial ended before the last point was claimed by at most "
          f"{max(0.0, max(early)) * 1000:.1f} ms (> 0: idle while points were left)")
    return max([0.0, max(early), *gaps])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200, help="an even number")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--reference", type=int, default=24,
                        help="points of the 1-worker runs (even)")
    args = parser.parse_args()
    if args.points % 2 or args.reference % 2:
        parser.error("--points and --reference: expected even numbers (a grid of x 2 pooling)")
    os.environ["PGPASSWORD"] = PASSWORD  # what the workers inherit; no URL carries it
    with tempfile.TemporaryDirectory(prefix="bench-claims-") as tmp, \
            throwaway_postgres(PASSWORD) as pg_url:
        folder = Path(tmp)
        os.chdir(folder)
        many = study_file(folder, "many", args.points)
        recorder, seconds = sweep_with(pg_url, many, args.workers, folder)
        total = report_overhead(f"{args.workers} workers, PostgreSQL, {args.points} points",
                                recorder, seconds)
        quarter = min(25, len(total) // 4)
        print(f"    first {quarter} trials    {ms(total[:quarter])}")
        print(f"    last {quarter} trials     {ms(total[-quarter:])}")
        once = check_once(pg_url, "many", args.points)
        report_idle(recorder)
        for label, url in (("PostgreSQL", pg_url), ("SQLite", f"sqlite:///{folder / 'ref.db'}")):
            ref = study_file(folder, f"ref-{label.lower()}", args.reference)
            recorder, seconds = sweep_with(url, ref, 1, folder)
            report_overhead(f"reference: 1 worker, {label}, {args.reference} points",
                            recorder, seconds)
            once = check_once(url, f"ref-{label.lower()}", args.reference) and once
        median = statistics.median(total)
        print(f"{args.workers} workers: overhead median {1000 * median:.1f} ms per trial "
              f"(target <= 50 ms): {'met' if median <= 0.050 else 'NOT met'}")
    return 0 if once else 1


if __name__ == "__main__":
    sys.exit(main())
