"""Everything that needs a GPU, in one run of at most 8 minutes: ``make gpu-check``.

Run it first in any session whose task has the GPU machine (it has JAX and PyTorch, no
TensorFlow, no network; ``make gpu-wheels`` here fetches the packages it lacks, carried as
``.whl``). It checks, and prints as one table:

1. the JAX device seen;
2. a ``sweep run --workers auto`` of 4 points on the GPU (every trial complete), and a
   ``--fuse auto`` sweep of 8 points of one model (the groups it formed);
3. a worker SIGKILLed mid-trial, replaced, its point resumed from its checkpoint;
4. seconds per epoch of the seeds' CIFAR-10 model (122,570 params, batch 32, 50,000
   synthetic 32x32x3 images) through the trial's path (Keras' fit) and fused at K = 1;
5. trials per hour fused at K = 1, 4, 16, 64 (``sweep/training/fused.py``) and with 1, 2, 4,
   8 worker processes sharing the card (``--trials-per-gpu``), with GPU utilisation and
   memory (``nvidia-smi``).

It then writes the table to ``docs/benchmark.md`` under the device's name (replacing an
earlier check of the same device), and copies that file to ``$OUT`` when set (the device
tool brings back only what is there). A phase that would overrun the 8 minutes is skipped and
says so. ``--quick`` shrinks every size: a try-out on a CPU, run by ``make test-backends``
so that the script the first GPU run depends on cannot rot unseen. A check that does not
hold (a sweep's non-zero exit, trials missing, a killed worker not replaced or not resumed)
is listed after the table, and the run exits 1.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks import bench_fused  # noqa: E402

BUDGET_S = 8 * 60
FAILED: list[str] = []  # the checks that did not hold: the run exits 1 after its table
EPOCHS_PER_TRIAL = 10  # trials per hour: a trial of this many epochs of the full data


class Clock:
    """The run's 8 minutes: ``left()`` seconds, and whether a phase of ``need`` s fits."""

    def __init__(self, budget: float):
        self.start, self.budget = time.monotonic(), budget

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.start)

    def fits(self, need: float) -> bool:
        return self.left() > need


class GpuSampler:
    """nvidia-smi's utilisation (mean, %) and memory used (peak, MiB) while the block runs."""

    def __enter__(self) -> GpuSampler:
        self.util, self.memory, self._stop = [], [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            out = _smi("utilization.gpu,memory.used")
            if out:
                util, memory = (float(v) for v in out.split(","))
                self.util.append(util)
                self.memory.append(memory)

    def text(self) -> str:
        if not self.util:
            return "-"
        return f"{statistics.fmean(self.util):.0f}% util, {max(self.memory):,.0f} MiB"


def _smi(fields: str) -> str:
    try:
        out = subprocess.run(["nvidia-smi", "-i", "0", f"--query-gpu={fields}",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def write_data(path: Path, n_train: int, n_test: int) -> None:
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (n_train, 32, 32, 3), np.uint8),
             y_train=rng.integers(0, 10, n_train),
             x_test=rng.integers(0, 256, (n_test, 32, 32, 3), np.uint8),
             y_test=rng.integers(0, 10, n_test))


def study(folder: Path, name: str, data: Path, epochs: int, grid: dict,
          repeats: int = 1) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "dataset": {"name": "npz", "path": str(data), "validation_split": 0.1},
        "model": bench_fused.SEED_MODEL, "training": {"batch_size": 32, "epochs": epochs},
        "search": {"sampler": "grid", "params": grid, "repeats": repeats}}))
    return path


