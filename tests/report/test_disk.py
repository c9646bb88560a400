"""`sweep clean` and the disk `status` shows (issue 25, item 10): kept models and pictures
stayed forever, with no way to remove them but deleting folders by hand."""

from __future__ import annotations

import os
import socket

import optuna
import pytest

from conftest import tiny_study, write_study
from sweep.cli import main
from sweep.store import claims, open_storage

pytestmark = pytest.mark.slow


def _files(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_clean_frees_a_studys_models_and_pictures_and_keeps_its_results(
        tmp_path, tiny_npz, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    for name in ("tiny", "gone"):
        assert main(["run", str(write_study(tmp_path, tiny_study(tiny_npz) | {"name": name})),
                     "--storage", url]) == 0
    assert _files(tmp_path / "checkpoints" / "tiny") and len(_files(tmp_path / "artifacts")) == 16
    capsys.readouterr()
    assert main(["status", "tiny", "--storage", url]) == 0
    assert "MB of kept models and checkpoints in checkpoints/tiny (`sweep clean tiny` frees" \
        in capsys.readouterr().out

    # not while a worker trains it
    store = open_storage(url)
    study_id = store.get_study_id_from_name("tiny")
    assert claims.claim_free(store.engine, study_id, "x", f"{socket.gethostname()}:{os.getpid()}")
    assert main(["clean", "tiny", "--storage", url]) == 2
    assert "tiny: workers are training it" in capsys.readouterr().err
    claims.release(store.engine, study_id, "x", f"{socket.gethostname()}:{os.getpid()}")

    assert main(["clean", "tiny", "--storage", url]) == 0
    said = capsys.readouterr().out
    assert said.startswith("tiny: freed ") and "of pictures (8 files in artifacts)" in said
    assert not (tmp_path / "checkpoints" / "tiny").exists()
    assert len(_files(tmp_path / "artifacts")) == 8  # the other study's stay
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]  # results stay
    assert not any(key.startswith("artifacts:") for t in trials for key in t.system_attrs)
    assert main(["report", "tiny", "--storage", url]) == 0  # no picture looked for
    assert "not found" not in (tmp_path / "reports" / "tiny.html").read_text()

    # a study deleted with Optuna leaves its folder and pictures: --all frees them
    optuna.delete_study(study_name="gone", storage=url)
    (tmp_path / "artifacts" / "stray").write_bytes(b"x" * 1000)
    assert main(["clean", "--all", "--storage", url]) == 0
    said = capsys.readouterr().out
    assert "of 1 deleted studies' models (gone)" in said and "(9 files in artifacts)" in said
    assert not (tmp_path / "checkpoints" / "gone").exists()
    assert _files(tmp_path / "artifacts") == []
    assert main(["clean", "--storage", url]) == 2  # a name, or --all
