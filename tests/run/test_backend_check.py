"""The Keras backend is checked in the parent before any worker starts, and named in the
run's first line (issue 34 item 3): a backend that is not installed was a 40-line traceback
from each worker, restarted three times."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sweep.training.backend import keras_backend

from conftest import tiny_study, write_study

# a Python where a package is not installed (tests/without_tensorflow, told which one)
HIDING = str(Path(__file__).resolve().parents[1] / "without_tensorflow")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_backend_that_is_not_installed_is_one_line_before_any_worker(tmp_path, tiny_npz,
                                                                       workers):
    study = write_study(tmp_path, tiny_study(tiny_npz))
    env = {"PATH": "/usr/bin:/bin", "KERAS_BACKEND": "jax", "PYTHONPATH": HIDING,
           "SWEEP_TEST_HIDDEN": "jax", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "run", str(study), "--workers",
                           workers, "--storage", f"sqlite:///{tmp_path / 'sweeps.db'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("sweep: error: KERAS_BACKEND=jax: jax is not installed here; pip "
                           "install 'jax[cpu]==0.10.2' (on an NVIDIA GPU: "
                           "'jax[cuda12]==0.10.2')\n")
    assert not (tmp_path / "sweeps.db").exists()  # nothing opened, no worker, no claim


def test_an_unknown_backend_is_one_line(tmp_path, monkeypatch):
    from sweep.errors import UsageError
    from sweep.training.backend import check_backend

    monkeypatch.setenv("KERAS_BACKEND", "numpy")  # Keras' inference-only backend
    monkeypatch.delitem(sys.modules, "keras", raising=False)  # as in a fresh `sweep run`
    with pytest.raises(UsageError, match="KERAS_BACKEND=numpy: sweep trains with tensorflow, "
                                         "jax, torch; set one of them"):
        check_backend()


def test_the_backend_comes_from_keras_config_where_the_environment_says_none(tmp_path,
                                                                            monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_backend() == "tensorflow"  # no config file: Keras' default
    (tmp_path / "keras.json").write_text('{"backend": "torch", "floatx": "float32"}')
    assert keras_backend() == "torch"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert keras_backend() == "jax"


def test_the_first_line_names_the_backend(tmp_path, tiny_npz, capsys):
    from sweep.cli import main

    study = write_study(tmp_path, tiny_study(tiny_npz, training={
        "learning_rate": 0.01, "batch_size": 16, "epochs": 1}))
    assert main(["run", str(study), "--storage", f"sqlite:///{tmp_path / 's.db'}",
                 "--workers", "1", "--fuse", "off"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.endswith(f"2 to train; Keras on {keras_backend()}, --fuse off"), first


@pytest.mark.backends
def test_an_explicit_fuse_on_a_cpu_is_said_once_to_be_slower(tmp_path, tiny_npz):
    if keras_backend() != "jax":
        pytest.skip("fused training is JAX's")
    raw = tiny_study(tiny_npz, search={"params": {"model.pooling": ["max", "avg"],
                                                  "training.learning_rate": [0.01, 0.02]}})
    raw["training"] = {**raw["training"], "epochs": 1, "snapshots": [1]}
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "run", str(write_study(tmp_path,
                                                                                    raw)),
                           "--workers", "2", "--fuse", "2", "--storage",
                           f"sqlite:///{tmp_path / 'sweeps.db'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "--fuse 2: no accelerator here" in line]
    assert len(said) == 1 and "about 2x slower than one point at a time" in said[0]
    assert any(line.endswith("CPU cores; Keras on jax") for line in proc.stderr.splitlines())
