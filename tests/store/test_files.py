"""A study's files belong to that study in that database (issue 34 item 1): two databases
that each hold a study called ``tiny`` keep their checkpoints, kept models and reports apart,
and each exports its own model; a folder from before studies had markers keeps working; a
folder marked by another study is refused in one line."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa

from sweep.cli import main
from sweep.store import open_storage, study_system_attr
from sweep.store.files import FILES, MARKER

from conftest import tiny_study, write_study

pytestmark = pytest.mark.slow


def _digest(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _run(tmp_path, url: str, seed: int, epochs: int = 1) -> None:
    raw = tiny_study(tmp_path / "tiny.npz", seed=seed)
    raw["training"] = {**raw["training"], "epochs": epochs, "snapshots": [epochs]}
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", url]) == 0


@pytest.fixture
def two_databases(tmp_path, tiny_npz, monkeypatch):
    """The same study name trained into two SQLite files, one after the other, from one
    folder (one checkpoints/, one reports/); different seeds, so different models."""
    monkeypatch.chdir(tmp_path)
    real, scratch = f"sqlite:///{tmp_path / 'sweeps.db'}", f"sqlite:///{tmp_path / 'scratch.db'}"
    _run(tmp_path, real, seed=0)
    kept = tmp_path / "checkpoints" / "tiny" / "trials" / "0.keras"
    before = _digest(kept)
    _run(tmp_path, scratch, seed=1)
    assert _digest(kept) == before  # before: the scratch run rewrote it
    return real, scratch


def test_two_databases_with_one_study_name_keep_their_files_apart(tmp_path, two_databases,
                                                                  capsys):
    real, scratch = two_databases
    ids = {}
    for url in (real, scratch):
        store = open_storage(url, create=False)
        ids[url] = study_system_attr(store, store.get_study_id_from_name("tiny"), FILES)
    assert ids[real]["folder"] == "tiny"
    assert ids[scratch]["folder"] == f"tiny-{ids[scratch]['id'][:8]}"
    for url in (real, scratch):
        folder = tmp_path / "checkpoints" / ids[url]["folder"]
        said = json.loads((folder / MARKER).read_text())
        assert said["id"] == ids[url]["id"] and said["study"] == "tiny"
        assert (tmp_path / "reports" / f"{ids[url]['folder']}.html").is_file()
        # each database exports its own trial 0, the model its own run kept
        out = tmp_path / f"{ids[url]['folder']}.keras"
        capsys.readouterr()
        assert main(["export", "tiny", "--model", "0", "--storage", url, "--out",
                     str(out)]) == 0
        assert _digest(out) == _digest(folder / "trials" / "0.keras")
        # what it expects is said beside it (issue 34: fed raw pixels it scored far lower)
        assert "pixel values in [0, 1] (8-bit pixels divided by 255)" in capsys.readouterr().err
        assert main(["status", "tiny", "--storage", url]) == 0
        assert f"in checkpoints/{ids[url]['folder']} (`sweep clean tiny`" in \
            capsys.readouterr().out
    assert _digest(tmp_path / "tiny.keras") != _digest(
        tmp_path / f"{ids[scratch]['folder']}.keras")


def test_a_folder_marked_by_another_study_is_refused_in_one_line(tmp_path, two_databases,
                                                                 capsys):
    real, scratch = two_databases
    store = open_storage(scratch, create=False)
    study_id = store.get_study_id_from_name("tiny")
    mine = study_system_attr(store, study_id, FILES)
    store.set_study_system_attr(study_id, FILES, {**mine, "folder": "tiny"})  # the other's
    (tmp_path / "checkpoints" / mine["folder"]).rename(tmp_path / "moved")  # its own: gone
    capsys.readouterr()
    assert main(["export", "tiny", "--model", "0", "--storage", scratch]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoints/tiny holds the files of another study called " \
                             "'tiny'" in err[0]
    for bad in ({**mine, "folder": "../.."}, {**mine, "id": "../../x" + "0" * 24}):
        store.set_study_system_attr(study_id, FILES, bad)
        assert main(["export", "tiny", "--model", "0", "--storage", scratch]) == 2
        assert "attribute is not sweep's" in capsys.readouterr().err


def test_a_folder_from_before_markers_stays_its_studys(tmp_path, tiny_npz, monkeypatch,
                                                        capsys):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    _run(tmp_path, url, seed=0)
    # as an older sweep left it: no identity in the study, no marker in the folder
    store = open_storage(url, create=False)
    study_id = store.get_study_id_from_name("tiny")
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM study_system_attributes WHERE key = :key"),
                     {"key": FILES})
    (tmp_path / "checkpoints" / "tiny" / MARKER).unlink()
    kept = tmp_path / "checkpoints" / "tiny" / "trials" / "0.keras"
    assert main(["export", "tiny", "--model", "0", "--storage", url, "--out",
                 str(tmp_path / "old.keras")]) == 0
    assert _digest(tmp_path / "old.keras") == _digest(kept)
    capsys.readouterr()
    _run(tmp_path, url, seed=0, epochs=2)  # grown: continues the kept models where they are
    assert "2 to continue with more epochs" in capsys.readouterr().err
    assert study_system_attr(store, study_id, FILES)["folder"] == "tiny"
    assert (tmp_path / "checkpoints" / "tiny" / MARKER).is_file()
