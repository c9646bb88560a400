"""The training path uses only Keras 3 APIs: a small sweep under the torch backend (CPU).

Run with ``KERAS_BACKEND=torch pytest -m backends`` (``make test-backends``)."""

from __future__ import annotations

import os

import optuna
import pytest

from conftest import tiny_study, write_study
from sweep.cli import main

pytestmark = pytest.mark.backends


def test_small_sweep_under_the_backend_in_use(tmp_path, tiny_npz, db_url, monkeypatch):
    import keras

    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(write_study(tmp_path, tiny_study(tiny_npz))), "--storage",
                 db_url]) == 0
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    prov = trials[0].user_attrs["provenance"]
    assert prov["versions"]["backend"] == keras.backend.backend()
    assert prov["device"] == "cpu"
