"""What the storage does when its database goes away: one policy for every read and write.

A database server that restarts (an upgrade, a failover, ``pg_ctl restart``) refuses
connections for a while and drops the ones it had. Every storage call of sweep and of Optuna
(epoch rows, user attributes, ``tell``, claims, the parent's reads) takes a connection from
the engine's pool, so the policy lives where connections are made: a pooled connection is
tested before use (``pool_pre_ping``), and a connection that cannot be made is tried again,
with one line logged per try, for up to ``RETRY_FOR_S`` seconds; the call then goes on as if
nothing happened (nothing lost, nothing written twice: no transaction had begun). Past that,
one ``StorageError`` line. The heartbeat keeps its own shorter patience (``patience``).

A SQLite file is local: nothing there is transient. A full disk or a failing one becomes
one ``StorageError`` line, and the file deleted (or replaced) under a running sweep is
noticed at the next transaction, before a result goes into the unlinked file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

from sweep.errors import StorageError, free_megabytes

RETRY_FOR_S = 120.0  # how long a storage call waits for its database to come back
CONNECT_TIMEOUT_S = 10  # a server that does not answer a connection attempt (a lost network)
_BACKOFF_S = (1.0, 2.0, 4.0, 5.0)  # waits between tries; the last repeats
# A server's answers that no wait changes (a wrong password, a database dropped).
_REFUSED = ("authentication failed", "does not exist", "no pg_hba.conf entry")
# SQLite's words for a file that can no longer be written where it is.
_SQLITE_LOST = ("disk is full", "disk I/O error", "readonly database", "unable to open")
log = logging.getLogger(__name__)
_local = threading.local()


@contextlib.contextmanager
def patience(seconds: float) -> Iterator[None]:
    """Within this block (this thread only), give up on an unreachable database after
    ``seconds`` instead of ``RETRY_FOR_S``."""
    before = getattr(_local, "retry_for_s", None)
    _local.retry_for_s = seconds
    try:
        yield
    finally:
        _local.retry_for_s = before


def server_engine_kwargs(url: sa.engine.URL) -> dict:
    """Engine options for a database server: connections tested before use, and a bound on
    a connection attempt that gets no answer."""
    timeout = {"connect_timeout": CONNECT_TIMEOUT_S} if url.get_backend_name() == "postgresql" \
        and "connect_timeout" not in url.query else {}
    return {"pool_pre_ping": True, "connect_args": timeout}


def retry_connections(engine: sa.engine.Engine, label: str) -> None:
    """Make every new connection of ``engine`` (a server's) wait out a restart of the
    database; ``label``: the URL without its password, for the lines it logs."""

    @sa.event.listens_for(engine, "do_connect")
    def _connect(dialect, _record, cargs, cparams):
        started, tries = time.monotonic(), 0
        while True:
            try:
                return dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as err:
                reason = _first_line(err)
                if any(words in reason for words in _REFUSED):
                    raise  # a server that answers "no": waiting changes nothing
                limit = getattr(_local, "retry_for_s", None)
                limit = RETRY_FOR_S if limit is None else limit
                waited = time.monotonic() - started
                if waited >= limit:
                    raise StorageError(f"--storage {label}: unreachable for {waited:.0f} s "
                                       f"({reason}); run the same command again when it is "
                                       "back") from None
                pause = min(_BACKOFF_S[min(tries, len(_BACKOFF_S) - 1)], limit - waited)
                log.warning("storage %s unreachable (%s); trying again in %.0f s (%.0f s of "
                            "%.0f s waited)", label, reason, pause, waited, limit)
                time.sleep(pause)
                tries += 1


def guard_sqlite_file(engine: sa.engine.Engine, path: Path, label: str) -> None:
    """Stop at the first transaction after ``path`` was deleted or replaced (SQLite would go
    on writing into the unlinked file, and every result would be lost), and turn a full or
    failing disk into one line."""
    path = path.resolve()
    born = _identity(path)

    @sa.event.listens_for(engine, "begin")
    def _check(_connection):
        if born is not None and _identity(path) != born:
            raise StorageError(f"--storage {label}: the database file was deleted or replaced "
                               "while the sweep ran; stopping before results go into a file "
                               "that no longer exists")

    @sa.event.listens_for(engine, "handle_error")
    def _disk(context):
        reason = _first_line(context.original_exception)
        if not any(words in reason for words in _SQLITE_LOST):
            return
        if "full" in reason:
            raise StorageError(f"--storage {label}: {reason} ({free_megabytes(path.parent)} "
                               f"free in {path.parent}); free space, then run the same "
                               "command again")
        raise StorageError(f"--storage {label}: {reason}; check the disk and the file's "
                           "permissions, then run the same command again")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]

