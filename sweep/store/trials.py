"""A study's trials read in bulk: one query per Optuna table, only the attributes asked for.

``study.get_trials()`` builds every trial through Optuna's ORM with all of its attributes
decoded (provenance, layers, intermediate values): about 1.4 ms a trial, 14 s for a study of
10,000 trials, most of ``sweep status``. The report and ``status`` need a trial's number,
state, values, params and a few user attributes: read as plain rows, with the same meaning
as Optuna's (``tests/store/test_trials.py`` compares the two).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

# Optuna's tables (optuna/storages/_rdb/models.py), the columns read here: clauses only,
# nothing is created from them.
_TRIALS = sa.table("trials", sa.column("trial_id"), sa.column("number"), sa.column("study_id"),
                   sa.column("state"))
_VALUES = sa.table("trial_values", sa.column("trial_id"), sa.column("objective"),
                   sa.column("value"), sa.column("value_type"))
_PARAMS = sa.table("trial_params", sa.column("param_id"), sa.column("trial_id"),
                   sa.column("param_name"), sa.column("param_value"),
                   sa.column("distribution_json"))
_USER = sa.table("trial_user_attributes", sa.column("trial_id"), sa.column("key"),
                 sa.column("value_json"))
_SYSTEM = sa.table("trial_system_attributes", sa.column("trial_id"), sa.column("key"),
                   sa.column("value_json"))
ARTIFACTS_PREFIX = "artifacts:"  # optuna.artifacts' system attribute per uploaded file
_INFINITE = {"INF_POS": float("inf"), "INF_NEG": float("-inf")}


@dataclass(frozen=True)
class StoredTrial:
    """One trial as the report and ``status`` read it: the fields of Optuna's FrozenTrial of
    the same names, ``user_attrs`` holding only the keys asked for; ``artifacts``: the
    ``(filename, artifact_id)`` of each file uploaded to it (``optuna.artifacts``)."""

    number: int
    state: TrialState
    values: list[float] | None
    params: dict
    user_attrs: dict
    artifacts: tuple[tuple[str, str], ...] = field(default=())

    @property
    def value(self) -> float | None:
        """The first objective's value (None before the trial has one)."""
        return self.values[0] if self.values else None


@lru_cache(maxsize=256)
def _distribution(distribution_json: str):
    return optuna.distributions.json_to_distribution(distribution_json)


def read_trials(engine: sa.Engine, study_id: int, user_keys: tuple[str, ...] | None = None,
                artifacts: bool = False) -> list[StoredTrial]:
    """Every trial of the study, by number, in five queries (trials, values, params, user
    attributes, and the artifacts' system attributes with ``artifacts``).

    Args:
        user_keys: the user attributes to read (None: all of them).
    """
    def of_study(table):
        return table.c.trial_id.in_(
            sa.select(_TRIALS.c.trial_id).where(_TRIALS.c.study_id == study_id))

    with engine.connect() as conn:
        trials = conn.execute(sa.select(_TRIALS.c.trial_id, _TRIALS.c.number, _TRIALS.c.state)
                              .where(_TRIALS.c.study_id == study_id)).all()
        values: dict[int, dict[int, float]] = {}
        for tid, objective, value, kind in conn.execute(
                sa.select(_VALUES.c.trial_id, _VALUES.c.objective, _VALUES.c.value,
                          _VALUES.c.value_type).where(of_study(_VALUES))).all():
            values.setdefault(tid, {})[objective] = _INFINITE.get(kind, value)
        params: dict[int, dict] = {}
        for tid, name, value, dist in conn.execute(
                sa.select(_PARAMS.c.trial_id, _PARAMS.c.param_name, _PARAMS.c.param_value,
                          _PARAMS.c.distribution_json).where(of_study(_PARAMS))
                .order_by(_PARAMS.c.param_id)).all():
            params.setdefault(tid, {})[name] = _distribution(dist).to_external_repr(value)
        query = sa.select(_USER.c.trial_id, _USER.c.key, _USER.c.value_json).where(
            of_study(_USER))
        if user_keys is not None:
            query = query.where(_USER.c.key.in_(user_keys))
        attrs: dict[int, dict] = {}
        for tid, key, value in conn.execute(query).all():
            attrs.setdefault(tid, {})[key] = json.loads(value)
        files: dict[int, list] = {}
        if artifacts:
            for tid, value in conn.execute(
                    sa.select(_SYSTEM.c.trial_id, _SYSTEM.c.value_json).where(
                        of_study(_SYSTEM), _SYSTEM.c.key.startswith(ARTIFACTS_PREFIX))).all():
                meta = json.loads(json.loads(value))  # Optuna stores the meta's JSON text
                files.setdefault(tid, []).append((meta["filename"], meta["artifact_id"]))
    out = [StoredTrial(
        number=number, state=TrialState[state],
        values=[v for _, v in sorted(values[tid].items())] if tid in values else None,
        params=params.get(tid, {}), user_attrs=attrs.get(tid, {}),
        artifacts=tuple(files.get(tid, ())),
    ) for tid, number, state in trials]
    return sorted(out, key=lambda t: t.number)
