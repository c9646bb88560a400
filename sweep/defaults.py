"""One home for the defaults a user can override (on the command line or in the environment).

Paths are relative to the folder a command runs in.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

DEFAULT_STORAGE = "sqlite:///sweeps.db"
STORAGE_ENV = "SWEEP_STORAGE"  # a storage URL, used when --storage is not given
# A file holding the storage URL's password (a Docker or Kubernetes secret), used when the URL
# has none: the password then shows in no environment variable or argument.
PASSWORD_FILE_ENV = "SWEEP_STORAGE_PASSWORD_FILE"
WORKERS_ENV = "SWEEP_WORKERS"  # `sweep run --workers` when not given: a number or auto
# A worker's training threads' nice (sweep.run.priority); the parent of more local workers
# than cores gives them LOCAL_WORKERS_NICE.
TRAINING_NICE_ENV = "SWEEP_TRAINING_NICE"
LOCAL_WORKERS_NICE = 10
DATA_DIR_ENV = "SWEEP_DATA_DIR"  # a folder of pre-downloaded dataset archives
STUDIES_DIR = Path(__file__).resolve().parent.parent / "studies"  # the shipped study files
MAX_POINTS = 100_000  # points a study may have unless `--max-points` says more
CHECKPOINT_DIR = Path("checkpoints")  # per study, per point; shared by all workers
ARTIFACT_DIR = Path("artifacts")  # Optuna's file artifact store: snapshot pictures
REPORTS_DIR = Path("reports")  # HTML reports; cluster job files under reports/NAME/
TENSORBOARD_DIR = Path("tensorboard")  # training.tensorboard: <dir>/<study>/trial-<number>
# Seconds of training between checkpoints: a worker killed mid-trial loses at most this much.
CHECKPOINT_EVERY_S = 15.0
# `sweep dashboard`: loopback only unless asked; the report links trials to this address.
DASHBOARD_HOST = "127.0.0.1"
DASHBOARD_PORT = 8080


# TensorFlow's switch for its oneDNN kernels, which set_framework_env turns on on x86-64.
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def set_framework_env() -> None:
    """The frameworks' settings of a ``sweep`` process, in its environment before TensorFlow
    loads (its workers inherit them); a user's own value wins.

    - ``TF_CPP_MIN_LOG_LEVEL=3``: TensorFlow's C++ logging prints CUDA probing noise on
      machines without a GPU.
    - ``TF_ENABLE_ONEDNN_OPTS=1`` on x86-64: TensorFlow's oneDNN kernels, which TensorFlow
      turns on by itself only on CPUs with AVX-512 VNNI, bf16 or AMX. Measured faster on an
      AVX2 CPU, to the same accuracy (``make bench-onednn``, docs/benchmark.md); the rounding
      differs.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if X86_64:
        os.environ.setdefault(ONEDNN_ENV, "1")
