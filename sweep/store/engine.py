"""Opening the storage: Optuna's RDB storage (SQLite by default) with sweep's tables added.

Optuna keeps studies, trials, params, objective values, per-epoch intermediate values (the
objective's metric) and user attributes (provenance, snapshot results), so a stock
``optuna.load_study`` reads everything that matters; ``tables.py`` holds the rest.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import optuna
import sqlalchemy as sa

from sweep.defaults import DEFAULT_STORAGE, PASSWORD_FILE_ENV
from sweep.errors import StorageError
from sweep.store import reconnect
from sweep.store.tables import CLAIMS, EPOCH_COLUMNS, EPOCHS, OPTUNA_STUDIES, OUR_TABLES, metadata

# How long a SQLite writer waits for another's transaction before giving up, in seconds. With
# every transaction taking the write lock up front (see _serialise_sqlite) waiting is the only
# outcome of contention, so this only bounds a stuck process.
SQLITE_BUSY_TIMEOUT_S = 600
CREATE_TRIES = 5  # opening attempts when workers starting together race to create tables
SQLITE_HEADER = b"SQLite format 3\0"  # the first 16 bytes of every SQLite 3 database file


def parse_url(url: str) -> sa.engine.URL:
    """The parsed storage URL.

    Raises:
        StorageError: not a URL, or a password with an unencoded ``@`` (the rest of it would
            be read as the host: the connection fails, and messages showed that part).
    """
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        shown = re.sub(r"//[^/]*@", "//***@", url)  # whatever stands for credentials, hidden
        raise StorageError(f"--storage {shown!r}: not a database URL (e.g. {DEFAULT_STORAGE})"
                           ) from None
    if parsed.host and "@" in parsed.host:
        raise StorageError(f"--storage {safe_url(url)}: its password holds an '@': write it as "
                           "%40 in the URL, or leave the password out and set PGPASSWORD")
    return parsed


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages (all of it: where an unencoded ``@`` in
    the password made its tail read as the host, that tail too)."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return "<unparsable storage URL>"
    if parsed.host and "@" in parsed.host:
        parsed = parsed.set(password="***", host=parsed.host.rsplit("@", 1)[1])
    return parsed.render_as_string(hide_password=True)


def storage_label(url: str) -> str:
    """Where a run's results go, for its header: a SQLite database's file as an absolute
    path (a run started from another folder shows that it is another file), else the URL
    with its password masked."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return "<unparsable storage URL>"
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(Path(parsed.database).resolve())
    return safe_url(url)


def split_password(url: str) -> tuple[str, str | None]:
    """``(url without its password, the password or None)``: for command lines, job scripts
    and manifests, which carry the URL while the password travels separately (an
    environment variable, an env file, a Secret)."""
    parsed = parse_url(url)
    bare = sa.engine.URL.create(
        parsed.drivername, username=parsed.username, host=parsed.host, port=parsed.port,
        database=parsed.database, query=parsed.query,
    )
    return bare.render_as_string(hide_password=False), parsed.password


def with_password_file(url: str, path: str) -> str:
    """``url`` with the password kept in the file ``path`` (its text less a final newline, as
    PostgreSQL's image reads ``POSTGRES_PASSWORD_FILE``), when the URL names a server and has
    no password of its own; ``url`` unchanged otherwise.

    Raises:
        StorageError: the file cannot be read or is empty.
    """
    parsed = parse_url(url)
    if parsed.password is not None or parsed.get_backend_name() == "sqlite":
        return url
    try:
        password = Path(path).read_text().rstrip("\r\n")
    except OSError as err:
        raise StorageError(f"${PASSWORD_FILE_ENV} {path}: cannot read the database password "
                           f"({err.strerror})") from None
    if not password:
        raise StorageError(f"${PASSWORD_FILE_ENV} {path}: the file is empty; put the database "
                           "password in it")
    return parsed.set(password=password).render_as_string(hide_password=False)


def open_storage(url: str, *, create: bool = True) -> optuna.storages.RDBStorage:
    """Connect to the storage, creating Optuna's tables and ours if needed.

    Args:
        create: False for read-only commands: a SQLite file that does not exist is an error
            instead of a new empty database, and nothing is written.
    """
    parsed = parse_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and not create and (not parsed.database or not Path(parsed.database).is_file()):
        raise StorageError(f"--storage {safe_url(url)}: no such database file")
    if sqlite and parsed.database:
        _refuse_non_sqlite(url, Path(parsed.database))
    engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}} if sqlite else \
        reconnect.server_engine_kwargs(parsed)
    for attempt in range(1, CREATE_TRIES + 1):
        try:
            kind = optuna.storages.RDBStorage if sqlite else reconnect.ServerStorage
            storage = kind(url, engine_kwargs=engine_kwargs)
            if not sqlite:  # every connection from here on waits out a restart
                reconnect.retry_connections(storage.engine, safe_url(url))
            _migrate_name_keys(storage.engine)
            metadata.create_all(storage.engine)
            _add_missing_columns(storage.engine)
            if create:
                purge_orphans(storage.engine)
            if sqlite:
                _serialise_sqlite(storage.engine)
                if parsed.database:
                    reconnect.guard_sqlite_file(storage.engine, Path(parsed.database),
                                                safe_url(url))
            return storage
        except StorageError:
            raise
        except Exception as err:
            reason = str(getattr(err, "orig", None) or err).splitlines()[0]
            if attempt < CREATE_TRIES and _lost_create_race(err):
                time.sleep(0.2 * attempt)  # the winner's tables are there now, or soon
                continue
            raise StorageError(f"--storage {safe_url(url)}: cannot open ({reason})") from None
    raise AssertionError("the last try returns or raises")


