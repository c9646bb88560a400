"""Shared fixtures: tiny image data made here, a temporary SQLite database, study files."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from sweep.cli import main
from sweep.defaults import WORKERS_ENV, set_framework_env

from pg_server import server_bin_dir, throwaway_postgres

set_framework_env()  # as the `sweep` command does: the tests' TensorFlow is a sweep process's

# `sweep run` trains in the test's own process unless a test asks for workers (--workers N or
# auto): most tests look at what one process did, and a 1-second trial does not repay
# starting TensorFlow in two children. The default itself (auto) is tested in test_local.py.
os.environ[WORKERS_ENV] = "1"

PG_PASSWORD = "pg-secret-7f3a"  # the throwaway server's; must never appear in any output


@pytest.fixture(autouse=True)
def fixed_seeds():
    random.seed(0)
    np.random.seed(0)


def tiny_arrays(n_train=64, n_test=24, size=12, channels=1, classes=3, seed=0):
    """Images whose class is visible: class k brightens the k-th horizontal band (uint8)."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % classes
        x = rng.integers(0, 60, size=(n, size, size, channels)).astype(np.uint8)
        band = size // classes
        for i, label in enumerate(y):
            x[i, label * band : (label + 1) * band] += 150
        return x, y

    (x_train, y_train), (x_test, y_test) = make(n_train), make(n_test)
    return x_train, y_train, x_test, y_test


@pytest.fixture
def tiny_npz(tmp_path) -> Path:
    x_train, y_train, x_test, y_test = tiny_arrays()
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sweeps.db'}"


def tiny_study(npz: Path, **changes) -> dict:
    """A study dict that trains in about a second per trial; ``changes`` replace sections."""
    study = {
        "name": "tiny",
        "description": "test study",
        "dataset": {"name": "npz", "path": str(npz), "validation_split": 0.25},
        "model": {"filters": [4, 8], "kernel": 3, "pooling": "max", "dense": [8]},
        "training": {"learning_rate": 0.01, "batch_size": 16, "epochs": 2, "snapshots": [1, 2]},
        "search": {"sampler": "grid", "params": {"model.pooling": ["max", "avg"]}},
        "objective": {"metric": "val_accuracy"},
        "seed": 0,
    }
    study.update(changes)
    return study


def write_study(tmp_path: Path, study: dict, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def swept(tmp_path_factory):
    """One tiny grid sweep (2 points x 2 epochs), run once for the tests that read it."""
    tmp = tmp_path_factory.mktemp("swept")
    x_train, y_train, x_test, y_test = tiny_arrays()
    npz = tmp / "tiny.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    study = write_study(tmp, tiny_study(npz))
    url = f"sqlite:///{tmp / 'sweeps.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        assert main(["run", str(study), "--storage", url]) == 0
    return tmp, study, url


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server (``pg_server``) for the session; its URL has no
    password (``PG_PASSWORD``)."""
    if server_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries missing: `make test` installs them")
    with throwaway_postgres(PG_PASSWORD) as url:
        yield url


# A storage URL with a password, for the tests of `sweep submit`: it must reach no script,
# manifest (but the Secret's) or output.
SUBMIT_PASSWORD = "s3cret-submit-pw"
SUBMIT_URL = f"postgresql+psycopg://sweep:{SUBMIT_PASSWORD}@db.example:5432/sweeps"


@pytest.fixture
def cluster_job(tmp_path, tiny_npz, monkeypatch):
    """``plan_job`` for the tiny study on digits (a dataset every pod has), run from
    ``tmp_path``; ``raw`` replaces the study dict, keywords change the options (default: 2 CPU
    workers for 10 minutes on SUBMIT_URL, files in reports/tiny/)."""
    from sweep.launch.submit import plan_job
    from sweep.study import load_study

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PGPASSWORD", raising=False)

    def make(scheduler: str = "slurm", raw: dict | None = None, **options):
        raw = raw or tiny_study(tiny_npz, dataset={"name": "digits"})
        spec = load_study(str(write_study(tmp_path, raw)))
        defaults = {"storage_url": SUBMIT_URL, "workers": 2, "gpus_per_worker": 0,
                    "time": "00:10:00", "job_dir": Path("reports") / spec.name}
        return plan_job(spec, scheduler=scheduler, **(defaults | options))

    return make
