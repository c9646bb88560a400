"""sweep's own tables, beside Optuna's in the same database.

Both are keyed by Optuna's ``study_id``, the study's identity: a study deleted (``optuna
delete-study``) and created again under the same name is a new study, and the rows of the
deleted one are removed (``engine.purge_orphans``).
"""

from __future__ import annotations

import sqlalchemy as sa

EPOCH_COLUMNS = (
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
    "roc_auc", "learning_rate", "seconds",
)

metadata = sa.MetaData()
# Every metric of every epoch as a plain SQL row, stored as soon as the epoch ends (Optuna's
# intermediate values keep only the objective's metric), for the report and ``status``.
EPOCHS = sa.Table(
    "sweep_epochs",
    metadata,
    sa.Column("study_id", sa.Integer, primary_key=True),  # Optuna's
    sa.Column("trial_number", sa.Integer, primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),  # 1-based
    *(sa.Column(name, sa.Float, nullable=True) for name in EPOCH_COLUMNS),  # seconds: wall time
)
# Which worker runs which point (see sweep.run.claims).
CLAIMS = sa.Table(
    "sweep_claims",
    metadata,
    sa.Column("study_id", sa.Integer, primary_key=True),  # Optuna's
    sa.Column("point", sa.String(1024), primary_key=True),  # study.space.identity, or "#i"
    sa.Column("worker", sa.String(256), nullable=False),  # "host:pid"
    sa.Column("state", sa.String(16), nullable=False),  # running | done | more (continue)
    sa.Column("trial_number", sa.Integer, nullable=True),  # the point's trial, once asked
    sa.Column("heartbeat", sa.Float, nullable=False),  # unix time, seconds
)
OUR_TABLES = (EPOCHS, CLAIMS)
