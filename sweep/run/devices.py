"""Which devices local workers get: the options ``--workers``, ``--gpus`` and
``--trials-per-gpu``, the GPUs and cores this machine has, and the environment each child
process is started with (``local.run_workers`` starts them). Nothing here imports a
framework: GPUs are found with ``nvidia-smi``.
"""

from __future__ import annotations

import argparse
import os
import subprocess

from sweep.defaults import LOCAL_WORKERS_NICE, TRAINING_NICE_ENV, WORKERS_ENV
from sweep.errors import UsageError


def detect_gpus() -> list[str]:
    """GPU indices from ``nvidia-smi`` (no framework import in the parent); [] without one."""
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listing.splitlines() if line.strip()]


def cpu_cores() -> int:
    """The cores this process may run on (its affinity: a cgroup or ``taskset`` may give it
    fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def add_worker_options(run: argparse.ArgumentParser) -> None:
    """Declare ``sweep run``'s options for local workers (read by ``resolve_devices``)."""
    run.add_argument("--workers", type=_workers, default=os.environ.get(WORKERS_ENV, "auto"),
                     help=f"worker processes on this machine: a number, or auto (the default, "
                          f"or ${WORKERS_ENV}): GPUs x K, else one per CPU core; at most one "
                          "per point left")
    run.add_argument("--gpus", default=None, metavar="auto|0,1,...",
                     help="pin workers to these GPUs (auto: every GPU nvidia-smi lists)")
    run.add_argument("--trials-per-gpu", type=int, default=1, metavar="K",
                     help="workers sharing one GPU (default: 1)")


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def check_worker_options(workers: int | str | None, per_gpu: int) -> None:
    """Refuse counts below one before anything is loaded or opened."""
    if per_gpu < 1 or (isinstance(workers, int) and workers < 1):
        raise UsageError("--workers and --trials-per-gpu must be at least 1")


def resolve_devices(workers: int | str | None, gpus: str | None, per_gpu: int,
                    pending: int) -> tuple[int, list[str]]:
    """``--workers``, ``--gpus`` and ``--trials-per-gpu`` to (worker count, GPU indices),
    for a study with ``pending`` points left.

    ``--workers auto`` (the default): ``per_gpu`` workers per GPU where there are GPUs; on a
    CPU machine one single-threaded worker per core, as the measured figures say
    (docs/workers.md): small CNNs at batch 32 gain little from a second thread per trial, and a
    second trial on the other core nearly doubles the trials per hour. Never more workers
    than points left, so a single point trains in this process with every thread. A number
    is what it says, unless no point is left (every one done, or rejected before training):
    then no worker starts.
    """
    auto = workers == "auto"
    found = detect_gpus() if gpus == "auto" or (auto and gpus is None) else (gpus or "").split(",")
    found = [g.strip() for g in found if g.strip()]
    if auto:
        return max(1, min(len(found) * per_gpu if found else cpu_cores(), pending)), found
    count = workers if isinstance(workers, int) else max(1, len(found) * per_gpu)
    return count if pending else 1, found


def worker_env(index: int, workers: int, gpus: list[str], per_gpu: int, cores: int) -> dict:
    """The environment additions for child ``index`` of ``workers``.

    With GPUs: child i gets GPU ``gpus[i // per_gpu]``; TensorFlow grows its memory on demand
    and JAX takes ``1/per_gpu`` of the card, so ``per_gpu`` children share it. Without: no GPU
    is visible and each child's thread pools get an equal share of the cores; more children
    than cores run their training threads at nice ``LOCAL_WORKERS_NICE`` (unless the
    environment sets ``SWEEP_TRAINING_NICE``): their bookkeeping goes first (priority.py).
    """
    if gpus:
        return {
            "CUDA_VISIBLE_DEVICES": gpus[(index // per_gpu) % len(gpus)],
            "TF_FORCE_GPU_ALLOW_GROWTH": "true",
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
            "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / per_gpu:.3f}",
        }
    threads = str(max(1, cores // workers))
    env = {
        "CUDA_VISIBLE_DEVICES": "",
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": threads,
    }
    if workers > cores and TRAINING_NICE_ENV not in os.environ:
        env[TRAINING_NICE_ENV] = str(LOCAL_WORKERS_NICE)
    return env
