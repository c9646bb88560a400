"""Opening the storage: a file that is not a SQLite database is refused and left as it was;
a server URL's password from a file ($SWEEP_STORAGE_PASSWORD_FILE, a Docker secret)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from sweep.cli import main
from sweep.errors import StorageError
from sweep.store import open_storage, safe_url, storage_label, with_password_file

from conftest import tiny_study, write_study

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


def test_a_runs_header_names_its_database_and_hides_its_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a relative SQLite file is named where it is: another folder, another database
    assert storage_label("sqlite:///sweeps.db") == str(tmp_path / "sweeps.db")
    assert storage_label(f"sqlite:///{tmp_path}/a.db") == str(tmp_path / "a.db")
    label = storage_label("postgresql+psycopg://sweep:s3cret@db:5432/sweeps")
    assert "s3cret" not in label and label.startswith("postgresql+psycopg://sweep:")
    assert "db:5432/sweeps" in label


def test_sweep_run_says_which_database_it_uses(tmp_path, tiny_npz, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, training={"epochs": 1, "batch_size": 16},
                     search={"params": {"model.pooling": ["max"]}})
    assert main(["run", str(write_study(tmp_path, raw)), "--storage", "sqlite:///here.db",
                 "--progress", "plain"]) == 0
    assert f"[tiny] 1 points in {tmp_path / 'here.db'}: 0 already done" in capsys.readouterr().err


def test_a_server_that_stays_away_is_tried_again_then_one_line(caplog):
    # Nothing listens on this port: every connection is refused, as while a server restarts.
    import socket
    import time

    import sqlalchemy as sa

    from sweep.store import reconnect

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    label = f"postgresql+psycopg://sweep@127.0.0.1:{port}/sweeps"
    engine = sa.create_engine(label, **reconnect.server_engine_kwargs(sa.engine.make_url(label)))
    reconnect.retry_connections(engine, label)
    started = time.monotonic()
    with reconnect.patience(3), pytest.raises(StorageError, match="unreachable for [34] s"):
        with engine.connect():
            pass
    assert 3 <= time.monotonic() - started < 8
    tries = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(tries) == 2 and all(label in t for t in tries)  # after 1 s, then 2 s


def test_the_patience_is_the_outages_not_each_calls(caplog, monkeypatch):
    # issue 33: each call waited its own 2 minutes, so a run waited out twice the patience
    import socket
    import time

    import sqlalchemy as sa

    from sweep.store import reconnect

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    label = f"postgresql+psycopg://sweep@127.0.0.1:{port}/sweeps"
    monkeypatch.setenv(reconnect.PATIENCE_ENV, "3")
    engine = sa.create_engine(label, **reconnect.server_engine_kwargs(sa.engine.make_url(label)))
    reconnect.retry_connections(engine, label)
    started = time.monotonic()
    with pytest.raises(StorageError, match="unreachable for [34] s"):
        with engine.connect():
            pass
    assert 3 <= time.monotonic() - started < 8
    started = time.monotonic()
    with pytest.raises(StorageError, match="it takes over what this run still held"):
        with engine.connect():  # the same outage: no new 3 s
            pass
    assert time.monotonic() - started < 2
    tries = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(tries) == 2 and tries[-1].endswith("(1 s of 3 s waited)")  # the first call's
    monkeypatch.setenv(reconnect.PATIENCE_ENV, "soon")
    with pytest.raises(StorageError, match=r"\$SWEEP_STORAGE_PATIENCE: 'soon' is not a number"):
        reconnect.retry_connections(engine, label)


def test_a_password_with_an_unencoded_at_sign_never_shows():
    # issue 33: `sweep:***@Pw_xyz@127.0.0.1` showed the password's tail in every message
    from sweep.store.engine import safe_url, storage_label

    url = "postgresql+psycopg://sweep:Secret@Pw_xyz@127.0.0.1:5432/sweeps"
    for shown in (safe_url(url), storage_label(url)):
        assert "Pw_xyz" not in shown and "Secret" not in shown
        assert shown == "postgresql+psycopg://sweep:***@127.0.0.1:5432/sweeps"
    with pytest.raises(StorageError) as refused:
        open_storage(url)
    said = str(refused.value)
    assert "Pw_xyz" not in said and "Secret" not in said and "write it as %40" in said
    with pytest.raises(StorageError) as unparsable:
        open_storage("postgresql+psycopg://sweep:Secret@127.0.0.1:notaport/x")
    assert "Secret" not in str(unparsable.value)


def test_a_connection_lost_during_a_transaction_is_one_line_not_a_traceback(postgres, capsys,
                                                                             monkeypatch):
    # The server ends the session while a statement runs (`pg_ctl stop -m fast` in the
    # millisecond a worker writes, here pg_terminate_backend): no retry can know what the
    # transaction did, so the command stops, in one line (before: a traceback, seen in
    # test_a_postgres_restart_mid_sweep_... under load).
    import optuna
    import sqlalchemy as sa

    from sweep import cli, commands

    from conftest import PG_PASSWORD

    url = postgres.replace("sweep@", f"sweep:{PG_PASSWORD}@")

    def killed_mid_transaction(args) -> int:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                with engine.connect() as other:
                    other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
                try:
                    conn.exec_driver_sql("SELECT 1")
                except sa.exc.SQLAlchemyError as err:  # as Optuna's storage wraps it
                    raise optuna.exceptions.StorageInternalError("commit failed") from err
        finally:
            engine.dispose()
        return 0

    monkeypatch.setattr(commands, "status", killed_mid_transaction)
    assert cli.main(["status", "tiny", "--storage", postgres]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: the storage's connection was lost during a "
                          "transaction (terminating connection due to administrator command")
    assert err.count("\n") == 1 and PG_PASSWORD not in err
