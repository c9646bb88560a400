"""What the storage does when its database goes away: one policy for every read and write.

A database server that restarts (an upgrade, a failover, ``pg_ctl restart``) refuses
connections for a while and drops the ones it had. Every storage call of sweep and of Optuna
(epoch rows, user attributes, ``tell``, claims, the parent's reads) takes a connection from
the engine's pool, so the policy lives where connections are made: a pooled connection is
tested before use (``pool_pre_ping``), and a connection that cannot be made is tried again,
with one line logged per try, and one when it is back; the call then goes on as if nothing
happened (nothing lost, nothing written twice: no transaction had begun). The patience
(``RETRY_FOR_S``, or ``$SWEEP_STORAGE_PATIENCE`` seconds) is the outage's, not each call's:
its clock starts at the process's first failed connection to that database and every call,
in any thread, counts from there, so a run stops (one ``StorageError`` line) when the
database has been away that long, however many calls waited meanwhile. The heartbeat and a
run giving its trials back after the storage failed wait less (``patience``).

A SQLite file is local: nothing there is transient. A full disk or a failing one becomes
one ``StorageError`` line, and the file deleted (or replaced) under a running sweep is
noticed at the next transaction, before a result goes into the unlinked file.

A connection can also be lost *during* a transaction (``pg_ctl stop -m fast`` in the
millisecond a statement runs): nothing can say whether it committed. The writes a trial
makes while it trains (an epoch's row, Optuna's per-epoch value, attributes, its claim's
state, its end) are made so that making one twice changes nothing, and ``once_more`` makes
them again once (``ServerStorage`` does so for Optuna's); anything else stops the command in
one line (``lost_transaction``).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from sweep.errors import StorageError, free_megabytes

RETRY_FOR_S = 120.0  # how long a process waits for its database to come back
PATIENCE_ENV = "SWEEP_STORAGE_PATIENCE"  # seconds, instead of RETRY_FOR_S
# A failed connection this long after the last one starts a new outage (tries of one outage
# are at most the longest backoff apart; a heartbeat's, HEARTBEAT_S).
NEW_OUTAGE_AFTER_S = 30.0
CONNECT_TIMEOUT_S = 10  # a server that does not answer a connection attempt (a lost network)
_BACKOFF_S = (1.0, 2.0, 4.0, 5.0)  # waits between tries; the last repeats
# A server's answers that no wait changes (a wrong password, a database dropped).
_REFUSED = ("authentication failed", "does not exist", "no pg_hba.conf entry")
# SQLite's words for a file that can no longer be written where it is.
_SQLITE_LOST = ("disk is full", "disk I/O error", "readonly database", "unable to open")
log = logging.getLogger(__name__)
_local = threading.local()
T = TypeVar("T")
P = ParamSpec("P")


class _Outage:
    """A database's current outage, as this process sees it: when its first and last failed
    connections were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first: float | None = None
        self.last: float | None = None

    def failed(self) -> float:
        """A connection failed now; returns the seconds since the outage began."""
        with self._lock:
            now = time.monotonic()
            if self.first is None or self.last is None or now - self.last > NEW_OUTAGE_AFTER_S:
                self.first = now
            self.last = now
            return now - self.first

    def ended(self) -> float | None:
        """A connection was made: the seconds the outage lasted, or None when there was none."""
        with self._lock:
            if self.first is None:
                return None
            lasted, self.first, self.last = time.monotonic() - self.first, None, None
            return lasted


_outages: dict[str, _Outage] = collections.defaultdict(_Outage)  # by the database's label


def retry_for_s() -> float:
    """The process's patience for its database: ``$SWEEP_STORAGE_PATIENCE`` or
    ``RETRY_FOR_S`` seconds."""
    text = os.environ.get(PATIENCE_ENV)
    if text is None:
        return RETRY_FOR_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise StorageError(f"${PATIENCE_ENV}: {text!r} is not a number of seconds (0 or more)")
    return seconds


@contextlib.contextmanager
def patience(seconds: float) -> Iterator[None]:
    """Within this block (this thread only), give up on an unreachable database once it has
    been away ``seconds`` (at most the process's patience)."""
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

    patience_s, outage = retry_for_s(), _outages[label]

    @sa.event.listens_for(engine, "do_connect")
    def _connect(dialect: sa.Dialect, _record: object, cargs: tuple, cparams: dict) -> Any:
        tries = 0
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as err:
                reason = _first_line(err)
                if any(words in reason for words in _REFUSED):
                    raise  # a server that answers "no": waiting changes nothing
                limit = getattr(_local, "retry_for_s", None)
                limit = patience_s if limit is None else min(limit, patience_s)
                waited = outage.failed()
                if waited >= limit:
                    raise StorageError(f"--storage {label}: unreachable for {waited:.0f} s "
                                       f"({reason}); run the same command again when it is "
                                       "back: it takes over what this run still held") from None
                pause = min(_BACKOFF_S[min(tries, len(_BACKOFF_S) - 1)], limit - waited)
                log.warning("storage %s unreachable (%s); trying again in %.0f s (%.0f s of "
                            "%.0f s waited)", label, reason, pause, waited, limit)
                time.sleep(pause)
                tries += 1
                continue
            lasted = outage.ended()
            if lasted is not None:
                log.warning("storage %s reachable again after %.0f s", label, lasted)
            return connection


