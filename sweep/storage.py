"""Storage: Optuna's RDB storage (SQLite by default) plus two tables of our own.

Optuna keeps studies, trials, params, objective values, per-epoch intermediate values (the
objective's metric) and user attributes (provenance, snapshot results), so a stock
``optuna.load_study`` reads everything that matters. ``sweep_epochs`` keeps every metric of
every epoch as a plain SQL row in the same database, for the report and for ``status``;
``sweep_claims`` records which worker runs which point (see ``claims.py``).
"""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pandas as pd
import sqlalchemy as sa

from sweep.errors import StorageError

DEFAULT_STORAGE = "sqlite:///sweeps.db"
# How long a SQLite writer waits for another's transaction before giving up, in seconds. With
# every transaction taking the write lock up front (see _serialise_sqlite) waiting is the only
# outcome of contention, so this only bounds a stuck process.
SQLITE_BUSY_TIMEOUT_S = 600
CREATE_TRIES = 5  # opening attempts when workers starting together race to create tables
EPOCH_COLUMNS = (
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
    "roc_auc", "learning_rate", "seconds",
)

_metadata = sa.MetaData()
EPOCHS = sa.Table(
    "sweep_epochs",
    _metadata,
    sa.Column("study_name", sa.String(512), primary_key=True),
    sa.Column("trial_number", sa.Integer, primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),  # 1-based
    *(sa.Column(name, sa.Float, nullable=True) for name in EPOCH_COLUMNS),  # seconds: wall time
)
# Which worker runs which point (see claims.py).
CLAIMS = sa.Table(
    "sweep_claims",
    _metadata,
    sa.Column("study_name", sa.String(512), primary_key=True),
    sa.Column("point", sa.String(1024), primary_key=True),  # space.point_key, or "#i" slots
    sa.Column("worker", sa.String(256), nullable=False),  # "host:pid"
    sa.Column("state", sa.String(16), nullable=False),  # running | done
    sa.Column("trial_id", sa.Integer, nullable=True),  # Optuna's trial id, once asked
    sa.Column("heartbeat", sa.Float, nullable=False),  # unix time, seconds
)


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable storage URL>"


def _parse_url(url: str) -> sa.engine.URL:
    try:
        return sa.engine.make_url(url)
    except Exception:
        raise StorageError(f"--storage {url!r}: not a database URL (e.g. {DEFAULT_STORAGE})")


def split_password(url: str) -> tuple[str, str | None]:
    """``(url without its password, the password or None)``: for job scripts and manifests,
    which carry the URL while the password travels separately (an env file, a Secret)."""
    parsed = _parse_url(url)
    bare = parsed._replace(password=None).render_as_string(hide_password=False)  # a namedtuple
    return bare, parsed.password


def open_storage(url: str, *, create: bool = True) -> optuna.storages.RDBStorage:
    """Connect to the storage, creating Optuna's tables and ours if needed.

    Args:
        create: False for read-only commands: a SQLite file that does not exist is an error
            instead of a new empty database.
    """
    parsed = _parse_url(url)
    if parsed.get_backend_name() == "sqlite" and not create:
        path = parsed.database
        if not path or not Path(path).is_file():
            raise StorageError(f"--storage {safe_url(url)}: no such database file")
    sqlite = parsed.get_backend_name() == "sqlite"
    engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}} if sqlite else {}
    for attempt in range(1, CREATE_TRIES + 1):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
            _metadata.create_all(storage.engine)
            _add_missing_columns(storage.engine)
            if sqlite:
                _serialise_sqlite(storage.engine)
            return storage
        except Exception as err:
            reason = str(getattr(err, "orig", None) or err).splitlines()[0]
            if attempt < CREATE_TRIES and _lost_create_race(err):
                time.sleep(0.2 * attempt)  # the winner's tables are there now, or soon
                continue
            raise StorageError(f"--storage {safe_url(url)}: cannot open ({reason})") from None


def _lost_create_race(err: Exception) -> bool:
    """Workers that start together on an empty PostgreSQL database (a job array) all create
    the tables; PostgreSQL's CREATE TABLE is not safe against that, and the losers get a
    duplicate-key or already-exists error. Opening again finds the tables made."""
    text = str(getattr(err, "orig", None) or err)
    return isinstance(err, (sa.exc.IntegrityError, sa.exc.ProgrammingError)) and (
        "duplicate key" in text or "already exists" in text)


def _add_missing_columns(engine: sa.engine.Engine) -> None:
    """Databases written by an earlier version lack newer epoch columns: add them (empty)."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(EPOCHS.name)}
    with engine.begin() as conn:
        for name in EPOCH_COLUMNS:
            if name not in present:
                conn.exec_driver_sql(f"ALTER TABLE {EPOCHS.name} ADD COLUMN {name} FLOAT")


def _serialise_sqlite(engine: sa.engine.Engine) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE``, in WAL mode.

    Many worker processes write one SQLite file. A default (deferred) transaction that reads
    and then writes must upgrade its lock, and when another writer got there first SQLite
    answers "database is locked" at once, without waiting: no timeout helps. Taking the write
    lock when the transaction begins removes every upgrade, so writers queue on the busy
    timeout instead. Our transactions are a few rows each, so the queue stays short.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed are not reused


def load_study(storage: optuna.storages.RDBStorage, name: str) -> optuna.Study:
    """An existing study, or StorageError listing the studies that are there."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise StorageError(
            f"no study named {name!r} in {safe_url(storage.url)}; "
            f"studies there: {', '.join(names) or 'none'}"
        ) from None


def artifact_store(artifact_dir: Path) -> optuna.artifacts.FileSystemArtifactStore:
    """The file artifact store (trial pictures) of ``run``, ``worker``, ``dashboard``."""
    Path(artifact_dir).mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(artifact_dir))


def stored_metrics(study: optuna.Study) -> list[str]:
    """The objective metrics of a study run by sweep (one per Optuna direction)."""
    metric = study.user_attrs.get("study", {}).get("objective", {}).get("metric", "value")
    return metric if isinstance(metric, list) else [metric]


def record_epoch(
    storage: optuna.storages.RDBStorage, study_name: str, trial_number: int, row: dict
) -> None:
    """Store one epoch's metrics (a row from ``train``) as soon as the epoch ends."""
    values = {name: row.get(name) for name in EPOCH_COLUMNS}
    with storage.engine.begin() as conn:
        conn.execute(
            EPOCHS.insert().values(
                study_name=study_name, trial_number=trial_number, epoch=row["epoch"], **values
            )
        )


def epochs_frame(storage: optuna.storages.RDBStorage, study_name: str) -> pd.DataFrame:
    """Every stored epoch of the study: ``trial_number, epoch`` and the metric columns."""
    query = (
        sa.select(EPOCHS)
        .where(EPOCHS.c.study_name == study_name)
        .order_by(EPOCHS.c.trial_number, EPOCHS.c.epoch)
    )
    with storage.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    return frame.drop(columns="study_name")