_checked: set[Path] = set()  # database files whose header this process read already


def _refuse_non_sqlite(url: str, path: Path) -> None:
    """A file that is not a SQLite database is left as it is: SQLite itself would take a file
    shorter than its header for an empty database and write its tables over it. An empty file
    is an empty database.

    Read once per process, before SQLite opens the file here: closing any descriptor of a
    file drops every POSIX lock this process holds on it, SQLite's too, and a process that
    lost its locks lets another one checkpoint the WAL away under it ("database disk image
    is malformed")."""
    if path.resolve() in _checked:
        return
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except (FileNotFoundError, IsADirectoryError):
        head = b""  # created here / refused by SQLite itself, in one line below
    except OSError as err:
        raise StorageError(f"--storage {safe_url(url)}: cannot read {path} ({err.strerror})"
                           ) from None
    if head and head != SQLITE_HEADER:
        raise StorageError(f"--storage {safe_url(url)}: {path} is not a SQLite database (it "
                           f"does not begin with 'SQLite format 3'); left as it is")
    _checked.add(path.resolve())


def purge_orphans(engine: sa.engine.Engine) -> None:
    """Remove our rows of studies that no longer exist (deleted with Optuna's API or CLI)."""
    alive = sa.select(OPTUNA_STUDIES.c.study_id)
    with engine.begin() as conn:
        for table in OUR_TABLES:
            conn.execute(table.delete().where(table.c.study_id.not_in(alive)))


def forget_study(engine: sa.engine.Engine, study_id: int) -> None:
    """Remove every row of ours under ``study_id``: a study just created has none of its own,
    but SQLite hands a deleted study's id to the next study created."""
    with engine.begin() as conn:
        for table in OUR_TABLES:
            conn.execute(table.delete().where(table.c.study_id == study_id))


def _lost_create_race(err: Exception) -> bool:
    """Workers that start together on an empty PostgreSQL database (a job array) all create
    the tables; PostgreSQL's CREATE TABLE is not safe against that, and the losers get a
    duplicate-key or already-exists error. Opening again finds the tables made."""
    text = str(getattr(err, "orig", None) or err)
    return isinstance(err, (sa.exc.IntegrityError, sa.exc.ProgrammingError)) and (
        "duplicate key" in text or "already exists" in text)


def _add_missing_columns(engine: sa.engine.Engine) -> None:
    """Databases written by an earlier version lack newer columns of our tables (epoch
    metrics, the claims' rungs): add them (empty)."""
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        for table in OUR_TABLES:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.exec_driver_sql(
                        f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")


# How the rows of a table keyed by study name become rows keyed by study id (version 0.1).
_BY_NAME = {
    EPOCHS.name: ("s.study_id, o.trial_number, o.epoch", ""),
    CLAIMS.name: ("s.study_id, o.point, o.worker, o.state, t.number, o.heartbeat",
                  " LEFT JOIN trials t ON t.trial_id = o.trial_id"),
}


def _migrate_name_keys(engine: sa.engine.Engine) -> None:
    """Databases of sweep 0.1 key our tables by study name: rebuild them keyed by study id
    (rows of studies that no longer exist are dropped on the way)."""
    inspector = sa.inspect(engine)
    for table in OUR_TABLES:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        if "study_name" not in present:
            continue
        select, join = _BY_NAME[table.name]
        columns = ["study_id", "point", "worker", "state", "trial_number", "heartbeat"]
        if table is EPOCHS:
            extra = [c for c in EPOCH_COLUMNS if c in present]
            columns = ["study_id", "trial_number", "epoch", *extra]
            select += "".join(f", o.{c}" for c in extra)
        new = sa.Table(f"{table.name}_new", sa.MetaData(), *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns))
        with engine.begin() as conn:
            new.create(conn)
            conn.exec_driver_sql(
                f"INSERT INTO {new.name} ({', '.join(columns)}) SELECT {select} "
                f"FROM {table.name} o JOIN studies s ON s.study_name = o.study_name{join}")
            conn.exec_driver_sql(f"DROP TABLE {table.name}")
            conn.exec_driver_sql(f"ALTER TABLE {new.name} RENAME TO {table.name}")


def _serialise_sqlite(engine: sa.engine.Engine) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE``, in WAL mode.

    Many worker processes write one SQLite file. A default (deferred) transaction that reads
    and then writes must upgrade its lock, and when another writer got there first SQLite
    answers "database is locked" at once, without waiting: no timeout helps. Taking the write
    lock when the transaction begins removes every upgrade, so writers queue on the busy
    timeout instead. Our transactions are a few rows each, so the queue stays short.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed are not reused
