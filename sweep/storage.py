"""Storage: Optuna's RDB storage (SQLite by default) plus one table of our own, ``sweep_epochs``.

Optuna keeps studies, trials, params, objective values, per-epoch intermediate values (the
objective's metric) and user attributes (provenance, snapshot results), so a stock
``optuna.load_study`` reads everything that matters. ``sweep_epochs`` keeps every metric of
every epoch as a plain SQL row in the same database, for the report and for ``status``.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import sqlalchemy as sa

from sweep.errors import StorageError

DEFAULT_STORAGE = "sqlite:///sweeps.db"
EPOCH_COLUMNS = (
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
    "seconds",
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


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable storage URL>"


def open_storage(url: str, *, create: bool = True) -> optuna.storages.RDBStorage:
    """Connect to the storage, creating Optuna's tables and ours if needed.

    Args:
        create: False for read-only commands: a SQLite file that does not exist is an error
            instead of a new empty database.
    """
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        raise StorageError(f"--storage {url!r}: not a database URL (e.g. {DEFAULT_STORAGE})")
    if parsed.get_backend_name() == "sqlite" and not create:
        path = parsed.database
        if not path or not Path(path).is_file():
            raise StorageError(f"--storage {safe_url(url)}: no such database file")
    try:
        storage = optuna.storages.RDBStorage(url)
        _metadata.create_all(storage.engine)
    except Exception as err:
        reason = str(getattr(err, "orig", None) or err).splitlines()[0]
        raise StorageError(f"--storage {safe_url(url)}: cannot open ({reason})") from None
    return storage


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
