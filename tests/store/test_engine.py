"""Opening the storage: a file that is not a SQLite database is refused and left as it was."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_study, write_study
from sweep.cli import main
from sweep.store import open_storage

GARBAGE = {
    "one byte": b"x",  # before: SQLite took it for an empty database and wrote over it
    "a note": b"back up the results before Friday\n",
    "random bytes": np.random.default_rng(0).bytes(4096),
    "zeros": bytes(4096),
    "a header and garbage": b"SQLite format 3\0" + bytes(range(256)) * 4,
}


@pytest.mark.parametrize("command", ["run", "status"])
@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE)
def test_a_file_that_is_not_sqlite_is_refused_and_left_byte_for_byte(
        tmp_path, tiny_npz, monkeypatch, capsys, command, garbage):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "results.db"
    db.write_bytes(garbage)
    study = write_study(tmp_path, tiny_study(tiny_npz))
    assert main([command, str(study), "--storage", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"sweep: error: --storage sqlite:///{db}: ")
    assert "not a SQLite database" in err or "file is not a database" in err, err
    assert db.read_bytes() == garbage
    assert not list(tmp_path.glob("results.db-*"))  # no journal or WAL file beside it


def test_an_empty_file_is_an_empty_database(tmp_path):
    db = tmp_path / "new.db"
    db.touch()
    open_storage(f"sqlite:///{db}")
    assert db.read_bytes().startswith(b"SQLite format 3\0")
