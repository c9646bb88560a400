"""Opt-in TensorBoard logs: ``training.tensorboard: true`` writes event files per trial."""

from __future__ import annotations

import pytest

from sweep.cli import main

from conftest import tiny_study, write_study

pytestmark = pytest.mark.slow


def test_tensorboard_event_files_per_trial(tmp_path, tiny_npz, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz)
    raw["training"] = {**raw["training"], "tensorboard": True}
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    for trial in (0, 1):
        logs = tmp_path / "tensorboard" / "tiny" / f"trial-{trial}"
        for split in ("train", "validation"):
            events = list((logs / split).glob("events.out.tfevents.*"))
            assert len(events) == 1 and events[0].stat().st_size > 0, (trial, split)
    # Off by default: the same study without it writes no logs.
    raw["name"] = "quiet"
    raw["training"]["tensorboard"] = False
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", db_url]) == 0
    assert not (tmp_path / "tensorboard" / "quiet").exists()


def test_tensorboard_may_be_switched_on_for_a_stored_study(tmp_path, tiny_npz, db_url,
                                                          monkeypatch, capsys):
    # Logging is not part of the experiment: resuming with it on is not a changed study.
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, tiny_study(tiny_npz))
    assert main(["run", str(path), "--storage", db_url]) == 0
    assert main(["run", str(path), "--storage", db_url, "--set", "training.tensorboard=true"]) == 0
    assert "0 run now (0 failed), 2 already done" in capsys.readouterr().out
