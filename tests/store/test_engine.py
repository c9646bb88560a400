"""Storage URLs: the password from a file ($SWEEP_STORAGE_PASSWORD_FILE, a Docker secret)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sweep.errors import StorageError
from sweep.store import safe_url, with_password_file

SERVER = "postgresql+psycopg://sweep@db:5432/sweeps"


def test_the_file_gives_a_server_url_its_password(tmp_path):
    secret = tmp_path / "db_password"
    secret.write_text("p@ss:w/rd\n")  # as `echo` writes it; characters a URL must escape
    url = with_password_file(SERVER, str(secret))
    assert url != SERVER and "p@ss:w/rd" not in safe_url(url)
    assert url.startswith("postgresql+psycopg://sweep:") and url.endswith("@db:5432/sweeps")
    import sqlalchemy as sa

    assert sa.engine.make_url(url).password == "p@ss:w/rd"


def test_a_password_in_the_url_wins_and_sqlite_reads_no_file(tmp_path):
    missing = str(tmp_path / "nothing-here")
    own = "postgresql+psycopg://sweep:own@db:5432/sweeps"
    assert with_password_file(own, missing) == own
    assert with_password_file("sqlite:///sweeps.db", missing) == "sqlite:///sweeps.db"


@pytest.mark.parametrize("content, message", [
    (None, r"\$SWEEP_STORAGE_PASSWORD_FILE .*/db_password: cannot read the database password "
           r"\(No such file or directory\)"),
    ("\n", r"\$SWEEP_STORAGE_PASSWORD_FILE .*/db_password: the file is empty"),
])
def test_a_missing_or_empty_file_is_a_storage_error(tmp_path, content, message):
    secret = tmp_path / "db_password"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(StorageError, match=message):
        with_password_file(SERVER, str(secret))


def test_the_cli_says_a_missing_file_in_one_line(tmp_path):
    env = os.environ | {"SWEEP_STORAGE_PASSWORD_FILE": str(tmp_path / "db_password")}
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "status", "quickstart",
                           "--storage", SERVER], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"sweep: error: $SWEEP_STORAGE_PASSWORD_FILE {tmp_path}/db_password: "
                           "cannot read the database password (No such file or directory)\n")
