"""The columns sweep reads and writes in Optuna's own tables exist there, with those names,
in the Optuna installed (store/tables.py; pyproject.toml bounds Optuna to the versions
tested)."""

from __future__ import annotations

import pytest
from optuna.storages._rdb import models

from sweep.store import tables

OURS = [tables.OPTUNA_STUDIES, tables.OPTUNA_STUDY_SYSTEM, tables.OPTUNA_TRIALS,
        tables.OPTUNA_VALUES, tables.OPTUNA_PARAMS, tables.OPTUNA_USER, tables.OPTUNA_SYSTEM]
THEIRS = {model.__tablename__: model.__table__ for model in vars(models).values()
          if isinstance(model, type) and hasattr(model, "__tablename__")}


@pytest.mark.parametrize("table", OURS, ids=lambda t: t.name)
def test_every_column_sweep_uses_is_optunas(table):
    assert table.name in THEIRS, f"Optuna has no table {table.name}"
    theirs = THEIRS[table.name].columns
    for column in table.columns:
        assert column.name in theirs, f"{table.name}.{column.name}"


def test_sweeps_own_tables_do_not_collide_with_optunas():
    assert not {t.name for t in tables.OUR_TABLES} & set(THEIRS)


def test_the_json_columns_sweep_writes_are_text():
    # set_trial_user_attrs and replace_study_system_attrs write json.dumps(value) there
    for name in ("trial_user_attributes", "study_system_attributes"):
        assert THEIRS[name].columns["value_json"].type.python_type is str
