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
# Which worker runs which point (see sweep.store.claims).
CLAIMS = sa.Table(
    "sweep_claims",
    metadata,
    sa.Column("study_id", sa.Integer, primary_key=True),  # Optuna's
    sa.Column("point", sa.String(1024), primary_key=True),  # study.space.identity, or "#i"
    sa.Column("worker", sa.String(256), nullable=False),  # "host:pid"
    # running | done | more (to continue) | rest (a rung done, search.schedule)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("trial_number", sa.Integer, nullable=True),  # the point's trial, once asked
    sa.Column("heartbeat", sa.Float, nullable=False),  # unix time, seconds
    # search.schedule: the epochs of the rung it trains to or rested at, and its objective
    # value at the end of each rung done, JSON {"epochs": value} (sweep.store.halving)
    sa.Column("rung", sa.Integer, nullable=True),
    sa.Column("scores", sa.Text, nullable=True),
)
OUR_TABLES = (EPOCHS, CLAIMS)

# Optuna's own tables (optuna/storages/_rdb/models.py), the columns sweep reads or writes in
# bulk itself: SQL clauses only, nothing is created from them.
OPTUNA_STUDIES = sa.table("studies", sa.column("study_id"), sa.column("study_name"))
OPTUNA_STUDY_SYSTEM = sa.table("study_system_attributes", sa.column("study_id"),
                               sa.column("key"), sa.column("value_json"))
OPTUNA_TRIALS = sa.table("trials", sa.column("trial_id"), sa.column("number"),
                         sa.column("study_id"), sa.column("state"),
                         sa.column("datetime_complete"))
OPTUNA_VALUES = sa.table("trial_values", sa.column("trial_id"), sa.column("objective"),
                         sa.column("value"), sa.column("value_type"))
OPTUNA_PARAMS = sa.table("trial_params", sa.column("param_id"), sa.column("trial_id"),
                         sa.column("param_name"), sa.column("param_value"),
                         sa.column("distribution_json"))
OPTUNA_USER = sa.table("trial_user_attributes", sa.column("trial_id"), sa.column("key"),
                       sa.column("value_json"))
OPTUNA_SYSTEM = sa.table("trial_system_attributes", sa.column("trial_id"), sa.column("key"),
                         sa.column("value_json"))
