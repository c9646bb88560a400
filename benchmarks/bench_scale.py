"""Thousands of trials stay fast to look at (issues 15, 26): a real small study is trained
through ``sweep run`` (random search over pooling, kernel and learning rate on digits, 5
epochs), then cloned in SQL to 10,000 trials with varied params and values; ``sweep status``,
``sweep summary``, ``sweep report``, ``sweep export --format parquet`` and ``sweep run`` with
every trial done (what growing a big study starts with) are timed as whole processes on both,
and the dashboard's study page is fetched.

Run ``make bench-scale`` (``python benchmarks/bench_scale.py``); it prints each time next to
its target, the report's size, and the same commands on the small study as the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = """\
name: scale
description: Pooling x kernel x learning rate on digits, random search (bench_scale)
dataset: {name: digits, validation_split: 0.1}
model: {filters: [16, 32], kernel: 3, pooling: max, dropout: 0.0, batch_norm: false, dense: [32]}
training: {optimizer: adam, learning_rate: 0.001, batch_size: 32, epochs: 5, snapshots: [5]}
search:
  sampler: random
  n_trials: %d
  params:
    model.pooling: [max, avg]
    model.kernel: [3, 5, 7]
    training.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
objective: {metric: val_accuracy, direction: maximize}
seed: 0
"""
POOLING, KERNEL = ["max", "avg"], [3, 5, 7]
# seconds: issue 15; the summary (and the report with its answer) issue 26
TARGETS = {"status": 3.0, "report": 15.0, "export": 10.0, "summary": 3.0}
MAX_REPORT_MB = 25.0


def sweep(folder: Path, *argv: str) -> float:
    """Seconds of one whole ``sweep`` process (this checkout's code) in ``folder``."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "sweep.cli", *argv], cwd=folder, env=env,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if out.returncode:
        sys.exit(f"sweep {' '.join(argv)} failed:\n{out.stderr[-2000:]}")
    return seconds


def clone(db: Path, total: int, seed: int = 0) -> None:
    """Grow the study in ``db`` to ``total`` trials: copies of its real trials with new
    pooling, kernel and learning rate, their accuracies shifted, in bulk (executemany)."""
    rng = random.Random(seed)
    con = sqlite3.connect(db)
    q = con.execute
    study_id, = q("SELECT study_id FROM studies").fetchone()
    real = q("SELECT trial_id, number FROM trials WHERE study_id=? AND state='COMPLETE' "
             "ORDER BY number", (study_id,)).fetchall()
    first_number = q("SELECT MAX(number) + 1 FROM trials").fetchone()[0]
    first_id = q("SELECT MAX(trial_id) + 1 FROM trials").fetchone()[0]
    dist = {name: d for name, d in q("SELECT param_name, distribution_json FROM trial_params "
                                     "WHERE trial_id=?", (real[0][0],))}
    attrs = {tid: dict(q("SELECT key, value_json FROM trial_user_attributes WHERE trial_id=?",
                         (tid,)).fetchall()) for tid, _ in real}
    system = {tid: q("SELECT key, value_json FROM trial_system_attributes WHERE trial_id=?",
                     (tid,)).fetchall() for tid, _ in real}
    epochs = {n: q("SELECT * FROM sweep_epochs WHERE study_id=? AND trial_number=? ORDER BY "
                   "epoch", (study_id, n)).fetchall() for _, n in real}
    rows: dict[str, list] = {k: [] for k in ("trials", "params", "values", "inter", "user",
                                              "system", "epochs", "claims")}
    for i in range(total - first_number):
        tid, number = first_id + i, first_number + i
        src_id, src_number = real[i % len(real)]
        pooling, kernel = rng.randrange(2), rng.randrange(3)
        lr = 10 ** rng.uniform(-4, -2)
        shift = rng.gauss(-0.02, 0.02)  # most below the real ones: few clip at 1
        rows["trials"].append((tid, number, study_id, "COMPLETE", "2026-01-01 00:00:00",
                               "2026-01-01 00:00:10"))
        rows["params"] += [(tid, "model.pooling", float(pooling), dist["model.pooling"]),
                           (tid, "model.kernel", float(kernel), dist["model.kernel"]),
                           (tid, "training.learning_rate", lr,
                            dist["training.learning_rate"])]
        val = None
        for row in epochs[src_number]:
            r = list(row)
            r[1] = number
            for col in (4, 6, 8):  # train, val, test accuracy
                if r[col] is not None:
                    r[col] = min(1.0, max(0.0, r[col] + shift))
            r[10] = lr
            val = r[6]
            rows["epochs"].append(tuple(r))
            rows["inter"].append((tid, r[2], r[6], "FINITE"))
        rows["values"].append((tid, 0, val, "FINITE"))
        for key, value in attrs[src_id].items():
            if key == "config":
                config = json.loads(value)
                config["model"] |= {"pooling": POOLING[pooling], "kernel": KERNEL[kernel]}
                config["training"]["learning_rate"] = lr
                value = json.dumps(config)
            rows["user"].append((tid, key, value))
        rows["system"] += [(tid, key, value) for key, value in system[src_id]]
        rows["claims"].append((study_id, f"#{number}", "bench:0", "done", number, time.time()))
    con.executemany("INSERT INTO trials (trial_id, number, study_id, state, datetime_start, "
                    "datetime_complete) VALUES (?,?,?,?,?,?)", rows["trials"])
    con.executemany("INSERT INTO trial_params (trial_id, param_name, param_value, "
                    "distribution_json) VALUES (?,?,?,?)", rows["params"])
    con.executemany("INSERT INTO trial_values (trial_id, objective, value, value_type) "
                    "VALUES (?,?,?,?)", rows["values"])
    con.executemany("INSERT INTO trial_intermediate_values (trial_id, step, "
                    "intermediate_value, intermediate_value_type) VALUES (?,?,?,?)",
                    rows["inter"])
    con.executemany("INSERT INTO trial_user_attributes (trial_id, key, value_json) "
                    "VALUES (?,?,?)", rows["user"])
    con.executemany("INSERT INTO trial_system_attributes (trial_id, key, value_json) "
                    "VALUES (?,?,?)", rows["system"])
    con.executemany(f"INSERT INTO sweep_epochs VALUES ({','.join('?' * 12)})", rows["epochs"])
    con.executemany("INSERT INTO sweep_claims VALUES (?,?,?,?,?,?)", rows["claims"])
    stored, = q("SELECT value_json FROM study_user_attributes WHERE study_id=? AND key='study'",
                (study_id,)).fetchone()
    stored = json.loads(stored)
    stored["search"]["n_trials"] = total
    q("UPDATE study_user_attributes SET value_json=? WHERE study_id=? AND key='study'",
      (json.dumps(stored), study_id))
    con.commit()
    con.close()


def dashboard(folder: Path, url: str) -> tuple[float, float, int]:
    """Start ``sweep dashboard``; seconds until it answers, seconds of the study page's data
    (``/api/studies/1``, what the study page fetches) and its size in bytes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "sweep.cli", "dashboard", "--storage", url,
                               "--port", str(port)], cwd=folder, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/studies", timeout=5).read()
                break
            except OSError:
                if time.perf_counter() - started > 60 or server.poll() is not None:
                    sys.exit("sweep dashboard did not answer within 60 s")
                time.sleep(0.2)
        up = time.perf_counter() - started
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{base}/dashboard/studies/1", timeout=60) as page:
            assert page.status == 200
        with urllib.request.urlopen(f"{base}/api/studies/1", timeout=120) as detail:
            assert detail.status == 200
            size = len(detail.read())
        return up, time.perf_counter() - t0, size
    finally:
        server.terminate()
        server.wait(timeout=30)


def measure(folder: Path, url: str) -> dict:
    """The three commands, ``sweep run`` with nothing left to train, and the dashboard, as
    whole processes."""
    html = folder / "report.html"
    out = {
        "status": sweep(folder, "status", "scale", "--storage", url),
        # the trials changed since the last report: the answer is worked out
        "summary_new": sweep(folder, "summary", "scale", "--storage", url),
        "report": sweep(folder, "report", "scale", "--storage", url, "--out", str(html),
                        "--artifact-dir", str(folder / "artifacts")),
        # as after a run or a report: the answer they kept is read
        "summary": sweep(folder, "summary", "scale", "--storage", url),
        "export": sweep(folder, "export", "scale", "--storage", url, "--format", "parquet",
                        "--out", str(folder / "scale.parquet")),
        "html_mb": html.stat().st_size / 1e6,
        # every slot done: opening the study, the best so far, the report at the end
        "run": sweep(folder, "run", "scale.yaml", "--storage", url, "--workers", "1",
                     "--progress", "plain"),
    }
    out["dash_up"], out["dash_page"], out["dash_bytes"] = dashboard(folder, url)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/bench_scale.py", description=__doc__)
    parser.add_argument("--trials", type=int, default=10_000, help="trials after cloning")
    parser.add_argument("--real", type=int, default=3, help="trials trained for real")
    parser.add_argument("--keep", type=Path, help="build the study in this folder, kept")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-scale-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "scale.db"
        url = f"sqlite:///{db}"
        (folder / "scale.yaml").write_text(STUDY % args.real)
        trained = sweep(folder, "run", "scale.yaml", "--storage", url, "--workers", "1",
                        "--progress", "plain")
        small = measure(folder, url)
        started = time.perf_counter()
        clone(db, args.trials)
        cloned = time.perf_counter() - started
        large = measure(folder, url)
        db_mb = db.stat().st_size / 1e6
    print(f"bench-scale: {args.real} trials x 5 epochs trained by sweep run ({trained:.1f} s), "
          f"cloned in SQL to {args.trials} ({cloned:.1f} s, database {db_mb:.0f} MB); "
          f"{os.cpu_count()} CPU cores, whole processes")
    print(f"  {'':34s} {args.real:>8d} {args.trials:>8d}   target")
    print(f"  {'sweep summary, trials changed (s)':34s} {small['summary_new']:8.2f} "
          f"{large['summary_new']:8.2f}   (works the answer out)")
    for key, what in (("status", "sweep status"), ("summary", "sweep summary"),
                      ("report", "sweep report"), ("export", "sweep export --format parquet")):
        print(f"  {what + ' (s)':34s} {small[key]:8.2f} {large[key]:8.2f}   "
              f"<= {TARGETS[key]:g} s")
    print(f"  {'sweep run, nothing to train (s)':34s} {small['run']:8.2f} {large['run']:8.2f}"
          "   (includes the report)")
    print(f"  {'report HTML (MB)':34s} {small['html_mb']:8.2f} {large['html_mb']:8.2f}   "
          f"<= {MAX_REPORT_MB:g} MB")
    print(f"  {'dashboard answers (s)':34s} {small['dash_up']:8.2f} {large['dash_up']:8.2f}")
    print(f"  {'dashboard study page + data (s)':34s} {small['dash_page']:8.2f} "
          f"{large['dash_page']:8.2f}   opens (200)")
    print(f"  {'dashboard study data (MB)':34s} {small['dash_bytes'] / 1e6:8.2f} "
          f"{large['dash_bytes'] / 1e6:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
