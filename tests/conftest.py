"""Shared fixtures: tiny image data made here, a temporary SQLite database, study files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from sweep.cli import main


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