def sweep(folder: Path, study_file: Path, *args: str, timeout: float) -> tuple[int, str, float]:
    """``sweep run`` of ``study_file``: exit code, output, seconds."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "run", str(study_file),
                           "--storage", f"sqlite:///{folder / (study_file.stem + '.db')}",
                           "--checkpoint-dir", str(folder / "checkpoints"), *args],
                          cwd=folder, capture_output=True, text=True, timeout=timeout,
                          env=_with_repo())
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        FAILED.append(f"sweep run {study_file.stem}: exit {proc.returncode}: "
                      f"{output.strip().splitlines()[-1:]}")
    return proc.returncode, output, time.perf_counter() - started


def _with_repo() -> dict:
    """This environment with the repository first on ``PYTHONPATH`` (wheels carried to the
    GPU machine stay on it)."""
    return os.environ | {"PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def trials(folder: Path, name: str) -> list:
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{folder / (name + '.db')}"
                             ).trials


def check_sweep(folder: Path, data: Path, clock: Clock) -> str:
    grid = {"model.pooling": ["max", "avg"], "model.kernel": [3, 5]}
    code, output, seconds = sweep(folder, study(folder, "four", data, 2, grid), "--workers",
                                  "auto", timeout=max(30, clock.left() - 240))
    done = sum(t.state.name == "COMPLETE" for t in trials(folder, "four")) if code == 0 else 0
    where = re.search(r"(\d+ workers? on [^\n]+)", output)
    if code == 0 and done != 4:
        FAILED.append(f"sweep run four: {done} of 4 complete")
    return (f"exit {code}, {done} of 4 complete in {seconds:.0f} s "
            f"({where.group(1) if where else 'workers ?'})")


def check_fused_sweep(folder: Path, data: Path, clock: Clock) -> str:
    """8 points of one model (2 learning rates x 4 repeats) through ``--fuse auto``: how
    many trials trained in groups of each size, and what auto said."""
    if not clock.fits(240):
        return "skipped: no time left"
    path = study(folder, "fused", data, 2, {"training.learning_rate": [0.001, 0.003]}, 4)
    code, output, seconds = sweep(folder, path, "--workers", "1", "--fuse", "auto",
                                  timeout=max(30, clock.left() - 200))
    done = [t for t in trials(folder, "fused") if t.state.name == "COMPLETE"]
    sizes = sorted(Counter(t.user_attrs.get("fused", "fit") for t in done).items(), key=str)
    said = re.search(r"--fuse auto: ([^\n]+)", output)
    if code == 0 and len(done) != 8:
        FAILED.append(f"sweep run fused: {len(done)} of 8 complete")
    return (f"exit {code}, {len(done)} of 8 complete in {seconds:.0f} s; trials by group size "
            f"{dict(sizes)}; {said.group(1) if said else 'auto fused nothing here'}")


def check_resume(folder: Path, data: Path, clock: Clock) -> str:
    """A two-point sweep on two worker processes (on the GPU where there is one), one of
    which is SIGKILLed after the first epoch row."""
    import sqlalchemy as sa

    path = study(folder, "killed", data, 4, {"model.pooling": ["max", "avg"]})
    db = folder / "killed.db"
    proc = subprocess.Popen([sys.executable, "-m", "sweep.cli", "run", str(path), "--storage",
                             f"sqlite:///{db}", "--workers", "2", "--gpus", "auto",
                             "--trials-per-gpu", "2", "--checkpoint-every", "0",
                             "--checkpoint-dir", str(folder / "checkpoints")], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_with_repo())
    deadline, pid = time.monotonic() + min(180, clock.left() - 200), None
    while pid is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            engine = sa.create_engine(f"sqlite:///{db}")
            with engine.connect() as conn:  # a worker whose trial has stored an epoch
                worker = conn.exec_driver_sql(
                    "SELECT c.worker FROM sweep_claims c JOIN sweep_epochs e ON "
                    "e.study_id = c.study_id AND e.trial_number = c.trial_number "
                    "WHERE c.state = 'running' LIMIT 1").scalar()
                pid = int(worker.rpartition(":")[2]) if worker else None
            engine.dispose()
        except sa.exc.OperationalError:
            continue
    if pid is None:
        proc.kill()
        FAILED.append("SIGKILLed worker: no epoch stored in time")
        return "no epoch stored in time: not checked"
    os.kill(pid, signal.SIGKILL)
    output, _ = proc.communicate(timeout=max(30, clock.left() - 150))
    done = [t for t in trials(folder, "killed") if t.state.name == "COMPLETE"]
    resumed = [t.user_attrs["resumed_from_epoch"] for t in done
               if t.user_attrs.get("resumed_from_epoch")]
    if proc.returncode != 0 or len(done) != 2 or "exited with -9" not in output or not resumed:
        FAILED.append(f"SIGKILLed worker: exit {proc.returncode}, {len(done)} of 2 complete, "
                      f"replaced: {'exited with -9' in output}, resumed: {bool(resumed)}")
    return (f"exit {proc.returncode}, {len(done)} of 2 complete; worker {pid} killed "
            f"{'and replaced' if 'exited with -9' in output else 'and NOT replaced'}, its point "
            f"{'resumed from epoch ' + str(resumed[0]) if resumed else 'NOT resumed'}")


def fused_rows(ks: list[int], n_train: int, clock: Clock) -> list[tuple]:
    """(K, s/epoch, trials per hour, GPU) of fused groups, while time lasts."""
    data = bench_fused.dataset(n_train, n_train // 10)
    rows = []
    for k in ks:
        if not clock.fits(150):
            rows.append((k, None, None, "skipped: out of time"))
            continue
        with GpuSampler() as gpu:
            seconds = bench_fused.fused_epoch_s(k, data, 1)
        rows.append((k, seconds, k * 3600 / (seconds * EPOCHS_PER_TRIAL), gpu.text()))
    return rows


def process_rows(ks: list[int], folder: Path, data: Path, clock: Clock) -> list[tuple]:
    """(K processes, s for 8 one-epoch trials, trials per hour, GPU) per ``--trials-per-gpu``."""
    grid = {"model.pooling": ["max", "avg"], "model.kernel": [3, 5],
            "training.learning_rate": [0.001, 0.002]}
    rows = []
    for k in ks:
        if not clock.fits(90):
            rows.append((k, None, None, "skipped: out of time"))
            continue
        with GpuSampler() as gpu:
            code, output, seconds = sweep(folder, study(folder, f"procs{k}", data, 1, grid),
                                          "--gpus", "0", "--trials-per-gpu", str(k),
                                          "--fuse", "off",  # processes, each one trial
                                          timeout=max(30, clock.left() - 60))
        note = gpu.text() if code == 0 else f"exit {code}: {output.strip().splitlines()[-1:]}"
        rows.append((k, seconds, 8 * 3600 / seconds, note))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/gpu_check.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a try-out on a CPU")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax

    clock = Clock(BUDGET_S)
    n_train = 2_000 if args.quick else 50_000
    ks = [1, 2] if args.quick else [1, 4, 16, 64]
    device = _smi("name,memory.total") or f"{jax.devices()[0]} (no nvidia-smi)"
    lines = [f"JAX {jax.__version__}, Keras backend {os.environ['KERAS_BACKEND']}; devices: "
             f"{', '.join(str(d) for d in jax.devices())}"]
    with tempfile.TemporaryDirectory(prefix="sweep-gpu-check-") as tmp:
        folder = Path(tmp)
        small = folder / "small.npz"
        write_data(small, n_train // 10, 1_000)
        lines.append(f"sweep run --workers auto, 4 points: {check_sweep(folder, small, clock)}")
        lines.append(f"sweep run --fuse auto, 8 points of one model: "
                     f"{check_fused_sweep(folder, small, clock)}")
        lines.append(f"SIGKILLed worker: {check_resume(folder, small, clock)}")
        fit_s = bench_fused.fit_epoch_s(n_train, n_train // 10, 1) if clock.fits(200) else None
        lines.append(f"seeds' CIFAR-10 model, batch 32, {n_train:,} images: "
                     f"{fit_s or float('nan'):.2f} s/epoch through Keras' fit (a trial's path)")
        fused = fused_rows(ks, n_train, clock)
        one = fused[0][1]
        lines.append(f"... and {one or float('nan'):.2f} s/epoch fused at K = 1")
        lines += ["", f"trials per hour ({EPOCHS_PER_TRIAL} epochs of {n_train:,} images each)",
                  f"{'fused K':>8}  {'s/epoch':>8}  {'trials/h':>9}  {'vs K=1':>7}  GPU"]
        for k, seconds, per_hour, gpu in fused:
            if seconds is None:
                lines.append(f"{k:>8}  {gpu}")
                continue
            lines.append(f"{k:>8}  {seconds:8.2f}  {per_hour:9.1f}  "
                         f"{per_hour / fused[0][2]:7.2f}  {gpu}")
        procs = process_rows([1, 2] if args.quick else [1, 2, 4, 8], folder, small, clock)
        lines += ["", f"worker processes sharing the GPU: 8 trials x 1 epoch of "
                      f"{n_train // 10:,} images, whole runs (start-up and compilation in)",
                  f"{'procs':>8}  {'seconds':>8}  {'trials/h':>9}  GPU"]
        for k, seconds, per_hour, note in procs:
            lines.append(f"{k:>8}  {note}" if seconds is None else
                         f"{k:>8}  {seconds:8.1f}  {per_hour:9.1f}  {note}")
    lines.append(f"(gpu-check took {BUDGET_S - clock.left():.0f} s)")
    print("\n".join(lines))
    record(device, "\n".join(lines), quick=args.quick)
    for failed in FAILED:
        print(f"gpu-check: FAILED: {failed}", file=sys.stderr)
    return 1 if FAILED else 0


def record(device: str, table: str, quick: bool) -> None:
    """The table into docs/benchmark.md under the device's name, and a copy to $OUT."""
    if quick:
        return
    doc = REPO / "docs" / "benchmark.md"
    heading = f"## GPU check: {device.split(',')[0].strip()}"
    section = (f"{heading} ({datetime.date.today()}, `make gpu-check`)\n\n```\n{table}\n```\n")
    text = doc.read_text()
    old = re.compile(rf"^{re.escape(heading)} .*?(?=^## |\Z)", re.S | re.M)
    text = old.sub(section + "\n", text) if old.search(text) else text.rstrip() + "\n\n" + \
        section
    doc.write_text(text)
    if os.environ.get("OUT"):
        shutil.copy(doc, Path(os.environ["OUT"]) / "benchmark.md")


if __name__ == "__main__":
    sys.exit(main())
