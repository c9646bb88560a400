"""The epochs table: one row per trial and epoch, with every metric (``tables.EPOCHS``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna
import sqlalchemy as sa

from sweep.store import reconnect
from sweep.store.tables import EPOCH_COLUMNS, EPOCHS

if TYPE_CHECKING:  # pandas is imported by the readers of frames only (not ``sweep status``)
    import pandas as pd


def record_epoch(
    storage: optuna.storages.RDBStorage, study_id: int, trial_number: int, row: dict
) -> None:
    """Store one epoch's metrics (a row from ``train``) as soon as the epoch ends (once, even
    when the connection is lost as it commits)."""
    values = {name: row.get(name) for name in EPOCH_COLUMNS}

    def insert() -> None:
        with storage.engine.begin() as conn:
            conn.execute(EPOCHS.insert().values(
                study_id=study_id, trial_number=trial_number, epoch=row["epoch"], **values))

    def unless_there() -> None:
        try:
            insert()
        except sa.exc.IntegrityError:
            pass  # the lost transaction had committed the row

    reconnect.once_more(insert, unless_there)


def epochs_frame(storage: optuna.storages.RDBStorage, study_id: int) -> pd.DataFrame:
    """Every stored epoch of the study: ``trial_number, epoch`` and the metric columns."""
    import pandas as pd

    query = (
        sa.select(EPOCHS)
        .where(EPOCHS.c.study_id == study_id)
        .order_by(EPOCHS.c.trial_number, EPOCHS.c.epoch)
    )
    with storage.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    return frame.drop(columns="study_id")