def guard_sqlite_file(engine: sa.engine.Engine, path: Path, label: str) -> None:
    """Stop at the first transaction after ``path`` was deleted or replaced (SQLite would go
    on writing into the unlinked file, and every result would be lost), and turn a full or
    failing disk into one line."""
    path = path.resolve()
    born = _identity(path)

    @sa.event.listens_for(engine, "begin")
    def _check(_connection: sa.Connection) -> None:
        if born is not None and _identity(path) != born:
            raise StorageError(f"--storage {label}: the database file was deleted or replaced "
                               "while the sweep ran; stopping before results go into a file "
                               "that no longer exists")

    @sa.event.listens_for(engine, "handle_error")
    def _disk(context: sa.engine.ExceptionContext) -> None:
        reason = _first_line(context.original_exception)
        if not any(words in reason for words in _SQLITE_LOST):
            return
        if "full" in reason:
            raise StorageError(f"--storage {label}: {reason} ({free_megabytes(path.parent)} "
                               f"free in {path.parent}); free space, then run the same "
                               "command again")
        raise StorageError(f"--storage {label}: {reason}; check the disk and the file's "
                           "permissions, then run the same command again")


def lost_transaction(err: BaseException) -> str | None:
    """One line for a connection lost while a transaction ran (the server stopped or killed
    the session in the millisecond a statement ran: no retry can know what it had done),
    whether sweep's own call or Optuna's (which wraps it in ``StorageInternalError``); None
    for any other error."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, sa.exc.DBAPIError) and seen.connection_invalidated:
            reason = _first_line(seen.orig if seen.orig is not None else seen)
            return (f"the storage's connection was lost during a transaction ({reason}); run "
                    "the same command again: it continues from what was stored")
        seen = seen.__cause__ or seen.__context__
    return None


def once_more(call: Callable[[], T], again: Callable[[], T] | None = None) -> T:
    """``call()``, made once more (``again()``, by default the same call) when its connection
    was lost during its transaction: for a write that changes nothing when made twice (the
    lost transaction may have committed). The second try's connection waits out the outage
    as every new connection does."""
    try:
        return call()
    except Exception as err:
        said = lost_transaction(err)
        if said is None:
            raise
        log.warning("%s; writing it once more", said.split(";")[0])
    return (again or call)()


def repeatable(write: Callable[P, T]) -> Callable[P, T]:
    """``write`` made ``once_more`` when its connection is lost mid-transaction: for a
    function whose write changes nothing when made twice."""
    @functools.wraps(write)
    def once_more_if_lost(*args: P.args, **kwargs: P.kwargs) -> T:
        return once_more(functools.partial(write, *args, **kwargs))

    return once_more_if_lost


class ServerStorage(optuna.storages.RDBStorage):
    """Optuna's storage on a database server: the writes a trial makes while it runs (its
    per-epoch values, attributes, its end) are made once more when their connection is lost
    mid-transaction, as ``once_more`` says."""

    def set_trial_intermediate_value(self, trial_id: int, step: int,
                                     intermediate_value: float) -> None:
        once_more(functools.partial(super().set_trial_intermediate_value, trial_id, step,
                                    intermediate_value))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        once_more(functools.partial(super().set_trial_user_attr, trial_id, key, value))

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Any = None) -> bool:
        first = functools.partial(super().set_trial_state_values, trial_id, state, values)
        if not state.is_finished():  # a waiting trial taken: the second try could not tell
            return first()

        def again() -> bool:
            try:
                return first()
            except optuna.exceptions.UpdateFinishedTrialError:
                stored = self.get_trial(trial_id)
                if stored.state == state and stored.values == (values and list(values)):
                    return True  # the lost transaction had committed
                raise

        return once_more(first, again)


def _read_again(name: str) -> Callable[..., Any]:
    def read(self: ServerStorage, *args: Any, **kwargs: Any) -> Any:
        return once_more(functools.partial(getattr(super(ServerStorage, self), name), *args,
                                           **kwargs))

    read.__name__ = read.__qualname__ = name
    return read


# Optuna's reads (``tell`` and ``should_prune`` read the trial, a worker its study): made
# again as they are
for _name in ("get_trial", "get_all_trials", "get_n_trials", "get_best_trial",
              "get_trial_id_from_study_id_trial_number", "get_study_id_from_name",
              "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
              "get_all_studies"):
    setattr(ServerStorage, _name, _read_again(_name))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]

