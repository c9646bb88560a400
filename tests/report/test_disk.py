"""`sweep clean` and the disk `status` shows (issue 25, item 10): kept models and pictures
stayed forever, with no way to remove them but deleting folders by hand."""

from __future__ import annotations

import os
import socket

import optuna
import pytest

from sweep.cli import main
from sweep.store import claims, open_storage

from conftest import tiny_study, write_study

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

    before = _files(tmp_path)  # --dry-run says what would go, and deletes nothing
    assert main(["clean", "tiny", "--storage", url, "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("tiny: would free ") and "of pictures (8 files in artifacts)" in said
    assert said.rstrip().endswith("; nothing deleted (--dry-run)") and _files(tmp_path) == before
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
    (tmp_path / "artifacts" / "0f0e0d0c-0b0a-4908-8706-050403020100").write_bytes(b"x" * 9)
    (tmp_path / "artifacts" / "notes.txt").write_text("not sweep's: stays")
    assert main(["clean", "--all", "--storage", url]) == 0
    said = capsys.readouterr().out
    assert "of 1 deleted studies' models (gone)" in said and "(9 files in artifacts)" in said
    assert not (tmp_path / "checkpoints" / "gone").exists()
    assert [f.name for f in _files(tmp_path / "artifacts")] == ["notes.txt"]
    assert main(["clean", "--storage", url]) == 2  # a name, or --all


def test_clean_deletes_only_what_sweep_wrote_and_marked(tmp_path, monkeypatch, capsys):
    # issue 33: a study named `..` (any Optuna client can make one) made `sweep clean ..`
    # delete the working folder, sweeps.db included; `--all --checkpoint-dir .` removed every
    # folder there and `--all --artifact-dir .` every plain file
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    victim = tmp_path / "elsewhere"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    for name in ("..", ".", str(victim)):
        optuna.create_study(study_name=name, storage=url)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "reports").mkdir()
    (tmp_path / "notes.txt").write_text("mine too")
    for name in ("..", ".", str(victim)):
        assert main(["clean", name, "--storage", url]) == 0
        assert "freed 0.0 MB of kept models and checkpoints (no folder of this study" in \
            capsys.readouterr().out
    for flags in (["--checkpoint-dir", "."], ["--artifact-dir", "."],
                  ["--checkpoint-dir", ".", "--artifact-dir", "."]):
        assert main(["clean", "--all", "--storage", url, *flags]) == 0
    assert (tmp_path / "sweeps.db").is_file() and (tmp_path / "notes.txt").is_file()
    assert (tmp_path / "checkpoints").is_dir() and (tmp_path / "reports").is_dir()
    assert (victim / "keep.txt").read_text() == "mine"
    assert len(optuna.get_all_study_summaries(url)) == 3  # results stay
